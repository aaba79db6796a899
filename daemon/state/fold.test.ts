import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { StatusEvent, type StatusEventInput } from '../../protocol/events.ts';
import { AgentStatusResponse } from '../../protocol/snapshot.ts';
import {
  AGENT_DISCONNECTED,
  fold,
  foldAll,
  initialState,
  MAX_OPEN_CALLS,
  nextDeadline,
  UNKNOWN_ERROR,
  type FoldInput,
  type Producer,
  type Session,
  type StatusState,
} from './fold.ts';
import { renderSnapshot } from './snapshot.ts';

const TTL = 30_000;
const ONE_SHOT: Producer = { id: 0, agent: false };
const T0 = 1_000_000;

function fresh(maxConcurrent = 3): StatusState {
  return initialState({ maxConcurrent, errorTtlMs: TTL });
}

/** A wire event, validated by the real schema. */
function ev(event: StatusEventInput, producer: Producer = ONE_SHOT): FoldInput {
  return { kind: 'event', event: StatusEvent.parse(event), producer };
}

/** Folds events one after another, each at `now`. */
function feed(state: StatusState, now: number, ...events: StatusEventInput[]): StatusState {
  return events.reduce((s, e) => fold(s, ev(e), now), state);
}

function get(state: StatusState, key: string): Session {
  const s = state.sessions.get(key);
  assert.ok(s, `session ${key} should exist`);
  return s;
}

function snapshot(state: StatusState, now = T0): AgentStatusResponse {
  return AgentStatusResponse.parse(JSON.parse(renderSnapshot(state, now, 0).json));
}

function only(snap: AgentStatusResponse): AgentStatusResponse['sessions'][number] {
  assert.equal(snap.sessions.length, 1);
  const s = snap.sessions[0];
  assert.ok(s);
  return s;
}

describe('upstream tracker scenarios (§12)', () => {
  test('upstream 1 test_idle_by_default', () => {
    const snap = snapshot(fresh());
    assert.equal(snap.global.state, 'idle');
    assert.equal(snap.global.active_sessions, 0);
    assert.deepEqual(snap.sessions, []);
  });

  test('upstream 2 test_agent_start_creates_session', () => {
    const snap = snapshot(feed(fresh(), T0, { type: 'agent_start', session_key: 'websocket:abc' }));
    assert.equal(snap.global.state, 'active');
    assert.equal(snap.global.active_sessions, 1);
    const s = only(snap);
    assert.equal(s.channel, 'websocket');
    assert.equal(s.session_id, 'abc');
  });

  test('upstream 3 test_thinking_state', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'thinking', session_key: 'ws:1' });
    assert.equal(only(snapshot(state)).state, 'thinking');
  });

  test('upstream 4 test_tool_running_state', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const s = only(snapshot(state));
    assert.equal(s.state, 'tool_running');
    assert.equal(s.tool_name, 'bash');
  });

  test('upstream 5 test_tool_result_transitions_to_streaming', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'tool_start', session_key: 'ws:1', name: 'bash' },
      { type: 'tool_result', session_key: 'ws:1' },
    );
    const s = only(snapshot(state));
    assert.equal(s.state, 'streaming');
    assert.equal(s.tool_name, null);
  });

  test('upstream 6 test_error_state_sets_degraded', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'error', session_key: 'ws:1', message: 'Rate limit' });
    const snap = snapshot(state);
    assert.equal(snap.global.state, 'degraded');
    const s = only(snap);
    assert.equal(s.state, 'error');
    assert.equal(s.error_message, 'Rate limit');
  });

  test('upstream 7 test_agent_end_removes_session', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'agent_end', session_key: 'ws:1' });
    const snap = snapshot(state);
    assert.equal(snap.global.state, 'idle');
    assert.deepEqual(snap.sessions, []);
  });

  test('upstream 8 test_waiting_for_user_state', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'ask_user_question', session_key: 'ws:1' });
    assert.equal(only(snapshot(state)).state, 'waiting_for_user');
  });

  test('upstream 9 test_token_usage_folds_in_a_run_total_without_double_counting', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'token_usage', session_key: 'ws:1', input: 100, output: 50 },
      { type: 'token_usage', session_key: 'ws:1', input: 200, output: 80 },
    );
    assert.deepEqual(only(snapshot(state)).token_usage, { input: 200, output: 80 });
  });

  test('upstream 9b test_a_shrinking_token_payload_is_not_a_refund', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'token_usage', session_key: 'ws:1', input: 900, output: 80 },
      { type: 'token_usage', session_key: 'ws:1', input: 10, output: 1 },
    );
    assert.deepEqual(only(snapshot(state)).token_usage, { input: 900, output: 80 });
  });

  test('upstream 10 test_max_concurrent_in_snapshot', () => {
    assert.equal(snapshot(fresh(3)).global.max_concurrent, 3);
  });

  test('upstream 11 test_ignores_events_without_session_key', () => {
    const state = fresh();
    const next = fold(state, ev({ type: 'thinking' }), T0);
    assert.equal(next, state);
    assert.equal(snapshot(next).global.state, 'idle');
  });

  test('upstream 12 test_multiple_sessions', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'agent_start', session_key: 'discord:2' });
    const snap = snapshot(state);
    assert.equal(snap.global.active_sessions, 2);
    assert.equal(snap.sessions.length, 2);
  });

  test('upstream 13 test_degraded_with_mixed_states', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'ws:1' },
      { type: 'agent_start', session_key: 'ws:2' },
      { type: 'error', session_key: 'ws:2', message: 'boom' },
    );
    const snap = snapshot(state);
    assert.equal(snap.global.state, 'degraded');
    assert.equal(snap.global.active_sessions, 2);
  });

  test('upstream 20 test_version_increments_on_state_change', () => {
    // Here a change is a new state object; "nothing happened" is the identical object.
    const before = fresh();
    const after = fold(before, ev({ type: 'agent_start', session_key: 'ws:1' }), T0);
    assert.notEqual(after, before);
  });

  test('upstream 21 test_wait_for_change_returns_immediately_when_version_advanced', () => {
    const s0 = fresh();
    const s1 = fold(s0, ev({ type: 'agent_start', session_key: 'ws:1' }), T0);
    assert.notEqual(s1, s0, 'a change is visible at once');
    const s2 = fold(s1, ev({ type: 'thinking', session_key: 'ws:1' }), T0 + 5);
    assert.equal(s2, s1, 'a no-op is not a change');
  });
});

describe('agent_start', () => {
  test('creates a thinking session with nulls and the given title', () => {
    const s = get(feed(fresh(), T0, { type: 'agent_start', session_key: 'websocket:abc', title: 'Fix it' }), 'websocket:abc');
    assert.equal(s.state, 'thinking');
    assert.equal(s.title, 'Fix it');
    assert.equal(s.toolName, null);
    assert.equal(s.tokens, null);
    assert.equal(s.errorMessage, null);
    assert.equal(s.errorDeadline, null);
    assert.equal(s.stateSince, T0);
  });

  test('restart in place keeps list position and title, resets tool, error and tokens', () => {
    let state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'a:1', title: 'first' },
      { type: 'agent_start', session_key: 'b:2' },
      { type: 'agent_start', session_key: 'c:3' },
      { type: 'tool_start', session_key: 'a:1', name: 'bash' },
      { type: 'token_usage', session_key: 'a:1', input: 10, output: 5 },
    );
    state = feed(state, T0 + 1000, { type: 'agent_start', session_key: 'a:1' });
    assert.deepEqual([...state.sessions.keys()], ['a:1', 'b:2', 'c:3']);
    const s = get(state, 'a:1');
    assert.equal(s.state, 'thinking');
    assert.equal(s.toolName, null);
    assert.equal(s.tokens, null);
    assert.equal(s.title, 'first', 'title is set only when given');
    assert.equal(s.stateSince, T0 + 1000);
  });

  test('restart from error clears error_message and deadline', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'a:1' }, { type: 'error', session_key: 'a:1', message: 'x' });
    state = feed(state, T0 + 10, { type: 'agent_start', session_key: 'a:1', title: 'second' });
    const s = get(state, 'a:1');
    assert.equal(s.state, 'thinking');
    assert.equal(s.errorMessage, null);
    assert.equal(s.errorDeadline, null);
    assert.equal(s.title, 'second');
  });

  test('a restart while thinking is still a new state object (new run)', () => {
    const s1 = feed(fresh(), T0, { type: 'agent_start', session_key: 'a:1' });
    const s2 = feed(s1, T0 + 10, { type: 'agent_start', session_key: 'a:1' });
    assert.notEqual(s2, s1);
    assert.ok(get(s2, 'a:1').run > get(s1, 'a:1').run);
  });
});

describe('state events', () => {
  const started = (): StatusState => feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });

  test('thinking while already thinking returns the identical state', () => {
    const s1 = started();
    assert.equal(fold(s1, ev({ type: 'thinking', session_key: 'ws:1' }), T0 + 50), s1);
  });

  test('thinking from another state moves to thinking and restarts the clock', () => {
    const s1 = feed(started(), T0 + 10, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const s = get(feed(s1, T0 + 20, { type: 'thinking', session_key: 'ws:1' }), 'ws:1');
    assert.equal(s.state, 'thinking');
    assert.equal(s.toolName, null);
    assert.equal(s.stateSince, T0 + 20);
  });

  test('tool_start reads `tool` when `name` is absent', () => {
    const s = get(feed(started(), T0, { type: 'tool_start', session_key: 'ws:1', tool: 'grep' }), 'ws:1');
    assert.equal(s.state, 'tool_running');
    assert.equal(s.toolName, 'grep');
  });

  test('tool_start again, even for the same tool, restarts the clock', () => {
    const s1 = feed(started(), T0 + 10, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const s2 = feed(s1, T0 + 20, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    assert.notEqual(s2, s1);
    assert.equal(get(s2, 'ws:1').stateSince, T0 + 20);
  });

  test('tool_result outside tool_running changes nothing', () => {
    const setups: StatusEventInput[][] = [
      [],
      [{ type: 'ask_user_question', session_key: 'ws:1' }],
      [{ type: 'stream_start', session_key: 'ws:1' }],
      [{ type: 'error', session_key: 'ws:1' }],
    ];
    for (const setup of setups) {
      const s1 = feed(started(), T0, ...setup);
      assert.equal(fold(s1, ev({ type: 'tool_result', session_key: 'ws:1', status: 'success', name: 'bash' }), T0 + 5), s1);
    }
  });

  test('tool_result with status error from a real tool is just a tool result', () => {
    const s1 = feed(started(), T0, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const s = get(feed(s1, T0 + 1, { type: 'tool_result', session_key: 'ws:1', status: 'error', name: 'bash', result: 'exit 1' }), 'ws:1');
    assert.equal(s.state, 'streaming');
    assert.equal(s.errorMessage, null);
  });

  test('tool_result {status:error, name:agent} is a failed run, from any state', () => {
    const failing = { type: 'tool_result', session_key: 'ws:1', status: 'error', name: 'agent', result: 'boom' } as const;
    const setups: StatusEventInput[][] = [
      [],
      [{ type: 'tool_start', session_key: 'ws:1', name: 'bash' }],
      [{ type: 'stream_start', session_key: 'ws:1' }],
      [{ type: 'ask_user_question', session_key: 'ws:1' }],
      [{ type: 'error', session_key: 'ws:1', message: 'earlier' }],
    ];
    for (const setup of setups) {
      const s = get(feed(feed(started(), T0, ...setup), T0 + 7, failing), 'ws:1');
      assert.equal(s.state, 'error');
      assert.equal(s.errorMessage, 'boom');
      assert.equal(s.toolName, null);
      assert.equal(s.errorDeadline, T0 + 7 + TTL);
    }
  });

  test('stream_start goes to streaming, stream_end back to thinking; repeats are no-ops', () => {
    const s1 = feed(started(), T0 + 1, { type: 'stream_start', session_key: 'ws:1' });
    assert.equal(get(s1, 'ws:1').state, 'streaming');
    assert.equal(fold(s1, ev({ type: 'stream_start', session_key: 'ws:1' }), T0 + 2), s1);
    const s2 = feed(s1, T0 + 3, { type: 'stream_end', session_key: 'ws:1' });
    assert.equal(get(s2, 'ws:1').state, 'thinking');
    assert.equal(get(s2, 'ws:1').stateSince, T0 + 3);
    assert.equal(fold(s2, ev({ type: 'stream_end', session_key: 'ws:1' }), T0 + 4), s2);
  });

  test('ask_user_question goes to waiting_for_user and clears the tool', () => {
    const s1 = feed(started(), T0, { type: 'tool_start', session_key: 'ws:1', name: 'AskUserQuestion' });
    const s = get(feed(s1, T0 + 1, { type: 'ask_user_question', session_key: 'ws:1' }), 'ws:1');
    assert.equal(s.state, 'waiting_for_user');
    assert.equal(s.toolName, null);
  });

  test('tool_name is set only in tool_running', () => {
    const s1 = feed(started(), T0, { type: 'tool_start', session_key: 'ws:1', name: 'bash' });
    const leaving: StatusEventInput[] = [
      { type: 'thinking', session_key: 'ws:1' },
      { type: 'tool_result', session_key: 'ws:1' },
      { type: 'stream_start', session_key: 'ws:1' },
      { type: 'ask_user_question', session_key: 'ws:1' },
      { type: 'error', session_key: 'ws:1' },
    ];
    for (const e of leaving) {
      const s = get(feed(s1, T0 + 1, e), 'ws:1');
      assert.notEqual(s.state, 'tool_running', e.type);
      assert.equal(s.toolName, null, e.type);
    }
  });

  test('error without a message says Unknown error and sets a deadline', () => {
    const s = get(feed(started(), T0 + 5, { type: 'error', session_key: 'ws:1' }), 'ws:1');
    assert.equal(s.state, 'error');
    assert.equal(s.errorMessage, UNKNOWN_ERROR);
    assert.equal(UNKNOWN_ERROR, 'Unknown error');
    assert.equal(s.errorDeadline, T0 + 5 + TTL);
  });

  test('error_message is cleared when leaving error via thinking, tool_start or ask_user_question', () => {
    const s1 = feed(started(), T0, { type: 'error', session_key: 'ws:1', message: 'Rate limit' });
    const leaving: StatusEventInput[] = [
      { type: 'thinking', session_key: 'ws:1' },
      { type: 'tool_start', session_key: 'ws:1', name: 'bash' },
      { type: 'ask_user_question', session_key: 'ws:1' },
    ];
    for (const e of leaving) {
      const s = get(feed(s1, T0 + 1, e), 'ws:1');
      assert.notEqual(s.state, 'error', e.type);
      assert.equal(s.errorMessage, null, e.type);
      assert.equal(s.errorDeadline, null, e.type);
    }
  });

  test('title sets the title; the same title again is a no-op', () => {
    const s1 = feed(started(), T0, { type: 'title', session_key: 'ws:1', title: 'Fix the bug' });
    assert.equal(get(s1, 'ws:1').title, 'Fix the bug');
    assert.equal(get(s1, 'ws:1').state, 'thinking');
    assert.equal(fold(s1, ev({ type: 'title', session_key: 'ws:1', title: 'Fix the bug' }), T0 + 1), s1);
  });

  test('agent_end removes the session', () => {
    const s1 = feed(started(), T0, { type: 'agent_end', session_key: 'ws:1' });
    assert.equal(s1.sessions.size, 0);
  });
});

describe('token_usage', () => {
  const started = (): StatusState => feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });

  test('is null until the first token_usage event', () => {
    const s1 = feed(started(), T0, { type: 'thinking', session_key: 'ws:1' }, { type: 'tool_start', session_key: 'ws:1', name: 'x' });
    assert.equal(get(s1, 'ws:1').tokens, null);
    assert.equal(only(snapshot(s1)).token_usage, null);
  });

  test('accepts input_tokens/output_tokens (PocketPaw backend keys)', () => {
    const s1 = feed(started(), T0, { type: 'token_usage', session_key: 'ws:1', input_tokens: 120, output_tokens: 30 });
    assert.deepEqual(get(s1, 'ws:1').tokens, { input: 120, output: 30 });
    const s2 = feed(s1, T0, { type: 'token_usage', session_key: 'ws:1', input_tokens: 150, output_tokens: 20 });
    assert.deepEqual(get(s2, 'ws:1').tokens, { input: 150, output: 30 });
  });

  test('does not change the state or its clock; the same totals again are a no-op', () => {
    const s1 = feed(started(), T0 + 10, { type: 'token_usage', session_key: 'ws:1', input: 5, output: 6 });
    assert.equal(get(s1, 'ws:1').state, 'thinking');
    assert.equal(get(s1, 'ws:1').stateSince, T0);
    assert.equal(fold(s1, ev({ type: 'token_usage', session_key: 'ws:1', input: 5, output: 6 }), T0 + 20), s1);
  });

  test('a new run starts from null again', () => {
    const s1 = feed(started(), T0, { type: 'token_usage', session_key: 'ws:1', input: 900, output: 80 });
    const s2 = feed(s1, T0 + 1, { type: 'agent_start', session_key: 'ws:1' }, { type: 'token_usage', session_key: 'ws:1', input: 10, output: 1 });
    assert.deepEqual(get(s2, 'ws:1').tokens, { input: 10, output: 1 });
  });
});

describe('ignored events', () => {
  test('events for an unknown session return the identical state', () => {
    const s1 = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    const others: StatusEventInput[] = [
      { type: 'thinking', session_key: 'ws:2' },
      { type: 'tool_start', session_key: 'ws:2', name: 'bash' },
      { type: 'tool_result', session_key: 'ws:2', status: 'error', name: 'agent', result: 'x' },
      { type: 'stream_start', session_key: 'ws:2' },
      { type: 'stream_end', session_key: 'ws:2' },
      { type: 'ask_user_question', session_key: 'ws:2' },
      { type: 'token_usage', session_key: 'ws:2', input: 1, output: 1 },
      { type: 'error', session_key: 'ws:2', message: 'Message blocked by injection scanner' },
      { type: 'title', session_key: 'ws:2', title: 't' },
      { type: 'agent_end', session_key: 'ws:2' },
    ];
    for (const e of others) assert.equal(fold(s1, ev(e), T0 + 1), s1, e.type);
    for (const e of others) assert.equal(fold(s1, ev(e, { id: 9, agent: true }), T0 + 1), s1, `${e.type} from an agent`);
  });

  test('events without session_key, or with an empty one, return the identical state', () => {
    const s1 = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    for (const session_key of [undefined, '']) {
      for (const type of ['agent_start', 'thinking', 'error', 'agent_end', 'stream_start'] as const) {
        assert.equal(fold(s1, ev({ type, session_key }), T0 + 1), s1, `${type} ${String(session_key)}`);
      }
    }
  });

  test('unknown extra fields are ignored', () => {
    const event = StatusEvent.parse({ type: 'tool_start', session_key: 'ws:1', name: 'bash', params: { cmd: 'ls' }, extra: 1 });
    const s1 = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    const s = get(fold(s1, { kind: 'event', event, producer: ONE_SHOT }, T0), 'ws:1');
    assert.equal(s.toolName, 'bash');
  });
});

describe('hello', () => {
  test('max_concurrent replaces the configured value', () => {
    const s0 = fresh(5);
    const s1 = fold(s0, ev({ type: 'hello', agent: 'pocketpaw', version: '1.2', max_concurrent: 8 }), T0);
    assert.equal(s1.maxConcurrent, 8);
    assert.equal(snapshot(s1).global.max_concurrent, 8);
  });

  test('hello without max_concurrent, or with the same value, changes nothing', () => {
    const s0 = fresh(5);
    assert.equal(fold(s0, ev({ type: 'hello', agent: 'x' }), T0), s0);
    assert.equal(fold(s0, ev({ type: 'hello', max_concurrent: 5 }), T0), s0);
  });
});

describe('global state and session keys', () => {
  test('idle, active, degraded; waiting_for_user counts as active', () => {
    let state = fresh();
    assert.equal(snapshot(state).global.state, 'idle');
    state = feed(state, T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'ask_user_question', session_key: 'ws:1' });
    assert.equal(snapshot(state).global.state, 'active');
    state = feed(state, T0, { type: 'agent_start', session_key: 'ws:2' }, { type: 'error', session_key: 'ws:2' });
    const snap = snapshot(state);
    assert.equal(snap.global.state, 'degraded');
    assert.equal(snap.global.active_sessions, 2, 'error sessions count as active sessions');
    state = feed(state, T0, { type: 'agent_end', session_key: 'ws:2' });
    assert.equal(snapshot(state).global.state, 'active');
  });

  test('session_id and channel split at the first colon', () => {
    const state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'telegram:1:2' },
      { type: 'agent_start', session_key: ':abc' },
      { type: 'agent_start', session_key: 'plain' },
    );
    const t = get(state, 'telegram:1:2');
    assert.equal(t.channel, 'telegram');
    assert.equal(t.sessionId, '1:2');
    assert.equal(get(state, ':abc').channel, 'unknown');
    assert.equal(get(state, ':abc').sessionId, 'abc');
    assert.equal(get(state, 'plain').sessionId, 'plain');
  });
});

describe('error TTL', () => {
  const errored = (): StatusState =>
    feed(feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }), T0 + 100, { type: 'error', session_key: 'ws:1', message: 'x' });
  const t = T0 + 100;

  test('the session stays until t + ttl - 1 and is removed at t + ttl', () => {
    const s1 = errored();
    assert.equal(get(s1, 'ws:1').errorDeadline, t + TTL);
    assert.equal(fold(s1, { kind: 'expire' }, t + TTL - 1), s1);
    const s2 = fold(s1, { kind: 'expire' }, t + TTL);
    assert.notEqual(s2, s1);
    assert.equal(s2.sessions.has('ws:1'), false);
  });

  test('a newer agent_start before expiry keeps the session', () => {
    const s1 = feed(errored(), t + 10, { type: 'agent_start', session_key: 'ws:1' });
    assert.equal(get(s1, 'ws:1').errorDeadline, null);
    const s2 = fold(s1, { kind: 'expire' }, t + TTL + 1);
    assert.equal(s2, s1);
    assert.equal(get(s2, 'ws:1').state, 'thinking');
  });

  test('leaving error via thinking clears the deadline', () => {
    const s1 = feed(errored(), t + 10, { type: 'thinking', session_key: 'ws:1' });
    assert.equal(get(s1, 'ws:1').errorDeadline, null);
    assert.equal(fold(s1, { kind: 'expire' }, t + TTL * 2), s1);
  });

  test('expire removes only due sessions', () => {
    let state = errored();
    state = feed(state, t + 500, { type: 'agent_start', session_key: 'ws:2' }, { type: 'error', session_key: 'ws:2' });
    state = feed(state, t + 500, { type: 'agent_start', session_key: 'ws:3' });
    const after = fold(state, { kind: 'expire' }, t + TTL);
    assert.deepEqual([...after.sessions.keys()], ['ws:2', 'ws:3']);
  });

  test('nextDeadline is the earliest deadline, or null', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    assert.equal(nextDeadline(fresh()), null);
    assert.equal(nextDeadline(state), null);
    state = feed(state, T0 + 900, { type: 'agent_start', session_key: 'ws:2' }, { type: 'error', session_key: 'ws:2' });
    state = feed(state, T0 + 100, { type: 'error', session_key: 'ws:1' });
    assert.equal(nextDeadline(state), T0 + 100 + TTL);
    state = fold(state, { kind: 'expire' }, T0 + 100 + TTL);
    assert.equal(nextDeadline(state), T0 + 900 + TTL);
    state = fold(state, { kind: 'expire' }, T0 + 900 + TTL);
    assert.equal(nextDeadline(state), null);
  });

  test('foldAll reports the earliest deadline its inputs set, so the runtime never rescans for it', () => {
    const agent: Producer = { id: 7, agent: true };
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' }, { type: 'agent_start', session_key: 'ws:2' });
    let result = foldAll(state, [ev({ type: 'thinking', session_key: 'ws:1' }), ev({ type: 'tool_start', session_key: 'ws:2', name: 'x' })], T0 + 1);
    assert.equal(result.earliestNewDeadline, null, 'no error, no deadline');

    result = foldAll(state, [ev({ type: 'error', session_key: 'ws:2' }), ev({ type: 'tool_result', session_key: 'ws:1', name: 'agent', status: 'error' })], T0 + 5);
    assert.equal(result.earliestNewDeadline, T0 + 5 + TTL, 'an error event and a failed run both set one');
    state = result.state;

    result = foldAll(state, [ev({ type: 'title', session_key: 'ws:1', title: 'still failing' })], T0 + 9);
    assert.equal(result.earliestNewDeadline, null, 'a session that stays in error keeps its deadline');
    result = foldAll(state, [ev({ type: 'error', session_key: 'ws:1', message: 'again' })], T0 + 9);
    assert.equal(result.earliestNewDeadline, T0 + 9 + TTL, 'a new error restarts the TTL');

    state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:3' });
    state = foldAll(state, [ev({ type: 'thinking', session_key: 'ws:3' }, agent)], T0).state;
    result = foldAll(state, [{ kind: 'producer_closed', producer: agent.id }], T0 + 20);
    assert.equal(result.earliestNewDeadline, T0 + 20 + TTL, 'a dead agent puts its sessions in error with a deadline');
  });
});

describe('producers', () => {
  const AGENT: Producer = { id: 1, agent: true };
  const OTHER_AGENT: Producer = { id: 2, agent: true };
  const SHELL: Producer = { id: 3, agent: false };

  function setup(): StatusState {
    let state = fresh();
    state = fold(state, ev({ type: 'hello', agent: 'pocketpaw' }, AGENT), T0);
    state = fold(state, ev({ type: 'agent_start', session_key: 'ws:a' }, AGENT), T0);
    state = fold(state, ev({ type: 'tool_start', session_key: 'ws:a', name: 'bash' }, AGENT), T0);
    state = fold(state, ev({ type: 'agent_start', session_key: 'ws:shell' }, SHELL), T0);
    state = fold(state, ev({ type: 'agent_start', session_key: 'ws:other' }, OTHER_AGENT), T0);
    return state;
  }

  test('events from a long-lived agent make it the owner; a one-shot producer owns nothing', () => {
    const state = setup();
    assert.equal(get(state, 'ws:a').owner, 1);
    assert.equal(get(state, 'ws:other').owner, 2);
    assert.equal(get(state, 'ws:shell').owner, null);
  });

  test('an agent event for an existing session adopts it', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'ws:1' });
    state = fold(state, ev({ type: 'tool_start', session_key: 'ws:1', name: 'x' }, AGENT), T0);
    assert.equal(get(state, 'ws:1').owner, 1);
  });

  test('producer_closed moves its live sessions to error "agent disconnected" with a deadline', () => {
    const s1 = setup();
    const s2 = fold(s1, { kind: 'producer_closed', producer: 1 }, T0 + 50);
    assert.notEqual(s2, s1);
    const a = get(s2, 'ws:a');
    assert.equal(a.state, 'error');
    assert.equal(a.errorMessage, AGENT_DISCONNECTED);
    assert.equal(AGENT_DISCONNECTED, 'agent disconnected');
    assert.equal(a.toolName, null);
    assert.equal(a.errorDeadline, T0 + 50 + TTL);
    assert.equal(get(s2, 'ws:shell'), get(s1, 'ws:shell'));
    assert.equal(get(s2, 'ws:other'), get(s1, 'ws:other'));
    assert.equal(snapshot(s2).global.state, 'degraded');
    // And it expires like any error.
    assert.equal(fold(s2, { kind: 'expire' }, T0 + 50 + TTL).sessions.has('ws:a'), false);
  });

  test('closing a one-shot producer or an unknown connection changes nothing', () => {
    const s1 = setup();
    assert.equal(fold(s1, { kind: 'producer_closed', producer: 3 }, T0 + 50), s1);
    assert.equal(fold(s1, { kind: 'producer_closed', producer: 99 }, T0 + 50), s1);
  });

  test('ended sessions are not resurrected by producer_closed', () => {
    let state = setup();
    state = fold(state, ev({ type: 'agent_end', session_key: 'ws:a' }, AGENT), T0);
    const after = fold(state, { kind: 'producer_closed', producer: 1 }, T0 + 50);
    assert.equal(after, state);
    assert.equal(after.sessions.has('ws:a'), false);
  });

  test('a new agent connection takes over a disconnected session', () => {
    const NEW_AGENT: Producer = { id: 4, agent: true };
    let state = fold(setup(), { kind: 'producer_closed', producer: 1 }, T0 + 50);
    state = fold(state, ev({ type: 'hello', agent: 'pocketpaw' }, NEW_AGENT), T0 + 60);
    state = fold(state, ev({ type: 'tool_start', session_key: 'ws:a', name: 'grep' }, NEW_AGENT), T0 + 70);
    const a = get(state, 'ws:a');
    assert.equal(a.owner, 4);
    assert.equal(a.state, 'tool_running');
    assert.equal(a.toolName, 'grep');
    assert.equal(a.errorMessage, null);
    assert.equal(a.errorDeadline, null);
    assert.equal(fold(state, { kind: 'expire' }, T0 + 50 + TTL), state);
    // The old connection's id no longer owns it.
    assert.equal(fold(state, { kind: 'producer_closed', producer: 1 }, T0 + 80), state);
  });
});

describe('parallel calls (call_id on tool_start / tool_result / ask_user_question)', () => {
  const K = 'cc:1';
  const start = (call_id: string, name: string): StatusEventInput => ({ type: 'tool_start', session_key: K, name, call_id });
  const done = (call_id: string): StatusEventInput => ({ type: 'tool_result', session_key: K, call_id });

  test('a session stays tool_running while any call is open, shows the newest open call, and the last close thinks', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('a', 'Read'), start('b', 'Grep'));
    assert.equal(get(state, K).toolName, 'Grep');
    state = feed(state, T0 + 10, done('b'));
    assert.equal(get(state, K).state, 'tool_running');
    assert.equal(get(state, K).toolName, 'Read', 'back to the newest call still open');
    state = feed(state, T0 + 20, start('c', 'Bash'), done('a'));
    assert.equal(get(state, K).toolName, 'Bash');
    state = feed(state, T0 + 30, done('c'));
    assert.equal(get(state, K).state, 'thinking');
    assert.deepEqual(get(state, K).calls, []);
  });

  test('closing an older call keeps the clock of the tool still shown', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('a', 'Read'));
    state = feed(state, T0 + 5, start('b', 'Grep'));
    state = feed(state, T0 + 9, done('a'));
    assert.equal(get(state, K).toolName, 'Grep');
    assert.equal(get(state, K).stateSince, T0 + 5);
  });

  test('a close for a call that is not open changes nothing (a subagent never ends the parent Agent call)', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('parent', 'Agent'), start('sub1', 'Read'), done('sub1'));
    assert.equal(get(state, K).toolName, 'Agent');
    assert.equal(fold(state, ev(done('sub1')), T0 + 1), state);
    assert.equal(fold(state, ev(done('never-opened')), T0 + 1), state);
  });

  test('without call ids, tool_result behaves as before: tool_running -> streaming', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, { type: 'tool_start', session_key: K, name: 'x' }, { type: 'tool_result', session_key: K });
    assert.equal(get(state, K).state, 'streaming');
  });

  test('a permission wait without a call of its own lasts while other calls close, and ends with the last close', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('a', 'Read'), start('b', 'Bash'), { type: 'ask_user_question', session_key: K });
    assert.equal(get(state, K).state, 'waiting_for_user');
    state = feed(state, T0 + 1, done('a'));
    assert.equal(get(state, K).state, 'waiting_for_user', 'the prompt is still up');
    state = feed(state, T0 + 2, done('b'));
    assert.equal(get(state, K).state, 'thinking');
  });

  test('a question opened with a call id ends with its own close, back to the call it interrupted', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('mcp', 'mcp__db__query'), { type: 'ask_user_question', session_key: K, call_id: 'elicitation' });
    assert.equal(get(state, K).state, 'waiting_for_user');
    // A tool starting beside an open question does not hide the question.
    state = feed(state, T0 + 1, start('other', 'Read'), done('other'));
    assert.equal(get(state, K).state, 'waiting_for_user');
    state = feed(state, T0 + 2, done('elicitation'));
    assert.equal(get(state, K).state, 'tool_running');
    assert.equal(get(state, K).toolName, 'mcp__db__query');
    // A second close of the same question is a no-op.
    assert.equal(fold(state, ev(done('elicitation')), T0 + 3), state);
  });

  test('thinking, streaming, errors and a new run close every open call', () => {
    for (const e of [
      { type: 'thinking', session_key: K },
      { type: 'stream_start', session_key: K },
      { type: 'error', session_key: K, message: 'x' },
      { type: 'agent_start', session_key: K },
    ] as StatusEventInput[]) {
      const state = feed(fresh(), T0, { type: 'agent_start', session_key: K }, start('a', 'Read'), e);
      assert.deepEqual(get(state, K).calls, [], e.type);
      assert.equal(fold(state, ev(done('a')), T0 + 1), state, `${e.type}: the old call is no longer open`);
    }
  });

  test('open calls are bounded: the oldest are dropped beyond MAX_OPEN_CALLS', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: K });
    for (let i = 0; i < MAX_OPEN_CALLS + 10; i++) state = feed(state, T0, start(`c${i}`, 'Read'));
    const calls = get(state, K).calls;
    assert.equal(calls.length, MAX_OPEN_CALLS);
    assert.equal(calls[0]!.id, 'c10');
  });

  test('a session with open calls is plain JSON', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: K, pid: 42 }, start('a', 'Read'), { type: 'ask_user_question', session_key: K, call_id: 'q' });
    const s = get(state, K);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });
});

describe('create_session: events that start their session when it is not live', () => {
  const K = 'cc:2';

  test('an event with create_session for an unknown session starts it and applies itself', () => {
    const result = foldAll(fresh(), [ev({ type: 'tool_start', session_key: K, name: 'Bash', call_id: 't1', create_session: true })], T0);
    assert.deepEqual(result.unknownSession, []);
    const s = get(result.state, K);
    assert.equal(s.state, 'tool_running');
    assert.equal(s.toolName, 'Bash');
    assert.equal(s.run, 1);
    assert.equal(s.title, null);
    assert.equal(result.transitions.length, 1);
    assert.equal(result.transitions[0]!.from, null);
    assert.equal(result.transitions[0]!.to, 'tool_running');
  });

  test('without it, events for unknown sessions are still ignored and counted', () => {
    const state = fresh();
    const result = foldAll(state, [ev({ type: 'tool_start', session_key: K, name: 'Bash' }), ev({ type: 'ask_user_question', session_key: K, create_session: false })], T0);
    assert.equal(result.state, state);
    assert.deepEqual(result.unknownSession, [0, 1]);
  });

  test('on a live session it changes nothing beyond the event itself (no restart, title and tokens kept)', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: K, title: 'Fix it' }, { type: 'token_usage', session_key: K, input: 5, output: 1 });
    const next = feed(state, T0 + 1, { type: 'tool_start', session_key: K, name: 'Read', create_session: true });
    const s = get(next, K);
    assert.equal(s.run, 1);
    assert.equal(s.title, 'Fix it');
    assert.deepEqual(s.tokens, { input: 5, output: 1 });
    assert.equal(s.state, 'tool_running');
  });

  test('agent_end with create_session does not create anything', () => {
    const state = fresh();
    assert.equal(fold(state, ev({ type: 'agent_end', session_key: K, create_session: true }), T0), state);
  });

  test('an error with create_session shows the error', () => {
    const s = get(feed(fresh(), T0, { type: 'error', session_key: K, message: 'Rate limited', create_session: true }), K);
    assert.equal(s.state, 'error');
    assert.equal(s.errorMessage, 'Rate limited');
    assert.equal(s.errorDeadline, T0 + TTL);
  });
});

describe('pid: a watched process whose death disconnects its sessions', () => {
  test('pid_gone marks every live session of that pid "agent disconnected" and stops watching it', () => {
    let state = feed(
      fresh(),
      T0,
      { type: 'agent_start', session_key: 'cc:a', pid: 100 },
      { type: 'tool_start', session_key: 'cc:a', name: 'Bash', call_id: 'x' },
      { type: 'agent_start', session_key: 'cc:b', pid: 100 },
      { type: 'agent_start', session_key: 'cc:c', pid: 200 },
      { type: 'agent_start', session_key: 'cc:d' },
    );
    const result = foldAll(state, [{ kind: 'pid_gone', pid: 100 }], T0 + 50);
    state = result.state;
    for (const key of ['cc:a', 'cc:b']) {
      const s = get(state, key);
      assert.equal(s.state, 'error', key);
      assert.equal(s.errorMessage, AGENT_DISCONNECTED, key);
      assert.equal(s.errorDeadline, T0 + 50 + TTL, key);
      assert.equal(s.pid, null, key);
      assert.deepEqual(s.calls, [], key);
    }
    assert.equal(get(state, 'cc:c').state, 'thinking');
    assert.equal(get(state, 'cc:d').state, 'thinking');
    assert.equal(result.earliestNewDeadline, T0 + 50 + TTL);
    assert.equal(fold(state, { kind: 'pid_gone', pid: 100 }, T0 + 60), state, 'a second report changes nothing');
  });

  test('a pid that nobody watches changes nothing; sessions without a pid are never touched', () => {
    const state = feed(fresh(), T0, { type: 'agent_start', session_key: 'cc:a' });
    assert.equal(fold(state, { kind: 'pid_gone', pid: 7 }, T0), state);
  });

  test('any event carrying a pid makes it the watched one; a restart without one keeps it', () => {
    let state = feed(fresh(), T0, { type: 'agent_start', session_key: 'cc:a', pid: 1 });
    state = feed(state, T0, { type: 'thinking', session_key: 'cc:a', pid: 2 });
    assert.equal(get(state, 'cc:a').pid, 2);
    const same = feed(state, T0, { type: 'title', session_key: 'cc:a', title: null, pid: 2 });
    assert.equal(same, state, 'the same pid again changes nothing');
    state = feed(state, T0, { type: 'agent_start', session_key: 'cc:a' });
    assert.equal(get(state, 'cc:a').pid, 2);
    state = feed(state, T0, { type: 'tool_start', session_key: 'cc:new', name: 'x', create_session: true, pid: 3 });
    assert.equal(get(state, 'cc:new').pid, 3);
  });

  test('a pid must be a positive integer on the wire', () => {
    for (const pid of [0, -1, 1.5, '12']) {
      assert.equal(StatusEvent.safeParse({ type: 'thinking', session_key: 'a:b', pid }).success, false, String(pid));
    }
  });
});
