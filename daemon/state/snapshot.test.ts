import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { StatusEvent, type StatusEventInput } from '../../protocol/events.ts';
import { AgentStatusResponse } from '../../protocol/snapshot.ts';
import { fold, initialState, type Producer, type StatusState } from './fold.ts';
import { globalState, renderSnapshot, type SessionFilter } from './snapshot.ts';

const START = 10_000;
const T0 = 100_000;
const ONE_SHOT: Producer = { id: 0, agent: false };

const GLOBAL_KEYS = ['state', 'active_sessions', 'max_concurrent', 'uptime_seconds'];
const SESSION_KEYS = ['session_key', 'session_id', 'channel', 'title', 'state', 'tool_name', 'duration_seconds', 'token_usage', 'error_message'];

function feed(state: StatusState, now: number, ...events: StatusEventInput[]): StatusState {
  return events.reduce((s, e) => fold(s, { kind: 'event', event: StatusEvent.parse(e), producer: ONE_SHOT }, now), state);
}

function fresh(maxConcurrent = 5): StatusState {
  return initialState({ maxConcurrent, errorTtlMs: 30_000 });
}

/** Parses a rendered body, checks it against the schema (strict: no extra keys) and returns the raw object too. */
function parse(json: string): { raw: Record<string, unknown>; snap: AgentStatusResponse } {
  const raw: unknown = JSON.parse(json);
  assert.ok(raw !== null && typeof raw === 'object' && !Array.isArray(raw));
  return { raw: raw as Record<string, unknown>, snap: AgentStatusResponse.parse(raw) };
}

function keysOf(value: unknown): string[] {
  assert.ok(value !== null && typeof value === 'object');
  return Object.keys(value);
}

function multi(): StatusState {
  return feed(
    fresh(),
    T0,
    { type: 'agent_start', session_key: 'websocket:a' },
    { type: 'agent_start', session_key: 'discord:b' },
    { type: 'agent_start', session_key: 'websocket:c' },
    { type: 'error', session_key: 'discord:b', message: 'boom' },
  );
}

describe('upstream snapshot shape scenarios (§12)', () => {
  test('upstream 18 test_idle_snapshot_shape', () => {
    const { json } = renderSnapshot(fresh(), START + 12_999, START);
    const { raw, snap } = parse(json);
    assert.deepEqual(Object.keys(raw), ['global', 'sessions']);
    assert.deepEqual(keysOf(raw.global), GLOBAL_KEYS);
    assert.equal(snap.global.state, 'idle');
    assert.equal(snap.global.max_concurrent, 5);
    assert.equal(snap.global.active_sessions, 0);
    assert.ok(Number.isInteger(snap.global.uptime_seconds));
    assert.equal(snap.global.uptime_seconds, 12);
    assert.ok(Array.isArray(snap.sessions));
    assert.deepEqual(snap.sessions, []);
    assert.equal(json, '{"global":{"state":"idle","active_sessions":0,"max_concurrent":5,"uptime_seconds":12},"sessions":[]}');
  });

  test('upstream 19 test_active_snapshot_shape', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'websocket:abc123' },
      { type: 'tool_start', session_key: 'websocket:abc123', name: 'bash' },
    );
    const { json } = renderSnapshot(state, T0 + 2000, START);
    const { raw, snap } = parse(json);
    assert.deepEqual(Object.keys(raw), ['global', 'sessions']);
    assert.deepEqual(keysOf(raw.global), GLOBAL_KEYS);
    assert.ok(Array.isArray(raw.sessions));
    assert.deepEqual(keysOf(raw.sessions[0]), SESSION_KEYS);
    assert.equal(snap.global.state, 'active');
    assert.equal(snap.global.active_sessions, 1);
    assert.ok(Number.isInteger(snap.global.uptime_seconds));
    const s = snap.sessions[0];
    assert.ok(s);
    assert.equal(s.session_id, 'abc123');
    assert.equal(s.channel, 'websocket');
    assert.equal(s.state, 'tool_running');
    assert.equal(s.tool_name, 'bash');
    assert.equal(typeof s.duration_seconds, 'number');
    assert.equal(s.duration_seconds, 2);
    // A float on the wire: one decimal, as Python writes it.
    assert.match(json, /"duration_seconds":2\.0,/);
  });
});

describe('renderSnapshot', () => {
  test('duration_seconds is time in the current state, with exactly one decimal', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    state = feed(state, T0 + 5000, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const cases: [number, string][] = [
      [0, '0.0'],
      [1234, '1.2'],
      [61_000, '61.0'],
    ];
    for (const [elapsed, text] of cases) {
      const { json } = renderSnapshot(state, T0 + 5000 + elapsed, START);
      assert.ok(json.includes(`"duration_seconds":${text},`), `${elapsed} ms -> ${text} in ${json}`);
    }
  });

  test('uptime_seconds is truncated to whole seconds', () => {
    assert.equal(parse(renderSnapshot(fresh(), START + 1999, START).json).snap.global.uptime_seconds, 1);
    assert.equal(parse(renderSnapshot(fresh(), START, START).json).snap.global.uptime_seconds, 0);
  });

  test('every key is present, nulls written, in order of first start', () => {
    const state = feed(multi(), T0 + 1, { type: 'agent_start', session_key: 'websocket:a' });
    const { raw, snap } = parse(renderSnapshot(state, T0 + 1, START).json);
    assert.deepEqual(
      snap.sessions.map((s) => s.session_key),
      ['websocket:a', 'discord:b', 'websocket:c'],
    );
    assert.ok(Array.isArray(raw.sessions));
    for (const s of raw.sessions) assert.deepEqual(keysOf(s), SESSION_KEYS);
    const a = snap.sessions[0];
    assert.ok(a);
    assert.equal(a.title, null);
    assert.equal(a.tool_name, null);
    assert.equal(a.token_usage, null);
    assert.equal(a.error_message, null);
    assert.equal(snap.global.state, 'degraded');
    assert.equal(snap.sessions[1]?.error_message, 'boom');
  });

  test('strings are JSON-escaped, non-ASCII is kept as is', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:"q"\\', title: 'Café ✓ "x"\n' });
    const { json } = renderSnapshot(state, T0, START);
    const { snap } = parse(json);
    assert.equal(snap.sessions[0]?.session_key, 'ws:"q"\\');
    assert.equal(snap.sessions[0]?.title, 'Café ✓ "x"\n');
    assert.ok(json.includes('Café ✓'));
  });

  test('token_usage is rendered as {input, output}', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'token_usage', session_key: 'ws:1', input_tokens: 7, output_tokens: 3 });
    const { raw, snap } = parse(renderSnapshot(state, T0, START).json);
    assert.deepEqual(snap.sessions[0]?.token_usage, { input: 7, output: 3 });
    assert.ok(Array.isArray(raw.sessions));
    const s: unknown = raw.sessions[0];
    assert.ok(s !== null && typeof s === 'object' && 'token_usage' in s);
    assert.deepEqual(keysOf(s.token_usage), ['input', 'output']);
  });

  test('globalState: idle, active, degraded', () => {
    assert.equal(globalState(fresh()), 'idle');
    const active = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'ask_user_question', session_key: 'ws:1' });
    assert.equal(globalState(active), 'active');
    assert.equal(globalState(multi()), 'degraded');
  });
});

describe('renderSnapshot with a SessionFilter', () => {
  const keys = (filter: SessionFilter): string[] =>
    parse(renderSnapshot(multi(), T0, START, filter).json).snap.sessions.map((s) => s.session_key);

  test('by sessions', () => {
    assert.deepEqual(keys({ sessions: new Set(['websocket:c', 'discord:b', 'nope:1']), channels: null }), ['discord:b', 'websocket:c']);
  });

  test('by channels', () => {
    assert.deepEqual(keys({ sessions: null, channels: new Set(['websocket']) }), ['websocket:a', 'websocket:c']);
  });

  test('sessions and channels together are an AND', () => {
    assert.deepEqual(keys({ sessions: new Set(['websocket:a', 'discord:b']), channels: new Set(['websocket']) }), ['websocket:a']);
    assert.deepEqual(keys({ sessions: new Set(['discord:b']), channels: new Set(['websocket']) }), []);
  });

  test('an all-null filter shows everything', () => {
    assert.deepEqual(keys({ sessions: null, channels: null }), ['websocket:a', 'discord:b', 'websocket:c']);
  });

  test('global is not affected by filters', () => {
    const unfiltered = parse(renderSnapshot(multi(), T0, START).json).snap.global;
    const filters: SessionFilter[] = [
      { sessions: new Set(['websocket:a']), channels: null },
      { sessions: null, channels: new Set(['nothing']) },
    ];
    for (const filter of filters) {
      const g = parse(renderSnapshot(multi(), T0, START, filter).json).snap.global;
      assert.deepEqual(g, unfiltered);
      assert.equal(g.state, 'degraded');
      assert.equal(g.active_sessions, 3);
    }
  });
});

describe('fingerprint', () => {
  const base = (): StatusState =>
    feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1', title: 'one' }, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });

  test('is identical for two renders at different times', () => {
    const state = base();
    const a = renderSnapshot(state, T0 + 100, START);
    const b = renderSnapshot(state, T0 + 65_432, START);
    assert.notEqual(a.json, b.json);
    assert.equal(a.fingerprint, b.fingerprint);
  });

  test('differs when tokens, title, error, state, tool or max_concurrent change', () => {
    const state = base();
    const fp = renderSnapshot(state, T0, START).fingerprint;
    const changed: [string, StatusState][] = [
      ['tokens', feed(state, T0, { type: 'token_usage', session_key: 'ws:1', input: 1, output: 0 })],
      ['title', feed(state, T0, { type: 'title', session_key: 'ws:1', title: 'two' })],
      ['error', feed(state, T0, { type: 'error', session_key: 'ws:1', message: 'x' })],
      ['state', feed(state, T0, { type: 'tool_result', session_key: 'ws:1' })],
      ['tool', feed(state, T0, { type: 'tool_start', session_key: 'ws:1', name: 'grep' })],
      ['max_concurrent', feed(state, T0, { type: 'hello', max_concurrent: 9 })],
    ];
    const seen = new Set([fp]);
    for (const [what, next] of changed) {
      const other = renderSnapshot(next, T0, START).fingerprint;
      assert.notEqual(other, fp, what);
      seen.add(other);
    }
    assert.equal(seen.size, changed.length + 1);
  });

  test('a different error message alone changes the fingerprint', () => {
    const errored = feed(base(), T0, { type: 'error', session_key: 'ws:1', message: 'x' });
    const again = feed(errored, T0, { type: 'error', session_key: 'ws:1', message: 'y' });
    assert.notEqual(renderSnapshot(errored, T0, START).fingerprint, renderSnapshot(again, T0, START).fingerprint);
  });
});
