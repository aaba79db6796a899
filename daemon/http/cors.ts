/**
 * CORS for browser pages on other origins: an allow-list of exact origins (`--cors-origin`), none by default, never `*`.
 *
 * Hono's cors() appends `Vary` after `await next()`, which the SSE route cannot carry (it has taken over the raw
 * response by then: see stream.ts), so this sets every header before `next()`.
 *
 * A preflight from an allowed origin gets 204 with the origin echoed. A preflight from any other origin gets 403 with
 * a JSON reason and no CORS header: the browser refuses either way, and someone testing with curl sees why. Ordinary
 * requests from other origins are answered as usual but without `Access-Control-Allow-Origin`, so a page there cannot
 * read them. No credentials mode: the key travels in a header or the query, never a cookie.
 */
import type { MiddlewareHandler } from 'hono';
import { jsonError } from './errors.ts';

export const ALLOWED_METHODS = 'GET';
export const ALLOWED_HEADERS = 'X-Status-Key, Authorization, Last-Event-ID';
const MAX_AGE_SECONDS = '600';

/** One origin as a browser sends it: `scheme://host[:port]`, default port dropped, host in lower case. */
export function parseOrigin(raw: string): string {
  const text = raw.trim();
  if (text.includes('*')) throw new Error(`${JSON.stringify(text)}: "*" is never allowed; list each origin (scheme://host[:port]) whose pages may read the status`);
  if (text === 'null') throw new Error('"null" is never allowed (sandboxed frames and file:// pages all send it); serve the page from an http(s) origin');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${JSON.stringify(text)} is not an origin; expected scheme://host[:port] such as https://dash.example.lan`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${JSON.stringify(text)} is not an http or https origin`);
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') {
    throw new Error(`${JSON.stringify(text)} is not an origin: drop the path, query and user part, keep scheme://host[:port]`);
  }
  return url.origin;
}

/** A comma-separated list (the environment variable's form; also accepted in one flag). Blank items are skipped. */
export function parseOriginList(raw: string): string[] {
  const origins = raw.split(',').map((s) => s.trim()).filter((s) => s !== '').map(parseOrigin);
  return [...new Set(origins)];
}

export function corsMiddleware(origins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(origins);
  const check: MiddlewareHandler = async (c, next) => {
    const origin = c.req.header('origin');
    const ok = origin !== undefined && allowed.has(origin);
    // With an allow-list the answer depends on Origin: caches must key on it.
    if (allowed.size > 0) c.header('Vary', 'Origin', { append: true });
    const preflight = c.req.method === 'OPTIONS' && origin !== undefined && c.req.header('access-control-request-method') !== undefined;
    if (preflight) {
      if (!ok) return jsonError(c, 403, 'Origin not allowed: the daemon\'s --cors-origin list names the pages that may read the status');
      c.header('Access-Control-Allow-Origin', origin);
      c.header('Access-Control-Allow-Methods', ALLOWED_METHODS);
      c.header('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      c.header('Access-Control-Max-Age', MAX_AGE_SECONDS);
      return c.body(null, 204);
    }
    if (ok) {
      c.header('Access-Control-Allow-Origin', origin);
      // So that a page can honour a 429's Retry-After.
      c.header('Access-Control-Expose-Headers', 'Retry-After');
    }
    await next();
  };
  // No allow-list: only a preflight gets an answer (a refusal); every other request passes untouched.
  return (c, next) => (allowed.size === 0 && c.req.method !== 'OPTIONS' ? next() : check(c, next));
}
