import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { LineFramer } from './lines.ts';

type Call = { kind: 'line'; text: string; lineNo: number } | { kind: 'oversized'; lineNo: number };

function framer(max = 64): { f: LineFramer; calls: Call[] } {
  const calls: Call[] = [];
  const f = new LineFramer(max, {
    // Copy the text at once: the sink contract says the bytes are only valid during the call.
    line: (bytes, lineNo) => calls.push({ kind: 'line', text: bytes.toString('latin1'), lineNo }),
    oversized: (lineNo) => calls.push({ kind: 'oversized', lineNo }),
  });
  return { f, calls };
}

/** What the framer holds between chunks: the bound that keeps an endless line from filling memory. */
function retained(f: LineFramer): number {
  return (f as unknown as { tailBytes: number }).tailBytes;
}

const b = (s: string) => Buffer.from(s, 'latin1');

describe('LineFramer', () => {
  test('delivers complete lines with their line numbers', () => {
    const { f, calls } = framer();
    f.push(b('a\nbb\nccc\n'));
    assert.deepEqual(calls, [
      { kind: 'line', text: 'a', lineNo: 1 },
      { kind: 'line', text: 'bb', lineNo: 2 },
      { kind: 'line', text: 'ccc', lineNo: 3 },
    ]);
  });

  test('joins a line split across chunks, byte by byte too', () => {
    const { f, calls } = framer();
    f.push(b('{"type":'));
    f.push(b('"thinking"}\nsec'));
    assert.deepEqual(calls, [{ kind: 'line', text: '{"type":"thinking"}', lineNo: 1 }]);
    for (const ch of 'ond\nthird\n') f.push(b(ch));
    assert.deepEqual(calls.slice(1), [
      { kind: 'line', text: 'second', lineNo: 2 },
      { kind: 'line', text: 'third', lineNo: 3 },
    ]);
  });

  test('a multi-byte UTF-8 character split between chunks arrives whole', () => {
    const calls: string[] = [];
    const f = new LineFramer(64, { line: (bytes) => calls.push(bytes.toString('utf8')), oversized: () => assert.fail('not oversized') });
    const bytes = Buffer.from('é€😀\n', 'utf8');
    for (let i = 0; i < bytes.length; i++) f.push(bytes.subarray(i, i + 1));
    assert.deepEqual(calls, ['é€😀']);
  });

  test('strips the \\r of a CRLF ending, also when \\r and \\n arrive in different chunks', () => {
    const { f, calls } = framer();
    f.push(b('one\r\ntwo\r'));
    f.push(b('\nthree\n'));
    assert.deepEqual(calls, [
      { kind: 'line', text: 'one', lineNo: 1 },
      { kind: 'line', text: 'two', lineNo: 2 },
      { kind: 'line', text: 'three', lineNo: 3 },
    ]);
  });

  test('a last line without a newline is delivered on end(), once', () => {
    const { f, calls } = framer();
    f.push(b('first\nlast'));
    assert.equal(calls.length, 1);
    f.end();
    assert.deepEqual(calls, [
      { kind: 'line', text: 'first', lineNo: 1 },
      { kind: 'line', text: 'last', lineNo: 2 },
    ]);
    f.end();
    assert.equal(calls.length, 2);
  });

  test('end() after a complete line delivers nothing more', () => {
    const { f, calls } = framer();
    f.push(b('only\n'));
    f.end();
    assert.deepEqual(calls, [{ kind: 'line', text: 'only', lineNo: 1 }]);
  });

  test('blank lines (LF, CRLF) are skipped but counted in line numbers', () => {
    const { f, calls } = framer();
    f.push(b('\n\r\na\n\n'));
    f.push(b('\nb\n'));
    assert.deepEqual(calls, [
      { kind: 'line', text: 'a', lineNo: 3 },
      { kind: 'line', text: 'b', lineNo: 6 },
    ]);
  });

  test('a line of exactly maxLineBytes is accepted, with LF or CRLF, in one chunk or split', () => {
    const max = 64;
    const exact = 'x'.repeat(max);
    for (const ending of ['\n', '\r\n']) {
      const { f, calls } = framer(max);
      f.push(b(exact + ending));
      f.push(b(exact.slice(0, 10)));
      f.push(b(exact.slice(10) + ending));
      f.push(b(exact + ending.slice(0, 1)));
      f.push(b(ending.slice(1) + 'next\n'));
      assert.deepEqual(
        calls,
        [
          { kind: 'line', text: exact, lineNo: 1 },
          { kind: 'line', text: exact, lineNo: 2 },
          { kind: 'line', text: exact, lineNo: 3 },
          { kind: 'line', text: 'next', lineNo: 4 },
        ],
        `ending ${JSON.stringify(ending)}`,
      );
    }
  });

  test('a line of maxLineBytes + 1 is rejected, in one chunk or split, and the next line is read normally', () => {
    const max = 64;
    const over = 'y'.repeat(max + 1);
    const { f, calls } = framer(max);
    f.push(b(`${over}\nok1\n`));
    f.push(b(over.slice(0, 30)));
    f.push(b(over.slice(30)));
    f.push(b('\nok2\n'));
    f.push(b(`${over}\r\nok3\n`));
    f.push(b(over));
    f.end();
    assert.deepEqual(calls, [
      { kind: 'oversized', lineNo: 1 },
      { kind: 'line', text: 'ok1', lineNo: 2 },
      { kind: 'oversized', lineNo: 3 },
      { kind: 'line', text: 'ok2', lineNo: 4 },
      { kind: 'oversized', lineNo: 5 },
      { kind: 'line', text: 'ok3', lineNo: 6 },
      { kind: 'oversized', lineNo: 7 },
    ]);
  });

  test('a 10 MB line in 64 KiB chunks is reported once, as soon as it passes the cap, and never held', () => {
    const max = 65536;
    const { f, calls } = framer(max);
    f.push(b('{"before":1}\n'));
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const chunks = Math.ceil((10 * 1024 * 1024) / chunk.length);
    let reportedAfter = -1;
    let peak = 0;
    for (let i = 0; i < chunks; i++) {
      f.push(chunk);
      peak = Math.max(peak, retained(f));
      if (reportedAfter < 0 && calls.some((c) => c.kind === 'oversized')) reportedAfter = i + 1;
    }
    // The report does not wait for the newline: the framer gave up on the line when it passed the cap.
    assert.equal(reportedAfter, 2);
    assert.ok(peak <= max + 1, `held ${peak} bytes of a line capped at ${max}`);
    f.push(b('\n{"after":2}\n'));
    assert.deepEqual(calls, [
      { kind: 'line', text: '{"before":1}', lineNo: 1 },
      { kind: 'oversized', lineNo: 2 },
      { kind: 'line', text: '{"after":2}', lineNo: 3 },
    ]);
    assert.equal(retained(f), 0);
  });

  test('the partial line kept between chunks is a copy, not a view pinning the socket chunk', () => {
    const { f, calls } = framer();
    const chunk = b('abc');
    f.push(chunk);
    chunk.fill(0x7a);
    f.push(b('\n'));
    assert.deepEqual(calls, [{ kind: 'line', text: 'abc', lineNo: 1 }]);
  });
});

describe('LineFramer: ASCII reads and other reads', () => {
  // An all-ASCII read is decoded once as text; any other read is framed on bytes. Both must frame the same way.
  const lines = (max: number, ...chunks: Buffer[]) => {
    const out: { line: string; lineNo: number; utf8: boolean; text: boolean }[] = [];
    const f = new LineFramer(max, {
      line: (line, lineNo, utf8) => out.push({ line: typeof line === 'string' ? line : line.toString('utf8'), lineNo, utf8, text: typeof line === 'string' }),
      oversized: (lineNo) => out.push({ line: '<oversized>', lineNo, utf8: false, text: false }),
    });
    chunks.forEach((c) => f.push(c));
    f.end();
    return out;
  };

  test('an ASCII read is delivered as text, with CRLF, blank lines and an oversized line handled as on bytes', () => {
    const ascii = lines(8, Buffer.from('ab\r\n\n123456789\nok\n'));
    assert.deepEqual(ascii, [
      { line: 'ab', lineNo: 1, utf8: true, text: true },
      { line: '<oversized>', lineNo: 3, utf8: false, text: false },
      { line: 'ok', lineNo: 4, utf8: true, text: true },
    ]);
    const other = lines(8, Buffer.from('ab\r\n\n123456789\nok\n\u00e9\n'));
    assert.deepEqual(other.slice(0, 3).map(({ line, lineNo }) => ({ line, lineNo })), ascii.map(({ line, lineNo }) => ({ line, lineNo })));
    assert.deepEqual(other[3], { line: '\u00e9', lineNo: 5, utf8: true, text: false });
  });

  test('a read with invalid UTF-8 marks none of its lines as checked', () => {
    const out = lines(64, Buffer.concat([Buffer.from('{"a":1}\n'), Buffer.from([0xff, 0x0a])]));
    assert.deepEqual(out.map((o) => o.utf8), [false, false]);
  });

  test('a line begun in one read and ended in an ASCII read keeps its number, and later lines theirs', () => {
    const out = lines(64, Buffer.from('{"type":"thin'), Buffer.from('king"}\nnext\n'));
    assert.deepEqual(out.map(({ line, lineNo }) => ({ line, lineNo })), [
      { line: '{"type":"thinking"}', lineNo: 1 },
      { line: 'next', lineNo: 2 },
    ]);
  });
});
