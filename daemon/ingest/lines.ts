/**
 * Line framing on raw bytes, with a hard cap per line.
 *
 * Why not `ndjson`/`split2` (see protocol/README.md): they decode to strings before splitting, so invalid UTF-8 turns
 * into U+FFFD and parses; their `maxLength` counts characters of the unterminated tail only; and an oversized line is
 * either an error that destroys the stream or dropped silently. Here an oversized line is never buffered past the cap,
 * is reported once, and the next line is read normally.
 */
import { isAscii, isUtf8 } from 'node:buffer';

export interface LineSink {
  /**
   * A complete line, without its `\n` or `\r\n`: a string when the read was plain ASCII (the common case, decoded
   * once for the whole read), else bytes, which may be a view into a larger buffer: use them before returning.
   * `utf8` is true when the line is known to be valid UTF-8 (always for a string).
   */
  line(line: Buffer | string, lineNo: number, utf8: boolean): void;
  /** A line passed `maxLineBytes`; the rest of it up to the next newline is skipped unread. */
  oversized(lineNo: number): void;
}

const LF = 0x0a;
const CR = 0x0d;

/** The first allocation for an unterminated tail; it doubles as the line grows (up to the cap). */
const MIN_TAIL_BYTES = 256;

export class LineFramer {
  /**
   * The unterminated end of the line being read: one buffer grown by doubling, not one Buffer per read. A producer
   * trickling one byte per read would otherwise cost a Buffer object (about 110 bytes of heap) per byte.
   */
  private tail: Buffer | null = null;
  private tailBytes = 0;
  private skipping = false;
  private lineNo = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly sink: LineSink,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    if (this.tailBytes > 0 || this.skipping) {
      // First finish the line an earlier read began.
      const nl = chunk.indexOf(LF);
      if (nl < 0) return this.keep(chunk, 0);
      this.lineNo++;
      if (this.skipping) {
        this.skipping = false;
      } else {
        const piece = chunk.subarray(0, nl);
        const line = Buffer.concat([this.tail!.subarray(0, this.tailBytes), piece], this.tailBytes + piece.length);
        this.tail = null;
        this.tailBytes = 0;
        this.deliver(line, 0, line.length, false);
      }
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= start) {
      const lines = chunk.subarray(start, last);
      if (isAscii(lines)) {
        // One decode for every complete line of the read: ASCII bytes are characters, so lengths are byte counts.
        this.deliverText(chunk.toString('latin1', start, last + 1));
      } else {
        // LF never occurs inside a multi-byte sequence, so if the complete lines of this read are valid UTF-8 as a
        // whole, each of them is: one check per read instead of one per line.
        const utf8 = isUtf8(lines);
        for (let nl = chunk.indexOf(LF, start); nl >= 0 && nl <= last; nl = chunk.indexOf(LF, start)) {
          this.lineNo++;
          this.deliver(chunk, start, nl, utf8);
          start = nl + 1;
        }
      }
      start = last + 1;
    }
    if (start < chunk.length) this.keep(chunk, start);
  }

  /** Complete ASCII lines, each ending in `\n`. */
  private deliverText(text: string): void {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.lineNo++;
      const end = nl > start && text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      if (end - start > this.maxLineBytes) this.sink.oversized(this.lineNo);
      else if (end > start) this.sink.line(text.slice(start, end), this.lineNo, true);
      start = nl + 1;
    }
  }

  /** The producer closed: a last line without a newline still counts. */
  end(): void {
    if (this.tailBytes > 0) {
      this.lineNo++;
      const line = this.tail!.subarray(0, this.tailBytes);
      this.tail = null;
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
    const needed = this.tailBytes + size;
    if (needed > this.maxLineBytes + 1) {
      this.tail = null;
      this.tailBytes = 0;
      this.skipping = true;
      this.sink.oversized(this.lineNo + 1);
      return;
    }
    // Copied into our own buffer: a view would pin the whole socket chunk in memory until the line completes.
    if (this.tail === null || this.tail.length < needed) {
      let capacity = Math.max(MIN_TAIL_BYTES, this.tail?.length ?? 0);
      while (capacity < needed) capacity *= 2;
      // Never past the cap (+1 for the `\r`): growth stops where an oversized line would be dropped anyway.
      const grown = Buffer.allocUnsafeSlow(Math.min(capacity, this.maxLineBytes + 1));
      if (this.tail !== null) this.tail.copy(grown, 0, 0, this.tailBytes);
      this.tail = grown;
    }
    chunk.copy(this.tail, this.tailBytes, start);
    this.tailBytes = needed;
  }

  /** Lines ended so far (oversized ones included). */
  get lineCount(): number {
    return this.lineNo;
  }

  /** Bytes of an unfinished line are waiting for the rest of it (or an oversized line is being skipped). */
  get pending(): boolean {
    return this.tailBytes > 0 || this.skipping;
  }
}
