/**
 * The fleet aggregator against a real mosquitto, with simulated nodes publishing exactly what a daemon publishes
 * (scripts/bench/sim-nodes.ts: the daemon's own fold and renderer).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { connectAsync, type MqttClient } from 'mqtt';
import type { StatusEvent } from '../protocol/events.ts';
import { NODE_OFFLINE, type FleetStatusResponse } from '../protocol/fleet.ts';
import { AgentStatusResponse } from '../protocol/snapshot.ts';
import { renderSnapshot } from '../daemon/state/snapshot.ts';
import { initialState } from '../daemon/state/fold.ts';
import { SimNode } from '../scripts/bench/sim-nodes.ts';
import { MOSQUITTO_SKIP, startBroker, type TestBroker } from './helpers/broker.ts';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { buildDist } from '../scripts/build.ts';
import { cleanEnv, runCli, tempDir, waitFor } from './helpers/daemon.ts';
import { rawExchange } from './helpers/http.ts';
import { RawSse } from './helpers/sse.ts';
import { getFleet, startFleet, timelessFleet, waitForFleet, type TestFleet } from './helpers/fleet.ts';
import { scrape, series } from './helpers/metrics.ts';

const ev = (type: StatusEvent['type'], session_key: string, extra: Record<string, unknown> = {}) => ({ type, session_key, ...extra }) as StatusEvent;

/** Each node's own snapshot without timers, as its daemon would serve it (the node's fold state, rendered). */
function ownSnapshot(node: SimNode): { global: Record<string, unknown>; sessions: Record<string, unknown>[] } {
  const body = JSON.parse(renderSnapshot({ ...initialState({ maxConcurrent: 5, errorTtlMs: 30_000 }), sessions: node.sessions }, 0, 0).json) as {
    global: Record<string, unknown>;
    sessions: Record<string, unknown>[];
  };
  return { global: { ...body.global, uptime_seconds: 0 }, sessions: body.sessions.map((s) => ({ ...s, duration_seconds: 0 })) };
}

function nodePart(fleet: FleetStatusResponse, id: string) {
  const node = fleet.nodes.find((n) => n.node_id === id);
  assert.ok(node, `node ${id} in the fleet`);
  return node;
}

describe('fleet through a real broker, simulated nodes', { skip: MOSQUITTO_SKIP }, () => {
  let broker: TestBroker;
  let fleet: TestFleet;
  const nodes: SimNode[] = [];

  before(async () => {
    broker = await startBroker();
    for (const id of ['alpha', 'beta', 'gamma']) nodes.push(await SimNode.connect(broker.url, id));
    const [alpha, beta, gamma] = nodes as [SimNode, SimNode, SimNode];
    // A script of events on each node, published before the aggregator starts: it reads them from retained state.
    await alpha.apply([ev('agent_start', 'cli:a1', { title: 'Refactor' }), ev('tool_start', 'cli:a1', { name: 'Bash' })]);
    await alpha.apply([ev('agent_start', 'telegram:42', {}), ev('token_usage', 'telegram:42', { input: 100, output: 7 })]);
    await beta.apply([ev('agent_start', 'cli:b1', {}), ev('ask_user_question', 'cli:b1')]);
    await beta.apply([ev('agent_start', 'cli:b2', {}), ev('error', 'cli:b2', { message: 'rate limited' })]);
    await gamma.apply([ev('agent_start', 'cli:g1', {}), ev('agent_end', 'cli:g1')]);
    fleet = await startFleet(broker.url);
  });

  after(async () => {
    await fleet?.stop();
    for (const node of nodes) node.client.end(true);
    await broker?.stop();
  });

  test("a late-started aggregator shows every node from retained state, each node's part as its own daemon serves it", async () => {
    const body = await waitForFleet(fleet.url, (f) => f.nodes.length === 3 && f.nodes.every((n) => n.global !== null), 'three nodes', 2000);
    assert.deepEqual(body.nodes.map((n) => [n.node_id, n.online]), [['alpha', true], ['beta', true], ['gamma', true]]);
    for (const node of nodes) {
      const part = nodePart(body, node.nodeId);
      const timeless = { global: { ...part.global!, uptime_seconds: 0 }, sessions: part.sessions.map((s) => ({ ...s, duration_seconds: 0 })) };
      assert.deepEqual(timeless, ownSnapshot(node), node.nodeId);
    }
    assert.deepEqual(body.global, { ...body.global, state: 'degraded', active_sessions: 4, max_concurrent: 15 });
  });

  test("/api/v1/agent/status on the fleet is PocketPaw's shape over every node, keys prefixed <node_id>/", async () => {
    const res = await fetch(`${fleet.url}/api/v1/agent/status`);
    assert.equal(res.status, 200);
    const body = AgentStatusResponse.parse(await res.json());
    assert.deepEqual(body.sessions.map((s) => s.session_key), ['alpha/cli:a1', 'alpha/telegram:42', 'beta/cli:b1', 'beta/cli:b2']);
    assert.equal(body.sessions[1]!.channel, 'telegram');
    assert.deepEqual(body.sessions[1]!.token_usage, { input: 100, output: 7 });
    const filtered = AgentStatusResponse.parse(await (await fetch(`${fleet.url}/api/v1/agent/status?session=beta/cli:b1`)).json());
    assert.deepEqual(filtered.sessions.map((s) => s.session_key), ['beta/cli:b1']);
  });

  test('`status --url` against a fleet prints a NODE column', async () => {
    const out = await runCli(['status', '--url', fleet.url]);
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.split('\n');
    assert.match(lines.find((l) => l.includes('SESSION'))!, /^ {2}NODE +SESSION +CHANNEL +STATE/);
    assert.ok(lines.some((l) => /^ {2}alpha +Refactor +cli +tool_running/.test(l)), out.stdout);
    assert.ok(lines.some((l) => /^ {2}beta +b2 +cli +error: rate limit/.test(l)), out.stdout);
    // A single daemon's table has no NODE column: the fleet says what it is in a response header.
    assert.equal((await fetch(`${fleet.url}/api/v1/agent/status`)).headers.get('x-pocketpaw-status-view'), 'fleet');
  });

  test('the agent stream on the fleet carries the prefixed snapshot, so stream clients work unchanged', async () => {
    const sse = await RawSse.open(`${fleet.url}/api/v1/agent/status/stream`);
    try {
      await sse.waitFor((s) => s.of('status').length > 0, 'a status event');
      const body = AgentStatusResponse.parse(JSON.parse(sse.of('status')[0]!.data));
      assert.ok(body.sessions.some((s) => s.session_key === 'alpha/cli:a1'));
    } finally {
      sse.close();
    }
  });

  test('the fleet stream: status events, transitions with node_id, ?node= filter, Last-Event-ID replay', async () => {
    const received: { type: string; data: Record<string, unknown>; id: string }[] = [];
    const es = new EventSource(`${fleet.url}/api/v1/fleet/status/stream?transitions=1&node=alpha`);
    for (const type of ['status', 'transition']) {
      es.addEventListener(type, (e) => received.push({ type, data: JSON.parse(e.data) as Record<string, unknown>, id: e.lastEventId }));
    }
    try {
      await waitFor(() => received.some((r) => r.type === 'status'), { what: 'the first status event' });
      const first = received.find((r) => r.type === 'status')!.data as unknown as FleetStatusResponse;
      assert.deepEqual(first.nodes.map((n) => n.node_id), ['alpha']);
      await nodes[1]!.apply([ev('thinking', 'cli:b1')]);
      await nodes[0]!.apply([ev('stream_start', 'cli:a1')]);
      await waitFor(() => received.some((r) => r.type === 'transition'), { what: "alpha's transition" });
      const transitions = received.filter((r) => r.type === 'transition').map((r) => r.data);
      assert.deepEqual(transitions.map((t) => [t.node_id, t.session_key, t.from, t.to]), [['alpha', 'cli:a1', 'tool_running', 'streaming']], "beta's transition is filtered out");
      assert.match(String(transitions[0]!.at), /^\d{4}-\d\d-\d\dT/);
      await waitFor(() => {
        const last = received.filter((r) => r.type === 'status').at(-1)?.data as unknown as FleetStatusResponse | undefined;
        return last?.nodes[0]?.sessions[0]?.state === 'streaming';
      }, { what: 'a status event showing the change' });
      // Ids strictly increase: the hub's guarantees hold on the fleet stream.
      const seqs = received.map((r) => Number(r.id.split('-')[1]));
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
      // Resuming from the first status event's id replays the transition missed since.
      const resumed = await RawSse.open(`${fleet.url}/api/v1/fleet/status/stream?transitions=1&node=alpha`, { 'Last-Event-ID': received[0]!.id });
      try {
        await resumed.waitFor((s) => s.of('transition').length > 0, 'the replayed transition');
        assert.equal(JSON.parse(resumed.of('transition')[0]!.data).node_id, 'alpha');
      } finally {
        resumed.close();
      }
    } finally {
      es.close();
    }
  });

  test('?node=, ?channel= and ?session= filter the fleet snapshot and the stream\'s transitions', async () => {
    const keys = (f: FleetStatusResponse) => f.nodes.map((n) => [n.node_id, n.sessions.map((s) => s.session_key)]);
    assert.deepEqual(keys(await getFleet(fleet.url, '?node=beta')), [['beta', ['cli:b1', 'cli:b2']]]);
    assert.deepEqual(keys(await getFleet(fleet.url, '?channel=telegram')), [['alpha', ['telegram:42']], ['beta', []], ['gamma', []]]);
    assert.deepEqual(keys(await getFleet(fleet.url, '?session=beta/cli:b2')), [['alpha', []], ['beta', ['cli:b2']], ['gamma', []]]);
    const sse = await RawSse.open(`${fleet.url}/api/v1/fleet/status/stream?transitions=1&channel=telegram`);
    try {
      await sse.waitFor((s) => s.of('status').length > 0, 'the first status event');
      await nodes[0]!.apply([ev('tool_start', 'cli:a1', { name: 'Read' }), ev('tool_start', 'telegram:42', { name: 'Grep' })]);
      await sse.waitFor((s) => s.of('transition').length > 0, 'the telegram transition');
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(sse.of('transition').map((m) => (JSON.parse(m.data) as { session_key: string }).session_key), ['telegram:42'], 'cli:a1 filtered out');
    } finally {
      sse.close();
    }
  });

  test('a garbage publisher is dropped, counted in /metrics and logged; the fleet carries on unchanged', async () => {
    const before = timelessFleet(await getFleet(fleet.url));
    const garbage: MqttClient = await connectAsync(broker.url);
    try {
      await garbage.publishAsync('pocketpaw-status/alpha/status', '{"global": "not this"}', { qos: 1 });
      await garbage.publishAsync('pocketpaw-status/alpha/status', Buffer.alloc(2 * 1024 * 1024, 0x7b), { qos: 1 });
      await garbage.publishAsync('pocketpaw-status/beta/sessions/cli%3Ab1', 'not json', { qos: 1 });
      await garbage.publishAsync('pocketpaw-status/beta/transitions', '{"v":99}', { qos: 1 });
      await garbage.publishAsync('pocketpaw-status/delta/availability', 'maybe', { qos: 1 });
      const dropped = (text: string, reason: string) => series(text, 'pocketpaw_status_fleet_messages_dropped_total', { reason });
      const m = (await waitFor(async () => {
        const text = await scrape(fleet.url);
        return dropped(text, 'invalid_payload') === 3 ? text : null;
      }, { what: 'drops counted in /metrics' })) as string;
      assert.equal(dropped(m, 'oversized'), 1);
      assert.equal(dropped(m, 'invalid_json'), 1);
      // Logged, rate-limited: the first drop at once, the other four only as a count in a later summary line.
      assert.equal(fleet.logs().filter((l) => l.level === 40 && /dropped an MQTT message/.test(l.msg)).length, 1);
      assert.deepEqual(timelessFleet(await getFleet(fleet.url)), before, 'nothing corrupted, no node invented');
    } finally {
      await garbage.endAsync();
    }
  });

  test('a node whose connection dies shows offline within 2 s of the broker publishing its will, sessions error / "node offline"', async () => {
    const watcher = await connectAsync(broker.url);
    try {
      let willAt = 0;
      watcher.on('message', (topic, payload) => {
        if (topic === 'pocketpaw-status/beta/availability' && payload.toString() === 'offline') willAt = Date.now();
      });
      await watcher.subscribeAsync('pocketpaw-status/beta/availability', { qos: 1 });
      nodes[1]!.kill();
      await waitFor(() => willAt > 0, { what: 'the broker publishing the last will', timeoutMs: 15_000 });
      const body = await waitForFleet(fleet.url, (f) => nodePart(f, 'beta').online === false, 'beta offline', 2000);
      const beta = nodePart(body, 'beta');
      assert.deepEqual(beta.sessions.map((s) => [s.session_key, s.state, s.error_message]), [
        ['cli:b1', 'error', NODE_OFFLINE],
        ['cli:b2', 'error', NODE_OFFLINE],
      ]);
      assert.equal(body.global.state, 'degraded');
      assert.equal(body.global.active_sessions, 2, "the offline node's sessions no longer count");

      // Back: a fresh daemon (nothing running) publishes online and its empty status; that replaces the sessions.
      nodes[1] = await SimNode.connect(broker.url, 'beta');
      const back = await waitForFleet(fleet.url, (f) => nodePart(f, 'beta').online && nodePart(f, 'beta').sessions.length === 0, 'beta back');
      assert.equal(nodePart(back, 'beta').global!.state, 'idle');
    } finally {
      await watcher.endAsync();
    }
  });

  test('a restarted aggregator shows the same fleet from retained state within 2 s', async () => {
    const before = timelessFleet(await getFleet(fleet.url));
    await fleet.stop();
    fleet = await startFleet(broker.url);
    const after = await waitForFleet(fleet.url, (f) => JSON.stringify(timelessFleet(f)) === JSON.stringify(before), 'the same fleet', 2000).catch(async () => getFleet(fleet.url));
    assert.deepEqual(timelessFleet(after), before);
  });
});

describe('fleet configuration', () => {
  test('without --mqtt-url the fleet refuses to start (exit 2) and says what to give', async () => {
    const out = await runCli(['fleet', '--port', '0']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /give --mqtt-url \(or POCKETPAW_STATUS_MQTT_URL\)/);
  });

  test("--help lists serve's shared options and the fleet's own, each with its variable", async () => {
    const out = await runCli(['fleet', '--help']);
    assert.equal(out.code, 0);
    for (const text of ['--mqtt-url URL', 'POCKETPAW_STATUS_MQTT_TOPIC_BASE', '--max-nodes N', '--mqtt-password-file', '--api-key-file', '--sse-replay', 'default 8781']) {
      assert.ok(out.stdout.includes(text), `${text} in:\n${out.stdout}`);
    }
  });

  test('an invalid topic base is refused with the flag named', async () => {
    const out = await runCli(['fleet', '--mqtt-url', 'mqtt://127.0.0.1:1', '--mqtt-topic-base', 'a/+/b']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /invalid --mqtt-topic-base "a\/\+\/b"/);
  });
});

describe('fleet HTTP rules', { skip: MOSQUITTO_SKIP }, () => {
  test('the same key rules as serve: the fleet routes need the key, the page and health do not', async () => {
    const broker = await startBroker();
    const fleet = await startFleet(broker.url, [], { POCKETPAW_STATUS_API_KEY: 'fleet-key-Q1w2E3r4T5y6' });
    try {
      assert.equal((await fetch(`${fleet.url}/api/v1/fleet/status`)).status, 403);
      assert.equal((await fetch(`${fleet.url}/api/v1/fleet/status/stream`)).status, 403);
      assert.equal((await fetch(`${fleet.url}/api/v1/agent/status`)).status, 403);
      assert.equal((await fetch(`${fleet.url}/api/v1/fleet/status`, { headers: { 'X-Status-Key': 'fleet-key-Q1w2E3r4T5y6' } })).status, 200);
      assert.equal((await fetch(`${fleet.url}/api/v1/fleet/status`, { method: 'POST', headers: { 'X-Status-Key': 'fleet-key-Q1w2E3r4T5y6' } })).status, 405);
      const page = await fetch(`${fleet.url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<meta name="pocketpaw-status-view" content="fleet">/);
      assert.equal((await fetch(`${fleet.url}/readyz`)).status, 200);
    } finally {
      await fleet.stop();
      await broker.stop();
    }
  });

  test("serve's request checks: a malformed request gets a JSON 400, a foreign Host a 421", async () => {
    const broker = await startBroker();
    const fleet = await startFleet(broker.url);
    try {
      const star = await rawExchange(fleet.url, 'GET * HTTP/1.1\r\nHost: localhost\r\n\r\n');
      assert.equal(star.status, 400);
      assert.match(star.body, /\{"detail":"[^"]+"\}/);
      // A name that rebinds to this machine (fetch would not send a Host of our choosing: raw bytes).
      const rebound = await rawExchange(fleet.url, 'GET /api/v1/fleet/status HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
      assert.equal(rebound.status, 421);
      assert.match(rebound.body, /\{"detail":"/);
    } finally {
      await fleet.stop();
      await broker.stop();
    }
  });
});

describe('fleet in the compiled build', { skip: MOSQUITTO_SKIP }, () => {
  test('dist/fleet.js sits next to dist/cli.js, imports only Node built-ins, and `node dist/cli.js fleet` serves the fleet', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const bundle = (await buildDist(join(dir, 'dist'))).file;
    const source = readFileSync(join(dir, 'dist', 'fleet.js'), 'utf8');
    const imports = [...source.matchAll(/^import .* from ["']([^"']+)["'];?$/gm), ...source.matchAll(/\b(?:__)?require\(["']([^"']+)["']\)/g)].map((m) => m[1]!);
    assert.deepEqual([...new Set(imports.filter((spec) => !builtinModules.includes(spec.replace(/^node:/, ''))))], []);
    assert.doesNotMatch(readFileSync(bundle, 'utf8'), /fleet\/fold\.ts/, 'cli.js does not carry the fleet');

    const broker = await startBroker();
    const node = await SimNode.connect(broker.url, 'bundled');
    await node.apply([ev('agent_start', 'cli:x')]);
    const proc = spawn(process.execPath, [bundle, 'fleet', '--port', '0', '--mqtt-url', broker.url], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let stderr = '';
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const url = (await waitFor(() => /"http":"([^"]+)"/.exec(stderr)?.[1] ?? null, { what: 'the bundled fleet ready line', timeoutMs: 20_000 })) as string;
      const body = await waitForFleet(url, (f) => f.nodes.some((n) => n.node_id === 'bundled' && n.sessions.length === 1), 'the node in the bundled fleet');
      assert.equal(body.nodes[0]!.sessions[0]!.session_key, 'cli:x');
      assert.match(await (await fetch(`${url}/`)).text(), /pocketpaw-status-view/);
    } finally {
      proc.kill('SIGTERM');
      node.client.end(true);
      await broker.stop();
    }
  });
});
