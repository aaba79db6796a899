/**
 * The hook's token counts from a Claude Code transcript: the current turn only, each message id once, read from the
 * end within a bounded window and budget; a transcript that is missing, malformed, huge or too slow costs only the
 * counts. Transcripts are generated here (a 50 MB one included); nothing large is committed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TRANSCRIPT_WINDOW_BYTES, turnTokens } from '../daemon/cli/hook-transcript.ts';
import { assistant, metaNote, prompt, toolResult, turnSum, usage, writeBigTranscript } from './helpers/claude-transcript.ts';
import { tempDir } from './helpers/daemon.ts';

const write = (lines: string[]): string => {
  const path = join(tempDir(), 'transcript.jsonl');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
};

describe('turnTokens', () => {
  test('counts each message.id once although Claude Code writes one entry per content block', () => {
    const a = usage(1200, 80, 300, 5000);
    const b = usage(900, 40, 0, 6500);
    const path = write([prompt('Fix the tests'), ...assistant('msg_a', a, 3), toolResult('toolu_a', 500), ...assistant('msg_b', b, 2)]);
    assert.deepEqual(turnTokens(path), turnSum([a, b]));
    assert.deepEqual(turnSum([a, b]), { input: 1200 + 300 + 5000 + 900 + 6500, output: 120 });
  });

  test('a repeated id keeps its largest output count (the last block has the final count), not the sum', () => {
    const early = usage(100, 1);
    const final = usage(100, 57);
    const path = write([prompt('x'), ...assistant('msg_a', early, 1), ...assistant('msg_a', final, 1)]);
    assert.deepEqual(turnTokens(path), { input: 100, output: 57 });
  });

  test('only the current turn: everything before the last real prompt is not counted; tool results and notes do not start a turn', () => {
    const old = usage(50_000, 9_000);
    const now1 = usage(10, 1);
    const now2 = usage(20, 2);
    const path = write([
      prompt('The earlier request'),
      ...assistant('msg_old', old, 2),
      prompt('The current request'),
      ...assistant('msg_1', now1, 2),
      toolResult('toolu_1', 100),
      metaNote('<local-command-stdout>ok</local-command-stdout>'),
      ...assistant('msg_2', now2, 1),
    ]);
    assert.deepEqual(turnTokens(path), turnSum([now1, now2]));
  });

  test('a transcript that is all one turn (no prompt inside) counts when the whole file was read', () => {
    const u = usage(5, 5);
    assert.deepEqual(turnTokens(write([...assistant('msg_1', u, 2)])), { input: 5, output: 5 });
  });

  test('malformed lines cost only themselves', () => {
    const u = usage(7, 3);
    const path = write([prompt('x'), '{"type":"assistant", not json', ...assistant('msg_1', u, 1), '\u0000\u00ff garbage', '{"type":"assistant","message":"not an object"}']);
    assert.deepEqual(turnTokens(path), { input: 7, output: 3 });
  });

  test('missing, empty, a directory, not a path: no counts, no exception', () => {
    const dir = tempDir();
    assert.equal(turnTokens(join(dir, 'nope.jsonl')), null);
    assert.equal(turnTokens(write([])), null);
    mkdirSync(join(dir, 'd'));
    assert.equal(turnTokens(join(dir, 'd')), null);
    assert.equal(turnTokens(undefined), null);
    assert.equal(turnTokens(42), null);
    assert.equal(turnTokens(write([prompt('only a prompt so far')])), null);
  });

  test('a turn that starts before the window gives no counts rather than part of them', () => {
    const lines = [prompt('x')];
    for (let i = 0; i < 50; i++) lines.push(...assistant(`msg_${i}`, usage(10, 1), 1), toolResult(`t${i}`, 2000));
    const path = write(lines);
    assert.equal(turnTokens(path, { windowBytes: 20_000 }), null);
    assert.deepEqual(turnTokens(path), { input: 500, output: 50 }, 'the default window holds the whole turn');
  });

  test('a budget that runs out gives no counts', () => {
    const path = write([prompt('x'), ...assistant('msg_1', usage(1, 1), 1)]);
    assert.equal(turnTokens(path, { budgetMs: -1 }), null);
  });

  test('a generated 50 MB transcript: only the last 4 MiB are read, and the last turn is counted right', () => {
    const a = usage(3000, 120, 2000, 80_000);
    const b = usage(1500, 900, 0, 83_000);
    const last = [prompt('Now fix the gift card path too'), ...assistant('msg_last_a', a, 4), toolResult('toolu_x', 30_000), ...assistant('msg_last_b', b, 2)];
    const path = join(tempDir(), 'big.jsonl');
    const size = writeBigTranscript(path, 50 * 1024 * 1024, last);
    assert.ok(statSync(path).size >= 50 * 1024 * 1024 && size > 8 * TRANSCRIPT_WINDOW_BYTES);
    assert.deepEqual(turnTokens(path), turnSum([a, b]));
    // The same file whose last turn is longer than the window: no counts (not the part inside the window).
    const long = join(tempDir(), 'big-long-turn.jsonl');
    const lines = [prompt('A long one')];
    for (let i = 0; i < 80; i++) lines.push(...assistant(`msg_long_${i}`, usage(10, 1), 2), toolResult(`toolu_long_${i}`, 64 * 1024));
    writeBigTranscript(long, 50 * 1024 * 1024, lines);
    assert.equal(turnTokens(long), null);
  });
});
