/**
 * A small server-sent-events reader over `fetch`, for `status --watch`.
 *
 * Not the `eventsource` package: it is a devDependency (the installed command must not need it), it cannot tell a
 * rejected key (exit 2) from other failures without extra plumbing, and it has no idle timeout (pitfalls.md §2). This
 * reader follows the WHATWG parsing rules that matter here (CR, LF or CRLF line ends, one BOM, `data:` joined with
 * LF, comments, `retry:` digits only) and leaves reconnecting to the caller.
 */

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id: string | null;
}

/** Incremental parser: feed decoded text, get the events completed by it. */
export class SseParser {
  /** The server's `retry:` hint in milliseconds, once it sent one. */
  retry: number | null = null;
  private buffer = '';
  private started = false;
  private skipLf = false;
  private data: string[] = [];
  private type = '';
  private lastId: string | null = null;

  push(text: string): SseEvent[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    if (this.skipLf && text.startsWith('\n')) start = 1;
    this.skipLf = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      const line = this.buffer + text.slice(start, i);
      this.buffer = '';
      if (c === 0x0d) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 0x0a) i++;
        } else {
          this.skipLf = true; // a CRLF split across two chunks
        }
      }
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.buffer += text.slice(start);
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      const data = this.data;
      const type = this.type;
      this.data = [];
      this.type = '';
      if (data.length === 0) return null;
      return { event: type || 'message', data: data.join('\n'), id: this.lastId };
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.type = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return null;
  }
}

export interface SseStream {
  readonly response: Response;
  /** Events as they arrive; ends when the server closes the stream or `signal` aborts. */
  events(): AsyncGenerator<SseEvent>;
  /** The server's last `retry:` hint, in milliseconds. */
  readonly retry: number | null;
}

/**
 * Opens the stream. Resolves with the response whatever its status (the caller decides what a 403 means); rejects
 * only when no answer came (connection refused, reset, `signal` aborted). `onActivity` is called for every chunk,
 * comments included, so that the caller's idle watchdog sees keepalives.
 */
export async function openSse(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  onActivity: () => void = () => {},
): Promise<SseStream> {
  const response = await fetch(url, {
    headers: { Accept: 'text/event-stream', 'Cache-Control': 'no-cache', ...headers },
    signal,
  });
  const parser = new SseParser();
  return {
    response,
    get retry() {
      return parser.retry;
    },
    async *events() {
      if (!response.body) return;
      const decoder = new TextDecoder('utf-8');
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        onActivity();
        yield* parser.push(decoder.decode(chunk, { stream: true }));
      }
    },
  };
}
