/**
 * The state file's format, without a disk: round trips through the wall clock, and every kind of bad file is a
 * reason, never an exception (fast-check for the corruptions).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { StatusEvent } from '../../protocol/events.ts';
import { AGENT_DISCONNECTED, foldAll, initialState, type FoldInput, type StatusState } from '../state/fold.ts';
import { SessionTable } from '../state/sessions.ts';
import { decodeState, encodeState, isMonotonicField, RESTORED_AGENT, toMonotonic, toWall, VERSION } from './state-file.ts';

const IDS = { run: '1700000000000', seq: 42, transitionSeq: 40 };
const DAY = 86_400_000;

function ev(event: Record<string, unknown>, producer = { id: 7, agent: false }): FoldInput {
  return { kind: 'event', event: event as unknown as StatusEvent, producer };
}

/** A state with a session in each interesting shape, folded at monotonic times on a clock that started at 0. */
function sample(): StatusState {
  let s = initialState({ maxConcurrent: 5, errorTtlMs: 30_000 });
  const at = (inputs: FoldInput[], now: number) => (s = foldAll(s, inputs, now).state);
  at([ev({ type: 'agent_start', session_key: 'cli:tool', title: 'Build' }), ev({ type: 'tool_start', session_key: 'cli:tool', name: 'bash' })], 1_000);
  at([ev({ type: 'token_usage', session_key: 'cli:tool', input: 120, output: 30 })], 2_000);
  at([ev({ type: 'agent_start', session_key: 'cli:err' }), ev({ type: 'error', session_key: 'cli:err', message: 'boom' })], 3_000);
  at([ev({ type: 'agent_start', session_key: 'ws:agent', title: 'Agent' }, { id: 3, agent: true })], 4_000);
  return s;
}

describe('the state file', () => {
  test('a state comes back with every field, its times moved to the new clock', () => {
    const state = sample();
    // Saved at wall 1,000,000,000 when the old monotonic clock read 10,000; restored 60 s later on a clock reading 500.
    const text = encodeState(state, IDS, { wall: 1_000_000_000, mono: 10_000 }, true);
    const decoded = decodeState(text, { wall: 1_000_060_000, mono: 500 }, DAY);
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.reason);
    const { sessions, ids, awaitingAgents } = decoded.restored;
    assert.deepEqual(ids, IDS);
    assert.equal(awaitingAgents, 1);
    // The error expired while the daemon was down (due 23 s after the save, restored 60 s after it): it is not back.
    assert.deepEqual([...sessions.keys()], ['cli:tool', 'ws:agent'], 'the same sessions, in the same order');
    const tool = sessions.get('cli:tool')!;
    const before = state.sessions.get('cli:tool')!;
    // It entered tool_running 9 s before the save, so 69 s before now: 500 - 69,000 on the new clock.
    assert.equal(tool.stateSince, 500 - 69_000);
    assert.deepEqual({ ...tool, stateSince: 0 }, { ...before, stateSince: 0 });
    const agent = sessions.get('ws:agent')!;
    assert.equal(agent.owner, RESTORED_AGENT, 'a connection id does not survive the restart');
  });

  test('an error keeps its TTL running from when it began', () => {
    const text = encodeState(sample(), IDS, { wall: 1_000_000_000, mono: 10_000 }, true);
    const decoded = decodeState(text, { wall: 1_000_005_000, mono: 0 }, DAY);
    assert.ok(decoded.ok);
    // Due 23 s after the save; restored 5 s after it: due 18 s from now.
    assert.equal(decoded.restored.sessions.get('cli:err')!.errorDeadline, 18_000);
    assert.equal(decoded.restored.sessions.get('cli:err')!.errorMessage, 'boom');
  });

  test('restored agent sessions turn error when the grace is over, unless their agent replayed an event', () => {
    const text = encodeState(sample(), IDS, { wall: 1_000_000_000, mono: 10_000 }, true);
    const decoded = decodeState(text, { wall: 1_000_001_000, mono: 0 }, DAY);
    assert.ok(decoded.ok);
    const restored: StatusState = { ...initialState({ maxConcurrent: 5, errorTtlMs: 30_000 }), sessions: SessionTable.from(decoded.restored.sessions) };
    const adopted = foldAll(restored, [ev({ type: 'thinking', session_key: 'ws:agent' }, { id: 1, agent: true })], 100).state;
    const kept = foldAll(adopted, [{ kind: 'producer_closed', producer: RESTORED_AGENT }], 5_000).state;
    assert.equal(kept.sessions.get('ws:agent')!.state, 'thinking');
    const lost = foldAll(restored, [{ kind: 'producer_closed', producer: RESTORED_AGENT }], 5_000).state;
    assert.equal(lost.sessions.get('ws:agent')!.state, 'error');
    assert.equal(lost.sessions.get('ws:agent')!.errorMessage, AGENT_DISCONNECTED);
    assert.equal(lost.sessions.get('cli:tool')!.state, 'tool_running', 'one-shot sessions have no agent to wait for');
  });

  test('after a crash (not written at a clean shutdown) the ids do not continue', () => {
    const text = encodeState(sample(), IDS, { wall: 1_000_000_000, mono: 10_000 }, false);
    const decoded = decodeState(text, { wall: 1_000_001_000, mono: 0 }, DAY);
    assert.ok(decoded.ok);
    assert.equal(decoded.restored.ids, null);
  });

  test('a wall clock set back does not start a state in the future', () => {
    const text = encodeState(sample(), IDS, { wall: 1_000_000_000, mono: 10_000 }, true);
    const decoded = decodeState(text, { wall: 999_000_000, mono: 50 }, DAY);
    assert.ok(decoded.ok);
    for (const s of decoded.restored.sessions.values()) assert.ok(s.stateSince <= 50);
  });

  test('wall and monotonic conversions are inverse', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: -1e9, max: 1e9 }), (wallNow, monoNow, t) => {
        assert.equal(toMonotonic(toWall(t, wallNow, monoNow), wallNow, monoNow), t);
      }),
    );
  });

  test('time fields are recognised by name', () => {
    assert.ok(isMonotonicField('stateSince'));
    assert.ok(isMonotonicField('errorDeadline'));
    assert.ok(!isMonotonicField('run'));
    assert.ok(!isMonotonicField('tokens'));
  });
});

describe('bad state files are a reason, never an exception', () => {
  const clocks = { wall: 1_000_001_000, mono: 0 };
  const good = encodeState(sample(), IDS, { wall: 1_000_000_000, mono: 10_000 }, true);

  test('empty', () => {
    for (const text of ['', '\n', '   ']) {
      const d = decodeState(text, clocks, DAY);
      assert.ok(!d.ok && /empty/.test(d.reason));
    }
  });

  test('every truncation is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: good.trimEnd().length - 1 }), (cut) => {
        const d = decodeState(good.slice(0, cut), clocks, DAY);
        assert.ok(!d.ok, `a file cut at ${cut} was accepted`);
      }),
    );
  });

  test('a foreign version is refused, naming it', () => {
    const doc = JSON.parse(good) as Record<string, unknown>;
    const d = decodeState(JSON.stringify({ ...doc, version: VERSION + 1 }), clocks, DAY);
    assert.ok(!d.ok);
    assert.match(d.reason, new RegExp(`unknown format version ${VERSION + 1}`));
    const other = decodeState(JSON.stringify({ ...doc, format: 'something-else' }), clocks, DAY);
    assert.ok(!other.ok && /not a pocketpaw-status state file/.test(other.reason));
  });

  test('too old is refused, saying how old', () => {
    const d = decodeState(good, { wall: 1_000_000_000 + DAY + 1000, mono: 0 }, DAY);
    assert.ok(!d.ok && /older than --state-max-age/.test(d.reason));
  });

  test('flipped bytes, spliced garbage and any JSON never throw, and anything accepted is a valid state', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((flips) => {
            const bytes = Buffer.from(good);
            for (const [at, value] of flips) bytes[at % bytes.length] = value;
            return bytes.toString('utf8');
          }),
          fc.tuple(fc.nat(), fc.string()).map(([at, junk]) => good.slice(0, at % good.length) + junk + good.slice(at % good.length)),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ ...(JSON.parse(good) as object), sessions: [v] })),
        ),
        (text) => {
          const d = decodeState(text, clocks, DAY);
          if (!d.ok) {
            assert.equal(typeof d.reason, 'string');
            assert.ok(d.reason.length > 0);
            return;
          }
          for (const s of d.restored.sessions.values()) {
            assert.equal(typeof s.key, 'string');
            assert.ok(Number.isFinite(s.stateSince));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
