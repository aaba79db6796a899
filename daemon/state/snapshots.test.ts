import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatusEvent } from '../../protocol/events.ts';
import { ChangeFeed } from '../feed/feed.ts';
import { initialState } from './fold.ts';
import { RENDER_REUSE_MS, Snapshots } from './snapshots.ts';
import { StatusStore } from './store.ts';

test('the unfiltered snapshot is reused only while the state is unchanged and for RENDER_REUSE_MS at most', () => {
  let now = 1000;
  const store = new StatusStore(initialState({ maxConcurrent: 5, errorTtlMs: 30_000 }), new ChangeFeed(), () => now);
  const snapshots = new Snapshots(store, 0);
  const producer = { id: 1, agent: false };
  store.apply({ kind: 'event', event: StatusEvent.parse({ type: 'agent_start', session_key: 'a:1' }), producer });

  const first = snapshots.render();
  now += RENDER_REUSE_MS - 1;
  assert.equal(snapshots.render(), first, 'same state, within the window: reused');

  store.apply({ kind: 'event', event: StatusEvent.parse({ type: 'tool_start', session_key: 'a:1', name: 'bash' }), producer });
  const changed = snapshots.render();
  assert.notEqual(changed, first, 'a change is rendered at once');
  assert.match(changed.json, /"tool_name":"bash"/);

  now += RENDER_REUSE_MS;
  const later = snapshots.render();
  assert.notEqual(later, changed, 'past the window the timing fields are rendered anew');
  assert.equal(later.fingerprint, changed.fingerprint);
});
