/**
 * Raw HTTP for exact status, headers (each as sent, duplicates visible) and body, from a chosen local address.
 */
import http from 'node:http';
import net from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Name/value pairs as received: a header sent twice appears twice. */
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

export interface RawRequest {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** The client address the daemon sees (any of 127.0.0.0/8 on Linux): separate rate-limit buckets per test. */
  readonly localAddress?: string;
}

/** One request on its own connection; reads the whole body (not for a 200 stream: use RawSse or eventsource). */
export function request(url: string, options: RawRequest = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, localAddress: options.localAddress, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** How many times a header was sent (case-insensitive). */
export function headerCount(res: RawResponse, name: string): number {
  let n = 0;
  for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i]!.toLowerCase() === name.toLowerCase()) n++;
  return n;
}

export const FORBIDDEN_BODY = '{"detail":"Invalid or missing status API key"}';
export const TOO_MANY_BODY = '{"detail":"Too many requests"}';

/** Sends `head` (request line and headers) as raw bytes and reads the whole answer until the daemon closes. */
export async function rawExchange(url: string, head: string): Promise<{ status: number; headers: string; body: string }> {
  const { port } = new URL(url);
  const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
  let text = '';
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.write(head);
  // The daemon closes after an error answer (Connection: close); bound the wait anyway.
  await new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.setTimeout(5000, () => socket.destroy());
  });
  const split = text.indexOf('\r\n\r\n');
  const headers = text.slice(0, split);
  let body = text.slice(split + 4);
  if (/transfer-encoding: chunked/i.test(headers)) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), headers, body };
}
