/**
 * A raw SSE reader over node:http, for tests that check exact framing (comments, `retry:`, headers, ordering).
 * Behaviour tests use the `eventsource` package instead, as a real client would.
 */
import http from 'node:http';
import { waitFor } from './daemon.ts';

export interface SseMessage {
  event: string;
  data: string;
  id: string | null;
  retry: number | null;
}

export class RawSse {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  /** Every field line in arrival order, including comments (`:...`), for ordering checks. */
  readonly lines: string[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  private buffer = '';
  private current: SseMessage = blank();
  private req: http.ClientRequest | null = null;
  private res: http.IncomingMessage | null = null;
  body = '';

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawSse> {
    const sse = new RawSse();
    await new Promise<void>((resolve, reject) => {
      sse.req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
        sse.res = res;
        sse.status = res.statusCode ?? 0;
        sse.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => sse.feed(chunk));
        res.on('end', () => (sse.ended = true));
        res.on('close', () => (sse.ended = true));
        res.on('error', () => (sse.ended = true));
        resolve();
      });
      sse.req.on('error', reject);
    });
    return sse;
  }

  private feed(chunk: string): void {
    if (this.status !== 200) {
      this.body += chunk;
      return;
    }
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line === '') {
        if (this.current.data !== '' || this.current.retry !== null || this.current.event !== 'message') {
          this.messages.push(this.current);
        }
        this.current = blank();
        continue;
      }
      this.lines.push(line);
      if (line.startsWith(':')) {
        this.comments.push(line);
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') this.current.event = value;
      else if (field === 'data') this.current.data += (this.current.data ? '\n' : '') + value;
      else if (field === 'id') this.current.id = value;
      else if (field === 'retry') this.current.retry = Number(value);
    }
  }

  /** Messages of one event type. */
  of(event: string): SseMessage[] {
    return this.messages.filter((m) => m.event === event);
  }

  async waitFor(check: (sse: RawSse) => boolean, what = 'SSE condition', timeoutMs = 5000): Promise<void> {
    await waitFor(() => check(this), { what: `${what}; got ${JSON.stringify(this.messages.map((m) => m.event))}`, timeoutMs });
  }

  /** Stops reading: the socket is paused, so the server's writes back up (a client that never reads). */
  pause(): void {
    this.res?.pause();
  }

  resume(): void {
    this.res?.resume();
  }

  close(): void {
    this.req?.destroy();
  }
}

function blank(): SseMessage {
  return { event: 'message', data: '', id: null, retry: null };
}

/** The `seq` part of an id `<run>-<seq>`. */
export function seqOf(id: string | null): number {
  const m = /^\d+-(\d+)$/.exec(id ?? '');
  if (!m) throw new Error(`not an event id: ${id}`);
  return Number(m[1]);
}

/** A snapshot without its timing fields, for comparing what a client sees. */
export function timeless(json: string): unknown {
  const body = JSON.parse(json) as { global: Record<string, unknown>; sessions: Record<string, unknown>[] };
  delete body.global.uptime_seconds;
  for (const s of body.sessions) delete s.duration_seconds;
  return body;
}
