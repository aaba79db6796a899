import assert from 'node:assert/strict';
import { test } from 'node:test';

import { StatusEvent, type StatusEventInput } from '../../protocol/events.ts';
import { foldAll, initialState, type FoldInput, type StatusState } from './fold.ts';

const producer = { id: 1, agent: false };
const ev = (e: StatusEventInput): FoldInput => ({ kind: 'event', event: StatusEvent.parse(e), producer });

function capped(max: number, ...keys: string[]): StatusState {
  return foldAll(initialState({ maxConcurrent: 5, errorTtlMs: 30_000, maxSessions: max }), keys.map((k) => ev({ type: 'agent_start', session_key: k })), 0).state;
}

test('the default cap is 10,000 live sessions', () => {
  assert.equal(initialState({ maxConcurrent: 5, errorTtlMs: 30_000 }).maxSessions, 10_000);
});

test('at maxSessions, an agent_start for a new key is refused: listed, no change, no transition', () => {
  const full = capped(3, 'a:1', 'b:2', 'c:3');
  const result = foldAll(full, [ev({ type: 'agent_start', session_key: 'd:4', title: 'newcomer' })], 1);
  assert.deepEqual(result.refused, [0]);
  assert.equal(result.state, full, 'nothing changed');
  assert.deepEqual(result.transitions, []);
  assert.deepEqual([...result.state.sessions.keys()], ['a:1', 'b:2', 'c:3'], 'live sessions are never evicted');
});

test('at maxSessions, a live session restarts, failed sessions still count, and an ended one makes room in the same batch', () => {
  let full = capped(3, 'a:1', 'b:2', 'c:3');
  full = foldAll(full, [ev({ type: 'error', session_key: 'b:2', message: 'boom' })], 1).state;
  const result = foldAll(
    full,
    [
      ev({ type: 'agent_start', session_key: 'a:1' }), // a restart in place: not new
      ev({ type: 'agent_start', session_key: 'd:4' }), // refused: b:2 is in error but still live
      ev({ type: 'agent_end', session_key: 'c:3' }),
      ev({ type: 'agent_start', session_key: 'e:5' }), // accepted: c:3 left
      ev({ type: 'tool_start', session_key: 'd:4', name: 'bash' }), // d:4 never started: an unknown session
    ],
    2,
  );
  assert.deepEqual(result.refused, [1]);
  assert.deepEqual(result.unknownSession, [4]);
  assert.deepEqual([...result.state.sessions.keys()], ['a:1', 'b:2', 'e:5']);
  assert.equal(result.state.sessions.get('a:1')?.run, 2);
});
