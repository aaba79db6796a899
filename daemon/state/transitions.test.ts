import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { StatusEvent, type StatusEventInput } from '../../protocol/events.ts';
import { fold, foldAll, initialState, type FoldInput, type Producer, type StatusState } from './fold.ts';
import type { Transition } from './transitions.ts';

const TTL = 30_000;
const T0 = 500_000;
const ONE_SHOT: Producer = { id: 0, agent: false };

function ev(event: StatusEventInput, producer: Producer = ONE_SHOT): FoldInput {
  return { kind: 'event', event: StatusEvent.parse(event), producer };
}

/** Folds one input and returns the next state with the transitions it produced. */
function step(state: StatusState, input: FoldInput, now: number): { state: StatusState; transitions: readonly Transition[] } {
  return foldAll(state, [input], now);
}

function fresh(): StatusState {
  return initialState({ maxConcurrent: 5, errorTtlMs: TTL });
}

function started(key = 'ws:1'): StatusState {
  return fold(fresh(), ev({ type: 'agent_start', session_key: key }), T0);
}

describe('transitions, as foldAll reports them', () => {
  test('created: from null to thinking', () => {
    const { transitions } = step(fresh(), ev({ type: 'agent_start', session_key: 'ws:1' }), T0);
    assert.deepEqual(transitions, [{ session_key: 'ws:1', from: null, to: 'thinking', tool_name: null, error_message: null, at: T0 }]);
  });

  test('removed: to null', () => {
    const { transitions } = step(started(), ev({ type: 'agent_end', session_key: 'ws:1' }), T0 + 10);
    assert.deepEqual(transitions, [{ session_key: 'ws:1', from: 'thinking', to: null, tool_name: null, error_message: null, at: T0 + 10 }]);
  });

  test('state change carries the new tool name and error message', () => {
    const a = step(started(), ev({ type: 'tool_start', session_key: 'ws:1', name: 'bash' }), T0 + 1);
    assert.deepEqual(a.transitions, [{ session_key: 'ws:1', from: 'thinking', to: 'tool_running', tool_name: 'bash', error_message: null, at: T0 + 1 }]);
    const b = step(a.state, ev({ type: 'error', session_key: 'ws:1', message: 'Rate limit' }), T0 + 2);
    assert.deepEqual(b.transitions, [
      { session_key: 'ws:1', from: 'tool_running', to: 'error', tool_name: null, error_message: 'Rate limit', at: T0 + 2 },
    ]);
  });

  test('tool-name change without a state change is a transition', () => {
    const a = step(started(), ev({ type: 'tool_start', session_key: 'ws:1', name: 'bash' }), T0 + 1);
    const b = step(a.state, ev({ type: 'tool_start', session_key: 'ws:1', name: 'grep' }), T0 + 2);
    assert.deepEqual(b.transitions, [{ session_key: 'ws:1', from: 'tool_running', to: 'tool_running', tool_name: 'grep', error_message: null, at: T0 + 2 }]);
  });

  test('agent_start on a live thinking session is a thinking -> thinking transition', () => {
    const { transitions } = step(started(), ev({ type: 'agent_start', session_key: 'ws:1' }), T0 + 5);
    assert.deepEqual(transitions, [{ session_key: 'ws:1', from: 'thinking', to: 'thinking', tool_name: null, error_message: null, at: T0 + 5 }]);
  });

  test('token_usage and title change the state but are not transitions', () => {
    const a = step(started(), ev({ type: 'token_usage', session_key: 'ws:1', input: 10, output: 2 }), T0 + 1);
    assert.notEqual(a.state, started());
    assert.deepEqual(a.transitions, []);
    const b = step(a.state, ev({ type: 'title', session_key: 'ws:1', title: 'Hello' }), T0 + 2);
    assert.notEqual(b.state, a.state);
    assert.deepEqual(b.transitions, []);
  });

  test('no-ops and ignored events give none', () => {
    const s = started();
    assert.deepEqual(step(s, ev({ type: 'thinking', session_key: 'ws:1' }), T0 + 1).transitions, []);
    assert.deepEqual(step(s, ev({ type: 'thinking', session_key: 'ws:2' }), T0 + 1).transitions, []);
    assert.deepEqual(step(s, ev({ type: 'thinking' }), T0 + 1).transitions, []);
    assert.deepEqual(step(s, ev({ type: 'hello', max_concurrent: 9 }), T0 + 1).transitions, []);
    assert.deepEqual(step(s, { kind: 'expire' }, T0 + 1).transitions, []);
  });

  test('producer_closed gives one transition per affected session', () => {
    const AGENT: Producer = { id: 1, agent: true };
    let state = fresh();
    for (const key of ['ws:1', 'ws:2']) state = fold(state, ev({ type: 'agent_start', session_key: key }, AGENT), T0);
    state = fold(state, ev({ type: 'tool_start', session_key: 'ws:2', name: 'bash' }, AGENT), T0);
    state = fold(state, ev({ type: 'agent_start', session_key: 'ws:3' }), T0);
    const { transitions } = step(state, { kind: 'producer_closed', producer: 1 }, T0 + 100);
    assert.deepEqual(transitions, [
      { session_key: 'ws:1', from: 'thinking', to: 'error', tool_name: null, error_message: 'agent disconnected', at: T0 + 100 },
      { session_key: 'ws:2', from: 'tool_running', to: 'error', tool_name: null, error_message: 'agent disconnected', at: T0 + 100 },
    ]);
  });

  test('error expiry is a removal transition', () => {
    const errored = fold(started(), ev({ type: 'error', session_key: 'ws:1', message: 'x' }), T0);
    const { transitions } = step(errored, { kind: 'expire' }, T0 + TTL);
    assert.deepEqual(transitions, [{ session_key: 'ws:1', from: 'error', to: null, tool_name: null, error_message: null, at: T0 + TTL }]);
  });

  test('a 200 ms tool run produces its own two transitions', () => {
    const a = step(started(), ev({ type: 'tool_start', session_key: 'ws:1', name: 'bash' }), T0 + 1000);
    const b = step(a.state, ev({ type: 'tool_result', session_key: 'ws:1', status: 'success', name: 'bash' }), T0 + 1200);
    assert.deepEqual(
      [...a.transitions, ...b.transitions].map((t) => [t.from, t.to, t.tool_name, t.at]),
      [
        ['thinking', 'tool_running', 'bash', T0 + 1000],
        ['tool_running', 'streaming', null, T0 + 1200],
      ],
    );
  });
});
