/**
 * Headers every response carries: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
 * `Cache-Control: no-store` unless the route chose its own (the SSE stream's `no-cache`, set by the hub).
 *
 * All are set before `next()`: a route's own headers override them (Hono applies the route's after these), the SSE
 * route copies them when it takes over the raw response (stream.ts, which lets the stream's own headers win), and a
 * header set after `next()` would make Hono rebuild the finished Response around a stream body, which took the
 * snapshot off @hono/node-server's fast path (REST fell to about a quarter of its speed).
 *
 * Hono's secureHeaders() sets everything after `next()` and adds document headers a JSON API does not need.
 */
import type { MiddlewareHandler } from 'hono';

export const securityHeaders: MiddlewareHandler = async (c, next) => {
  c.header('X-Content-Type-Options', 'nosniff');
  // A page opened with ?key= must not hand its URL to the sites it links to.
  c.header('Referrer-Policy', 'no-referrer');
  // The status is live and may be private: no cache, shared or not, keeps a copy.
  c.header('Cache-Control', 'no-store');
  await next();
};
