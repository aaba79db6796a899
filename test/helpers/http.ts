/**
 * Raw HTTP for exact status, headers (each as sent, duplicates visible) and body, from a chosen local address.
 */
import http from 'node:http';

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
