import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Transition } from '../state/transitions.ts';
import { TransitionHistory } from './history.ts';
import { EventIds, parseId } from './ids.ts';

const t: Transition = { session_key: 'a:1', from: null, to: 'thinking', tool_name: null, error_message: null, at: 0 };

test('history returns what came after a seq, oldest first', () => {
  const h = new TransitionHistory(3);
  for (const seq of [2, 4, 6]) h.push({ seq, transition: t, frame: null });
  assert.deepEqual(h.since(2)?.map((e) => e.seq), [4, 6]);
  assert.deepEqual(h.since(6)?.map((e) => e.seq), []);
  assert.deepEqual(h.since(0)?.map((e) => e.seq), [2, 4, 6], 'nothing was evicted yet');
});

test('history says null once a transition after the seq was evicted', () => {
  const h = new TransitionHistory(3);
  for (const seq of [1, 2, 3, 4, 5]) h.push({ seq, transition: t, frame: null });
  assert.equal(h.since(1), null, 'seq 2 is gone');
  assert.deepEqual(h.since(2)?.map((e) => e.seq), [3, 4, 5], 'everything after 2 is still kept');
});

test('ids are <run>-<seq>, ASCII, increasing, and parse back', () => {
  const ids = new EventIds('1700000000000');
  const a = ids.format(ids.next());
  const b = ids.format(ids.next());
  assert.equal(a, '1700000000000-1');
  assert.deepEqual(parseId(b), { run: '1700000000000', seq: 2 });
  assert.equal(parseId('nonsense'), null);
  assert.equal(parseId('1-99999999999999999999'), null, 'beyond safe integers');
});
