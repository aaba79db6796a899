/**
 * PocketPaw's upstream tracker scenarios (pocketpaw-behaviour.md §12: 1-13, 18, 19 and PR #2040's token scenarios),
 * driven through the real socket and read back over HTTP. Each snapshot must be what the pure fold computes for the
 * same lines, timing fields aside, key order included, and must say what upstream's test expects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { decodeLine } from '../daemon/ingest/decode.ts';
import { fold, initialState, type StatusState } from '../daemon/state/fold.ts';
import { renderSnapshot } from '../daemon/state/snapshot.ts';
import { AgentStatusResponse } from '../protocol/snapshot.ts';
import { getStatus, Producer, startDaemon, waitFor, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

/** Upstream's tracker fixture: StatusTracker(max_concurrent=3). */
let tracker: TestDaemon;
/** Upstream's API tests use the app's default tracker (max_concurrent 5). */
let api: TestDaemon;

before(async () => {
  [tracker, api] = await Promise.all([startDaemon({ args: ['--max-concurrent', '3'] }), startDaemon()]);
});
after(async () => {
  await Promise.all([tracker?.stop(), api?.stop()]);
});

interface Run {
  /** The snapshot as served. */
  readonly body: StatusBody;
  readonly text: string;
}

function lineOf(event: object | string): string {
  return typeof event === 'string' ? event : `${JSON.stringify(event)}\n`;
}

/** Everything but the timing fields, in wire order. */
function timeless(json: string): string {
  const value = JSON.parse(json) as { global: Record<string, unknown>; sessions: Record<string, unknown>[] };
  delete value.global.uptime_seconds;
  for (const s of value.sessions) delete s.duration_seconds;
  return JSON.stringify(value);
}

/**
 * Sends `events` on one connection to an idle daemon, reads the snapshot, checks it against the pure fold of the same
 * lines, then ends every session it started so the next scenario starts idle again.
 */
async function run(d: TestDaemon, maxConcurrent: number, events: (object | string)[]): Promise<Run> {
  await waitFor(async () => (await getStatus(d.url)).global.state === 'idle', { timeoutMs: 20_000, what: 'an idle daemon' });
  const p = await Producer.connect(d.socket);
  const lines = events.map(lineOf);
  p.send(...lines);
  // Lines are applied in order, so the answer to a line rejected on purpose means all the ones before are applied.
  p.send('{"v":99,"type":"fence"}\n');
  await p.waitReplies(1, 20_000);
  assert.deepEqual(p.replies, ['{"error":"line ' + (lines.length + 1) + ': unsupported protocol version 99 (this daemon speaks v 1)"}']);

  const res = await fetch(`${d.url}/api/v1/agent/status`);
  assert.equal(res.status, 200);
  const text = await res.text();
  AgentStatusResponse.parse(JSON.parse(text));

  let state: StatusState = initialState({ maxConcurrent, errorTtlMs: 30_000 });
  for (const line of lines) {
    const decoded = decodeLine(Buffer.from(line.replace(/\r?\n$/, '')));
    if (decoded.kind === 'event') state = fold(state, { kind: 'event', event: decoded.event, producer: { id: 1, agent: false } }, 0);
  }
  assert.equal(timeless(text), timeless(renderSnapshot(state, 0, 0).json), 'the daemon serves what the pure fold computes');

  const body = JSON.parse(text) as StatusBody;
  for (const s of body.sessions) p.send({ type: 'agent_end', session_key: s.session_key });
  await p.end();
  return { body, text };
}

function only(body: StatusBody): StatusBody['sessions'][number] {
  assert.equal(body.sessions.length, 1);
  return body.sessions[0]!;
}

describe('upstream tracker scenarios, through the socket and HTTP', () => {
  test('1 test_idle_by_default', async () => {
    const { body } = await run(tracker, 3, []);
    assert.equal(body.global.state, 'idle');
    assert.equal(body.global.active_sessions, 0);
    assert.deepEqual(body.sessions, []);
  });

  test('2 test_agent_start_creates_session', async () => {
    const { body } = await run(tracker, 3, [{ type: 'agent_start', session_key: 'websocket:abc' }]);
    assert.equal(body.global.state, 'active');
    assert.equal(body.global.active_sessions, 1);
    assert.equal(only(body).channel, 'websocket');
    assert.equal(only(body).session_id, 'abc');
  });

  test('3 test_thinking_state', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'thinking', session_key: 'ws:1' },
    ]);
    assert.equal(only(body).state, 'thinking');
  });

  test('4 test_tool_running_state', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'tool_start', session_key: 'ws:1', name: 'bash' },
    ]);
    assert.equal(only(body).state, 'tool_running');
    assert.equal(only(body).tool_name, 'bash');
  });

  test('5 test_tool_result_transitions_to_streaming', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'tool_start', session_key: 'ws:1', name: 'bash' },
      { type: 'tool_result', session_key: 'ws:1' },
    ]);
    assert.equal(only(body).state, 'streaming');
    assert.equal(only(body).tool_name, null);
  });

  test('6 test_error_state_sets_degraded', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'error', session_key: 'ws:1', message: 'Rate limit' },
    ]);
    assert.equal(body.global.state, 'degraded');
    assert.equal(only(body).state, 'error');
    assert.equal(only(body).error_message, 'Rate limit');
  });

  test('7 test_agent_end_removes_session', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'agent_end', session_key: 'ws:1' },
    ]);
    assert.equal(body.global.state, 'idle');
    assert.deepEqual(body.sessions, []);
  });

  test('8 test_waiting_for_user_state', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'ask_user_question', session_key: 'ws:1' },
    ]);
    assert.equal(only(body).state, 'waiting_for_user');
  });

  test('9 test_token_usage_folds_in_a_run_total_without_double_counting (PR #2040)', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'token_usage', session_key: 'ws:1', input: 100, output: 50 },
      { type: 'token_usage', session_key: 'ws:1', input: 200, output: 80 },
    ]);
    assert.deepEqual(only(body).token_usage, { input: 200, output: 80 });
  });

  test('9b test_a_shrinking_token_payload_is_not_a_refund (PR #2040)', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'token_usage', session_key: 'ws:1', input: 900, output: 80 },
      { type: 'token_usage', session_key: 'ws:1', input: 10, output: 1 },
    ]);
    assert.deepEqual(only(body).token_usage, { input: 900, output: 80 });
  });

  test('9c the same with the backend keys PocketPaw really publishes (input_tokens, output_tokens)', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'token_usage', session_key: 'ws:1', input_tokens: 100, output_tokens: 50, cached_input_tokens: 3, model: 'm', backend: 'b' },
      { type: 'token_usage', session_key: 'ws:1', input_tokens: 200, output_tokens: 80, total_cost_usd: 0.01 },
      { type: 'token_usage', session_key: 'ws:1', input_tokens: 150, output_tokens: 90 },
    ]);
    assert.deepEqual(only(body).token_usage, { input: 200, output: 90 });
  });

  test('9d token_usage is null until the first token event; a restart resets it', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'agent_start', session_key: 'ws:2' },
      { type: 'token_usage', session_key: 'ws:2', input: 5, output: 6 },
      { type: 'agent_start', session_key: 'ws:2' },
    ]);
    assert.deepEqual(body.sessions.map((s) => s.token_usage), [null, null]);
  });

  test('10 test_max_concurrent_in_snapshot', async () => {
    const { body } = await run(tracker, 3, []);
    assert.equal(body.global.max_concurrent, 3);
  });

  test('11 test_ignores_events_without_session_key', async () => {
    const { body } = await run(tracker, 3, [{ type: 'thinking' }]);
    assert.equal(body.global.state, 'idle');
  });

  test('12 test_multiple_sessions', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'agent_start', session_key: 'discord:2' },
    ]);
    assert.equal(body.global.active_sessions, 2);
    assert.deepEqual(body.sessions.map((s) => s.session_key), ['ws:1', 'discord:2']);
  });

  test('13 test_degraded_with_mixed_states', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'agent_start', session_key: 'ws:2' },
      { type: 'error', session_key: 'ws:2', message: 'boom' },
    ]);
    assert.equal(body.global.state, 'degraded');
    assert.equal(body.global.active_sessions, 2);
  });

  test('a PocketPaw failed run (tool_result status error from "agent") is an error with the result as message', async () => {
    const { body } = await run(tracker, 3, [
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'tool_start', session_key: 'ws:1', name: 'bash' },
      { type: 'tool_result', session_key: 'ws:1', name: 'agent', status: 'error', result: 'backend crashed' },
    ]);
    assert.equal(body.global.state, 'degraded');
    assert.equal(only(body).state, 'error');
    assert.equal(only(body).error_message, 'backend crashed');
  });
});

describe('upstream API scenarios, through the socket and HTTP', () => {
  test('18 test_idle_snapshot_shape', async () => {
    const { body, text } = await run(api, 5, []);
    assert.deepEqual(Object.keys(body), ['global', 'sessions']);
    assert.equal(body.global.state, 'idle');
    assert.equal(body.global.max_concurrent, 5);
    assert.equal(body.global.active_sessions, 0);
    assert.ok(Number.isInteger(body.global.uptime_seconds));
    assert.match(text, /"uptime_seconds":\d+\}/, 'an integer on the wire');
    assert.ok(Array.isArray(body.sessions));
  });

  test('19 test_active_snapshot_shape', async () => {
    const { body, text } = await run(api, 5, [
      { type: 'agent_start', session_key: 'websocket:abc123' },
      { type: 'tool_start', session_key: 'websocket:abc123', name: 'bash' },
    ]);
    assert.equal(body.global.state, 'active');
    const s = only(body);
    assert.equal(s.session_id, 'abc123');
    assert.equal(s.state, 'tool_running');
    assert.equal(s.tool_name, 'bash');
    assert.equal(typeof s.duration_seconds, 'number');
    assert.match(text, /"duration_seconds":\d+\.\d,/, 'a float on the wire, as Python writes round(x, 1)');
  });
});
