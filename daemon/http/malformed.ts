/**
 * Requests that cannot be understood get a JSON 400 (or 431), like every other error of this API.
 *
 * Three layers: Node's HTTP parser rejects broken request lines and oversized headers before any route runs
 * (`clientError`); @hono/node-server refuses requests it cannot turn into a URL (`Host: a:99999`, the target `*`,
 * HTTP/1.0 without `Host`: `requestErrorResponse`); percent-encoding that does not decode is caught by middleware,
 * since Hono would pass it on raw. The first two never reach Hono, so /metrics does not count them.
 */
import type { MiddlewareHandler } from 'hono';
import type { Socket } from 'node:net';
import { jsonError } from './errors.ts';

// Not async: a middleware that only decides whether to go on hands back next()'s promise instead of making another
// one (measured on the REST path, as are the other middleware written this way).
export const rejectMalformedUrl: MiddlewareHandler = (c, next) => {
  const url = c.req.url;
  // Without a '%' there is no escape to get wrong: the common case costs one scan.
  if (!url.includes('%')) return next();
  const start = url.indexOf('/', url.indexOf('//') + 2);
  try {
    decodeURIComponent(url.slice(start).replace(/\+/g, ' '));
  } catch {
    return Promise.resolve(jsonError(c, 400, 'Malformed URL: invalid percent-encoding in the path or query string'));
  }
  return next();
};

const PARSER_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'Request headers (or the URL) are too large'],
  HPE_URI_TOO_LONG: [414, 'URI Too Long', 'The URL is too long'],
};

/**
 * For getRequestListener's `errorHandler`: a request @hono/node-server could not build (a `RequestError`) gets a JSON
 * 400 instead of its empty one; anything else thrown before Hono answered is a 500, in JSON too.
 */
export function requestErrorResponse(error: unknown): Response {
  const requestError = error instanceof Error && error.name === 'RequestError';
  const why = requestError ? error.message.replace(/^./, (c) => c.toLowerCase()) : '';
  const [status, detail] = requestError
    ? [400, `Malformed HTTP request: ${why}; send an origin-form target (/path) and a Host header of host[:port]`]
    : [500, 'Internal Server Error'];
  return new Response(JSON.stringify({ detail }), { status, headers: { 'Content-Type': 'application/json', Connection: 'close' } });
}

/** For `server.on('clientError')`: answers in JSON where the socket can still take an answer, then closes it. */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable || (error.code === 'ECONNRESET' && socket.bytesWritten === 0 && !socket.readable)) {
    socket.destroy();
    return;
  }
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    socket.end(response(408, 'Request Timeout', 'The request was not completed in time'));
    return;
  }
  const [status, reason, detail] = PARSER_ERRORS[error.code ?? ''] ?? [400, 'Bad Request', 'Malformed HTTP request'];
  socket.end(response(status, reason, detail));
}

function response(status: number, reason: string, detail: string): string {
  const body = JSON.stringify({ detail });
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
