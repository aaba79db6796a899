/**
 * The API-key gate: every path needs the key (when one is configured) except the few that show nothing.
 *
 * Deny by default: a route added later is protected unless it is listed in OPEN_PATHS, so nothing becomes readable
 * by accident. Refusals are decided before the route runs, so an SSE client gets its 403 before any stream byte.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { ApiKey } from '../auth/key.ts';
import type { Logger } from '../log.ts';
import { jsonError } from './errors.ts';
import type { FailureLimiter } from './rate-limit.ts';
import type { NodeEnv } from './stream.ts';

/**
 * Harmless without a key: liveness, readiness (check names only) and the status page, which holds no data and passes
 * its own `?key=` on to the stream.
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/', '/livez', '/readyz']);

/** Upstream's body, byte for byte: clients written against PocketPaw match on it. */
export const FORBIDDEN_DETAIL = 'Invalid or missing status API key';
export const TOO_MANY_DETAIL = 'Too many requests';
/** On every 403, so generic HTTP clients know a key is wanted and how to send it (the body stays upstream's). */
export const WWW_AUTHENTICATE = 'Bearer realm="pocketpaw-status"';
/**
 * On every refusal: the kind of source this daemon takes its key from (`env`, `file` or `credential`), so the status
 * page can tell a person where to find the key. Only the kind: never the path, let alone the key.
 */
export const KEY_SOURCE_HEADER = 'X-Status-Key-Source';

export function clientAddress(c: Context<NodeEnv>): string {
  // The peer of the TCP connection, never X-Forwarded-For, which every client can write.
  return c.env?.incoming?.socket?.remoteAddress ?? 'unknown';
}

export function authMiddleware(apiKey: ApiKey, limiter: FailureLimiter, log: Logger): MiddlewareHandler<NodeEnv> {
  const check: MiddlewareHandler<NodeEnv> = async (c, next) => {
    const result = apiKey.check({
      query: c.req.query('key'),
      header: c.req.header('x-status-key'),
      authorization: c.req.header('authorization'),
    });
    if (result === 'ok') return next();
    const source = apiKey.source.kind;
    // Only failures reach the limiter: the right key is never limited.
    const address = clientAddress(c);
    const verdict = limiter.fail(address);
    if (verdict.limited) {
      if (verdict.first) log.warn({ address, path: c.req.path }, 'too many failed API key attempts from this address; answering 429 until they slow down');
      return jsonError(c, 429, TOO_MANY_DETAIL, { 'Retry-After': String(verdict.retryAfterSeconds), [KEY_SOURCE_HEADER]: source });
    }
    return jsonError(c, 403, FORBIDDEN_DETAIL, { 'WWW-Authenticate': WWW_AUTHENTICATE, [KEY_SOURCE_HEADER]: source });
  };
  // apiKey.required is read per request: SIGHUP may add or remove the key.
  return (c, next) => (!apiKey.required || OPEN_PATHS.has(c.req.path) ? next() : check(c, next));
}

/** For anyone who logs a URL: the key's value replaced, the rest kept. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]key=)[^&#]*/gi, '$1[redacted]');
}
