import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';

import { SESSION_STATES, type SessionState } from '../../protocol/snapshot.ts';
import { StatusEvent } from '../../protocol/events.ts';
import { foldAll, initialState, type FoldInput, type Session } from './fold.ts';
import { SessionTable, tableStats } from './sessions.ts';

/** One object per (key, state, run): the table must hand back the very objects it was given. */
const made = new Map<string, Session>();
function session(key: string, state: SessionState, run: number): Session {
  const id = `${key}/${state}/${run}`;
  let s = made.get(id);
  if (!s) made.set(id, (s = make(key, state, run)));
  return s;
}

function make(key: string, state: SessionState, run: number): Session {
  return { key, channel: 'c', sessionId: key, title: null, state, toolName: null, stateSince: 0, tokens: null, errorMessage: null, errorDeadline: null, run, owner: null, pid: null, calls: [] };
}

type Op = { readonly kind: 'set'; readonly key: string; readonly state: SessionState } | { readonly kind: 'delete'; readonly key: string };

/** The reference: a native Map copied for every version (what the fold did before). */
function applyModel(model: ReadonlyMap<string, Session>, ops: readonly Op[], run: number): Map<string, Session> {
  const next = new Map(model);
  for (const op of ops) {
    if (op.kind === 'delete') next.delete(op.key);
    else next.set(op.key, session(op.key, op.state, run));
  }
  return next;
}

function applyTable(table: SessionTable, ops: readonly Op[], run: number): SessionTable {
  const draft = table.edit();
  for (const op of ops) {
    if (op.kind === 'delete') draft.delete(op.key);
    else draft.set(op.key, session(op.key, op.state, run));
  }
  return draft.result();
}

function assertSame(table: SessionTable, model: ReadonlyMap<string, Session>, where: string): void {
  assert.deepEqual([...table.entries()], [...model.entries()], `entries in order ${where}`);
  assert.deepEqual([...table.keys()], [...model.keys()], `keys ${where}`);
  assert.equal(table.size, model.size, `size ${where}`);
  const byOrder = [...model.keys()].sort((a, b) => table.orderOf(a) - table.orderOf(b));
  assert.deepEqual(byOrder, [...model.keys()], `orderOf sorts as iteration does ${where}`);
  assert.equal(table.orderOf('absent'), -1);
  for (const key of ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7']) {
    assert.equal(table.get(key), model.get(key), `get ${key} ${where}`);
    assert.equal(table.has(key), model.has(key), `has ${key} ${where}`);
  }
  for (const state of SESSION_STATES) {
    assert.equal(table.countIn(state), [...model.values()].filter((s) => s.state === state).length, `count ${state} ${where}`);
  }
  const seen: string[] = [];
  table.forEach((value, key, map) => {
    assert.equal(map, table);
    assert.equal(value, model.get(key));
    seen.push(key);
  });
  assert.deepEqual(seen, [...model.keys()], `forEach ${where}`);
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'), state: fc.constantFrom(...SESSION_STATES) }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7') }),
);

test('every version of the table reads like its own copied Map, in insertion order, after any later commits from any version', () => {
  fc.assert(
    fc.property(
      // Each step: which earlier version to fold from (mostly the newest, as the runtime does), its batch, and which
      // version to read (and whether to read it by lookups only, so that it is not rebuilt).
      fc.array(fc.record({ from: fc.nat(), newest: fc.boolean(), ops: fc.array(op, { maxLength: 6 }), check: fc.nat(), lookupsOnly: fc.boolean() }), { maxLength: 40 }),
      (steps) => {
        const tables = [SessionTable.empty()];
        const models: Map<string, Session>[] = [new Map()];
        steps.forEach((step, i) => {
          const from = step.newest ? tables.length - 1 : step.from % tables.length;
          tables.push(applyTable(tables[from]!, step.ops, i));
          models.push(applyModel(models[from]!, step.ops, i));
          const c = step.check % tables.length;
          if (step.lookupsOnly) {
            for (const key of ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7']) assert.equal(tables[c]!.get(key), models[c]!.get(key));
            assert.equal(tables[c]!.size, models[c]!.size);
          } else {
            assertSame(tables[c]!, models[c]!, `version ${c} after step ${i}`);
          }
        });
        tables.forEach((t, v) => assertSame(t, models[v]!, `version ${v} at the end`));
      },
    ),
    { numRuns: 300 },
  );
});

test('a batch that changes nothing returns the very same table; one that changes something shares, not copies', () => {
  const base = applyTable(SessionTable.empty(), [{ kind: 'set', key: 'k0', state: 'thinking' }], 0);
  assert.equal(base.edit().result(), base);
  const draft = base.edit();
  draft.delete('missing');
  assert.equal(draft.result(), base, 'deleting an absent key is no change');
  const next = applyTable(base, [{ kind: 'set', key: 'k1', state: 'error' }], 1);
  assert.notEqual(next, base);
  assert.equal(next.get('k0'), base.get('k0'), 'the unchanged session is the same object in both versions');
});

test('a long run of changes over many sessions keeps old versions right across lineage restarts', () => {
  let table = SessionTable.empty();
  let model = new Map<string, Session>();
  const kept: [SessionTable, Map<string, Session>][] = [];
  for (let i = 0; i < 6000; i++) {
    // 1,500 keys started, restarted, failed and ended in a mixed order; every 500th version kept to be read at the end.
    const key = `k${(i * 7919) % 1500}`;
    const ops: Op[] = i % 5 === 4 ? [{ kind: 'delete', key }] : [{ kind: 'set', key, state: SESSION_STATES[i % SESSION_STATES.length]! }];
    table = applyTable(table, ops, i);
    model = applyModel(model, ops, i);
    if (i % 500 === 0) kept.push([table, model]);
  }
  for (const [t, m] of kept) {
    assert.deepEqual([...t.keys()], [...m.keys()]);
    for (const [key, s] of m) assert.equal(t.get(key), s);
    assert.equal(t.size, m.size);
    assert.equal(t.countIn('error'), [...m.values()].filter((s) => s.state === 'error').length);
  }
  assert.deepEqual([...table.entries()], [...model.entries()]);
});

test('folding one event into 10,000 live sessions copies none of them, and the previous state still reads as before', () => {
  const producer = { id: 1, agent: false };
  const ev = (e: object): FoldInput => ({ kind: 'event', event: StatusEvent.parse(e), producer });
  const N = 10_000;
  let state = foldAll(initialState({ maxConcurrent: 5, errorTtlMs: 30_000, maxSessions: N }), Array.from({ length: N }, (_, i) => ev({ type: 'agent_start', session_key: `ws:${i}` })), 0).state;
  const before = tableStats.copiedEntries;
  const first = state;
  for (let i = 0; i < 2_000; i++) {
    // One event per batch, as a producer writing each event on its own gets: every fold commits one change.
    const key = `ws:${(i * 37) % N}`;
    state = foldAll(state, [ev(i % 2 === 0 ? { type: 'tool_start', session_key: key, name: 'bash' } : { type: 'stream_start', session_key: key })], i + 1).state;
  }
  assert.equal(tableStats.copiedEntries - before, 0, 'no batch copied the table (a copying fold copies 10,000 entries per batch)');
  assert.equal(state.sessions.size, N);
  assert.equal(first.sessions.get('ws:0')?.state, 'thinking', 'the first state is unchanged');
  assert.equal(state.sessions.get('ws:0')?.state, 'tool_running');
  assert.deepEqual([...first.sessions.keys()].slice(0, 3), ['ws:0', 'ws:1', 'ws:2']);
});
