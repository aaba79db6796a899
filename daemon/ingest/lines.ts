/**
 * Line framing on raw bytes, with a hard cap per line.
 *
 * Why not `ndjson`/`split2` (see protocol/README.md): they decode to strings before splitting, so invalid UTF-8 turns
 * into U+FFFD and parses; their `maxLength` counts characters of the unterminated tail only; and an oversized line is
 * either an error that destroys the stream or dropped silently. Here an oversized line is never buffered past the cap,
 * is reported once, and the next line is read normally.
 */
import { isUtf8 } from 'node:buffer';

export interface LineSink {
  /**
   * A complete line, without its `\n` or `\r\n`. `bytes` may be a view into a larger buffer: use it before returning.
   * `utf8` is true when the line is already known to be valid UTF-8 (checked once for the whole read).
   */
  line(bytes: Buffer, lineNo: number, utf8: boolean): void;
  /** A line passed `maxLineBytes`; the rest of it up to the next newline is skipped unread. */
  oversized(lineNo: number): void;
}

const LF = 0x0a;
const CR = 0x0d;

export class LineFramer {
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private skipping = false;
  private lineNo = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    // LF never occurs inside a multi-byte sequence, so if the complete lines of this read are valid UTF-8 as a
    // whole, each of them is: one check per read instead of one per line.
    const last = chunk.lastIndexOf(LF);
    const utf8 = last >= 0 && isUtf8(chunk.subarray(0, last));
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl < 0) break;
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
      } else if (this.tailBytes > 0) {
        const piece = chunk.subarray(start, nl);
        const line = Buffer.concat([...this.tail, piece], this.tailBytes + piece.length);
        this.tail = [];
        this.tailBytes = 0;
        this.deliver(line, 0, line.length, false);
      } else {
        this.deliver(chunk, start, nl, utf8);
      }
      start = nl + 1;
    }
    if (start < chunk.length) this.keep(chunk, start);
  }

  /** The producer closed: a last line without a newline still counts. */
  end(): void {
    if (this.tailBytes > 0) {
      this.lineNo++;
      const line = Buffer.concat(this.tail, this.tailBytes);
      this.tail = [];
      this.tailBytes = 0;
      this.deliver(line, 0, line.length, false);
    }
    this.skipping = false;
  }

  private deliver(buf: Buffer, start: number, end: number, utf8: boolean): void {
    if (end > start && buf[end - 1] === CR) end--;
    if (end - start > this.maxLineBytes) return this.sink.oversized(this.lineNo);
    if (end > start) this.sink.line(buf.subarray(start, end), this.lineNo, utf8);
  }

  private keep(chunk: Buffer, start: number): void {
    if (this.skipping) return;
    const size = chunk.length - start;
    // +1 leaves room for the `\r` of a `\r\n` ending that may complete a line of exactly maxLineBytes.
    if (this.tailBytes + size > this.maxLineBytes + 1) {
      this.tail = [];
      this.tailBytes = 0;
      this.skipping = true;
      this.sink.oversized(this.lineNo + 1);
      return;
    }
    // Copy: a view would pin the whole socket chunk in memory until the line completes.
    this.tail.push(Buffer.from(chunk.subarray(start)));
    this.tailBytes += size;
  }
}
