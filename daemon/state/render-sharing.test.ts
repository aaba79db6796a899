import assert from 'node:assert/strict';
import { test } from 'node:test';

import { StatusEvent } from '../../protocol/events.ts';
import { foldAll, initialState, type FoldInput, type StatusState } from './fold.ts';
import { matches, renderSnapshot, renderStats, type SessionFilter } from './snapshot.ts';

const producer = { id: 1, agent: false };
const ev = (e: object): FoldInput => ({ kind: 'event', event: StatusEvent.parse(e), producer });

function state(n: number): StatusState {
  const channels = ['websocket', 'discord', 'cli', 'telegram'];
  return foldAll(
    initialState({ maxConcurrent: 5, errorTtlMs: 30_000, maxSessions: n }),
    Array.from({ length: n }, (_, i) => ev({ type: 'agent_start', session_key: `${channels[i % 4]}:${i}`, title: `run ${i}` })),
    0,
  ).state;
}

/** What a filter selects, by scanning every session in order (the definition). */
function byScan(s: StatusState, filter: SessionFilter): string[] {
  return [...s.sessions.values()].filter((x) => matches(filter, x)).map((x) => x.key);
}

const keysOf = (json: string): string[] => (JSON.parse(json) as { sessions: { session_key: string }[] }).sessions.map((x) => x.session_key);

test('a filtered snapshot lists what a scan of every session selects, in the same order', () => {
  let s = state(40);
  // Restart one in place, end one and start it again (it moves to the end), fail another.
  s = foldAll(s, [ev({ type: 'agent_start', session_key: 'discord:5' }), ev({ type: 'agent_end', session_key: 'cli:2' }), ev({ type: 'agent_start', session_key: 'cli:2' }), ev({ type: 'error', session_key: 'telegram:3', message: 'x' })], 1).state;
  const filters: SessionFilter[] = [
    { sessions: new Set(['cli:2', 'websocket:0', 'discord:5', 'nope:1']), channels: null },
    { sessions: new Set(['telegram:39', 'telegram:3']), channels: new Set(['telegram']) },
    { sessions: new Set(['telegram:39', 'cli:6']), channels: new Set(['cli', 'discord']) },
    { sessions: null, channels: new Set(['cli']) },
    { sessions: null, channels: new Set(['telegram', 'cli', 'nope']) },
    { sessions: null, channels: new Set(['nope']) },
  ];
  for (const filter of filters) assert.deepEqual(keysOf(renderSnapshot(s, 2, 0, filter).json), byScan(s, filter));
  assert.deepEqual(keysOf(renderSnapshot(s, 2, 0).json), [...s.sessions.keys()]);
});

test('10,000 sessions: 300 filtered renderings visit only their own sessions, and a change re-encodes one session', () => {
  const s = state(10_000);
  renderSnapshot(s, 1, 0); // encodes every session once
  let before = { ...renderStats };
  for (let i = 0; i < 300; i++) {
    const json = renderSnapshot(s, 1, 0, { sessions: new Set([`cli:${i * 4 + 2}`]), channels: null }).json;
    assert.deepEqual(keysOf(json), [`cli:${i * 4 + 2}`]);
  }
  assert.equal(renderStats.sessionsRendered - before.sessionsRendered, 300, 'one session per filter, not 10,000');
  assert.equal(renderStats.fragmentsBuilt - before.fragmentsBuilt, 0, 'every session was already encoded');

  before = { ...renderStats };
  // Fifty different filters that all select the discord channel (the other channels named do not exist).
  for (let i = 0; i < 50; i++) assert.equal(keysOf(renderSnapshot(s, 1, 0, { sessions: null, channels: new Set(['discord', `none${i}`]) }).json).length, 2_500);
  assert.equal(renderStats.sessionsRendered - before.sessionsRendered, 2_500, 'filters selecting the same channel share one rendering');
  before = { ...renderStats };
  assert.equal(keysOf(renderSnapshot(s, 1 + 20, 0, { sessions: null, channels: new Set(['discord']) }).json).length, 2_500);
  assert.equal(renderStats.sessionsRendered - before.sessionsRendered, 2_500, 'rendered anew once its timing fields could show a difference');

  const next = foldAll(s, [ev({ type: 'tool_start', session_key: 'websocket:0', name: 'bash' })], 2).state;
  before = { ...renderStats };
  assert.match(renderSnapshot(next, 3, 0).json, /"tool_name":"bash"/);
  assert.equal(renderStats.fragmentsBuilt - before.fragmentsBuilt, 1, 'only the changed session is encoded anew');
});
