/** The fleet fold, its rendering and message decoding: pure, no sockets. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FleetStatusResponse, NODE_OFFLINE, type NodeSession, type NodeStatus } from '../../protocol/fleet.ts';
import { AgentStatusResponse } from '../../protocol/snapshot.ts';
import { NO_FILTER } from '../state/snapshot.ts';
import { decodeMessage } from './decode.ts';
import { foldFleet, initialFleetState, type FleetInput, type FleetState } from './fold.ts';
import { renderAgentView, renderFleet } from './render.ts';

const WALL = Date.parse('2026-01-01T10:00:00.000Z');

function session(key: string, state: NodeSession['state'], duration = 1.5, extra: Partial<NodeSession> = {}): NodeSession {
  const [channel, id] = key.split(':') as [string, string];
  return { session_key: key, session_id: id, channel, title: null, state, tool_name: state === 'tool_running' ? 'Bash' : null, duration_seconds: duration, token_usage: null, error_message: null, ...extra };
}

function status(sessions: NodeSession[], uptime = 100, maxConcurrent = 5): NodeStatus {
  const state = sessions.length === 0 ? 'idle' : sessions.some((s) => s.state === 'error') ? 'degraded' : 'active';
  return { global: { state, active_sessions: sessions.length, max_concurrent: maxConcurrent, uptime_seconds: uptime }, sessions };
}

function run(state: FleetState, inputs: FleetInput[], mono: number) {
  return foldFleet(state, inputs, { mono, wall: WALL + mono });
}

function fleetJson(state: FleetState, now: number) {
  return FleetStatusResponse.parse(JSON.parse(renderFleet(state, { now, startedAt: 0 }, NO_FILTER).json));
}

const A1 = session('cli:a1', 'tool_running', 2.0, { title: 'Fix tests', token_usage: { input: 10, output: 20 } });
const A2 = session('telegram:a2', 'thinking', 0.5);
const B1 = session('cli:b1', 'waiting_for_user', 10.0);

function twoNodes(): FleetState {
  return run(
    initialFleetState(100),
    [
      { kind: 'availability', node: 'alpha', value: 'online' },
      { kind: 'status', node: 'alpha', status: status([A1, A2], 100, 5) },
      { kind: 'availability', node: 'beta', value: 'online' },
      { kind: 'status', node: 'beta', status: status([B1], 7, 3) },
    ],
    1000,
  ).state;
}

describe('fleet fold', () => {
  test("each node's part is its own snapshot, field for field, with the frozen timers aged since arrival", () => {
    const state = twoNodes();
    const body = fleetJson(state, 3500);
    assert.deepEqual(body.nodes.map((n) => n.node_id), ['alpha', 'beta']);
    const alpha = body.nodes[0]!;
    assert.equal(alpha.online, true);
    assert.equal(alpha.last_seen, new Date(WALL + 1000).toISOString());
    // 2.5 s after arrival: uptime 100 -> 102, durations + 2.5.
    assert.deepEqual(alpha.global, { state: 'active', active_sessions: 2, max_concurrent: 5, uptime_seconds: 102 });
    assert.deepEqual(alpha.sessions, [
      { ...A1, duration_seconds: 4.5 },
      { ...A2, duration_seconds: 3.0 },
    ]);
    assert.deepEqual(body.global, { state: 'active', active_sessions: 3, max_concurrent: 8, uptime_seconds: 3 });
    // The same bytes a daemon writes: one decimal even for whole seconds.
    assert.match(renderFleet(state, { now: 1000, startedAt: 0 }, NO_FILTER).json, /"duration_seconds":2\.0,/);
  });

  test('a node going offline keeps its sessions, shown as error / "node offline", and degrades the fleet', () => {
    const result = run(twoNodes(), [{ kind: 'availability', node: 'beta', value: 'offline' }], 2000);
    assert.deepEqual(
      result.transitions.map((t) => [t.node_id, t.session_key, t.from, t.to, t.error_message]),
      [['beta', 'cli:b1', 'waiting_for_user', 'error', NODE_OFFLINE]],
    );
    const body = fleetJson(result.state, 5000);
    const beta = body.nodes[1]!;
    assert.equal(beta.online, false);
    assert.equal(beta.sessions.length, 1);
    assert.equal(beta.sessions[0]!.state, 'error');
    assert.equal(beta.sessions[0]!.error_message, NODE_OFFLINE);
    assert.equal(beta.sessions[0]!.tool_name, null);
    // In error since it went offline, 3 s ago; its uptime stopped when it went away.
    assert.equal(beta.sessions[0]!.duration_seconds, 3);
    assert.equal(beta.global!.uptime_seconds, 8);
    assert.equal(beta.global!.state, 'degraded');
    // The top global counts online nodes only, and is degraded by the lost sessions.
    assert.deepEqual(body.global, { state: 'degraded', active_sessions: 2, max_concurrent: 5, uptime_seconds: 5 });
    // A repeated offline (a retained message read again) is no new transition.
    assert.deepEqual(run(result.state, [{ kind: 'availability', node: 'beta', value: 'offline' }], 2500).transitions, []);
  });

  test('back online, its retained status replaces the sessions it had', () => {
    let state = run(twoNodes(), [{ kind: 'availability', node: 'beta', value: 'offline' }], 2000).state;
    state = run(state, [{ kind: 'availability', node: 'beta', value: 'online' }, { kind: 'status', node: 'beta', status: status([], 0, 3) }], 3000).state;
    const body = fleetJson(state, 3000);
    assert.deepEqual(body.nodes[1], { node_id: 'beta', online: true, last_seen: new Date(WALL + 3000).toISOString(), global: { state: 'idle', active_sessions: 0, max_concurrent: 3, uptime_seconds: 0 }, sessions: [] });
    assert.equal(body.global.state, 'active');
  });

  test('a session topic refreshes or ends a listed session; one the status does not list is a leftover and ignored', () => {
    let state = twoNodes();
    const updated = session('cli:a1', 'streaming', 0.0);
    state = run(state, [{ kind: 'session', node: 'alpha', key: 'cli:a1', session: updated }], 2000).state;
    assert.deepEqual(fleetJson(state, 2000).nodes[0]!.sessions[0], updated);
    state = run(state, [{ kind: 'session', node: 'alpha', key: 'telegram:a2', session: null }], 2000).state;
    assert.deepEqual(fleetJson(state, 2000).nodes[0]!.sessions.map((s) => s.session_key), ['cli:a1']);
    const ghost = run(state, [{ kind: 'session', node: 'alpha', key: 'cli:ghost', session: session('cli:ghost', 'thinking') }], 2000);
    assert.equal(ghost.state, state, 'nothing changes (same time: last_seen unchanged)');
    // A node known only by stray session messages or transitions is not added.
    const stray = run(state, [{ kind: 'session', node: 'gamma', key: 'cli:x', session: session('cli:x', 'thinking') }], 3000);
    assert.equal(stray.state, state);
  });

  test("a node's transitions pass through with its node_id", () => {
    const t = { session_key: 'cli:a1', from: 'thinking' as const, to: 'tool_running' as const, tool_name: 'Bash', error_message: null, at: '2026-01-01T10:00:01.000Z' };
    const result = run(twoNodes(), [{ kind: 'transition', node: 'alpha', transition: t }], 1000);
    assert.deepEqual(result.transitions, [{ node_id: 'alpha', ...t }]);
  });

  test('a node whose retained topics are all cleared leaves the fleet', () => {
    let state = twoNodes();
    state = run(state, [{ kind: 'availability', node: 'beta', value: null }, { kind: 'status', node: 'beta', status: null }], 2000).state;
    assert.deepEqual([...state.nodes.keys()], ['alpha']);
  });

  test('new nodes past maxNodes are refused and counted', () => {
    const result = run(initialFleetState(1), [
      { kind: 'availability', node: 'a', value: 'online' },
      { kind: 'availability', node: 'b', value: 'online' },
      { kind: 'status', node: 'a', status: status([]) },
    ], 0);
    assert.deepEqual([...result.state.nodes.keys()], ['a']);
    assert.equal(result.refused, 1);
  });

  test('a node known only by its availability has a null global until its status arrives', () => {
    const state = run(initialFleetState(10), [{ kind: 'availability', node: 'solo', value: 'online' }], 0).state;
    assert.deepEqual(fleetJson(state, 0).nodes[0]!.global, null);
    assert.deepEqual(fleetJson(state, 0).global, { state: 'idle', active_sessions: 0, max_concurrent: 1, uptime_seconds: 0 });
  });
});

describe('fleet views and filters', () => {
  test('the agent view is PocketPaw-shaped, over every node, keys prefixed <node_id>/', () => {
    const state = run(twoNodes(), [{ kind: 'availability', node: 'beta', value: 'offline' }], 1000).state;
    const body = AgentStatusResponse.parse(JSON.parse(renderAgentView(state, { now: 1000, startedAt: 0 }, NO_FILTER).json));
    assert.deepEqual(body.sessions.map((s) => [s.session_key, s.channel, s.state]), [
      ['alpha/cli:a1', 'cli', 'tool_running'],
      ['alpha/telegram:a2', 'telegram', 'thinking'],
      ['beta/cli:b1', 'cli', 'error'],
    ]);
    assert.equal(body.global.state, 'degraded');
  });

  test('?node=, ?session= (own key or node/key) and ?channel= filter the fleet view', () => {
    const state = twoNodes();
    const render = (filter: { sessions?: string[]; channels?: string[]; nodes?: string[] }) =>
      FleetStatusResponse.parse(
        JSON.parse(
          renderFleet(state, { now: 1000, startedAt: 0 }, {
            sessions: filter.sessions ? new Set(filter.sessions) : null,
            channels: filter.channels ? new Set(filter.channels) : null,
            nodes: filter.nodes ? new Set(filter.nodes) : null,
          }).json,
        ),
      ).nodes.map((n) => [n.node_id, n.sessions.map((s) => s.session_key)]);
    assert.deepEqual(render({ nodes: ['beta'] }), [['beta', ['cli:b1']]]);
    assert.deepEqual(render({ channels: ['telegram'] }), [['alpha', ['telegram:a2']], ['beta', []]]);
    assert.deepEqual(render({ sessions: ['beta/cli:b1'] }), [['alpha', []], ['beta', ['cli:b1']]]);
    assert.deepEqual(render({ sessions: ['cli:a1'] }), [['alpha', ['cli:a1']], ['beta', []]]);
  });

  test('the fingerprint ignores the timing fields only', () => {
    const state = twoNodes();
    const a = renderFleet(state, { now: 1000, startedAt: 0 }, NO_FILTER);
    const b = renderFleet(state, { now: 9000, startedAt: 0 }, NO_FILTER);
    assert.notEqual(a.json, b.json);
    assert.equal(a.fingerprint, b.fingerprint);
    const c = renderFleet(run(state, [{ kind: 'availability', node: 'beta', value: 'offline' }], 1000).state, { now: 1000, startedAt: 0 }, NO_FILTER);
    assert.notEqual(c.fingerprint, a.fingerprint);
  });
});

describe('fleet message decoding', () => {
  const base = 'pocketpaw-status';
  const buf = (s: string) => Buffer.from(s);
  const reason = (topic: string, payload: Buffer) => {
    const d = decodeMessage(base, topic, payload);
    return d.ok ? 'ok' : d.reason;
  };

  test('what a daemon publishes decodes', () => {
    assert.deepEqual(decodeMessage(base, `${base}/n1/availability`, buf('online')), { ok: true, input: { kind: 'availability', node: 'n1', value: 'online' } });
    assert.equal(reason(`${base}/n1/status`, buf(JSON.stringify(status([A1])))), 'ok');
    const encoded = encodeURIComponent('telegram:1/2');
    const s = session('telegram:1/2', 'thinking');
    assert.deepEqual(decodeMessage(base, `${base}/n1/sessions/${encoded}`, buf(JSON.stringify(s))), { ok: true, input: { kind: 'session', node: 'n1', key: 'telegram:1/2', session: s } });
    assert.deepEqual(decodeMessage(base, `${base}/n1/sessions/${encoded}`, Buffer.alloc(0)), { ok: true, input: { kind: 'session', node: 'n1', key: 'telegram:1/2', session: null } });
    assert.equal(reason(`${base}/n1/transitions`, buf('{"session_key":"cli:1","from":null,"to":"thinking","tool_name":null,"error_message":null,"at":"2026-01-01T10:00:00.000Z"}')), 'ok');
  });

  test('garbage is dropped with its reason', () => {
    assert.equal(reason(`${base}/n1/status`, buf('{not json')), 'invalid_json');
    assert.equal(reason(`${base}/n1/status`, buf('{"global":{}}')), 'invalid_payload');
    assert.equal(reason(`${base}/n1/status`, buf(JSON.stringify({ ...status([]), v: 2 }))), 'invalid_payload');
    assert.equal(reason(`${base}/n1/status`, Buffer.from([0x7b, 0xff, 0x7d])), 'invalid_utf8');
    assert.equal(reason(`${base}/n1/status`, Buffer.alloc(2 * 1024 * 1024, 0x20)), 'oversized');
    assert.equal(reason(`${base}/n1/availability`, buf('maybe')), 'invalid_payload');
    assert.equal(reason(`${base}/n1/availability`, Buffer.alloc(100, 0x61)), 'oversized');
    assert.equal(reason(`${base}/n1/sessions/cli%3A1`, buf(JSON.stringify(session('cli:2', 'thinking')))), 'key_mismatch');
    assert.equal(reason(`${base}/n1/sessions/%E0%A4%A`, buf('{}')), 'foreign_topic');
    assert.equal(reason(`${base}/n1/other`, buf('x')), 'foreign_topic');
    assert.equal(reason(`${base}/n%201/status`, buf('{}')), 'bad_node_id');
    assert.equal(reason(`elsewhere/n1/status`, buf('{}')), 'foreign_topic');
    assert.equal(reason(`${base}/n1/transitions`, buf('{"session_key":"cli:1"}')), 'invalid_payload');
  });
});
