/**
 * Headers every response carries: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
 * `Cache-Control: no-store` unless the route chose its own (the SSE stream's `no-cache`, set by the hub).
 *
 * The first two are set before `next()`, because the SSE route copies what middleware set when it takes over the raw
 * response (see stream.ts) and nothing set afterwards can reach that response. Cache-Control cannot be set that way:
 * the copied lower-case `cache-control` and the hub's own `Cache-Control` would both be sent. So it is a default added
 * after the route, only to responses that are not taken over and have none.
 *
 * Hono's secureHeaders() sets everything after `next()` and adds document headers a JSON API does not need.
 */
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { MiddlewareHandler } from 'hono';

export const securityHeaders: MiddlewareHandler = async (c, next) => {
  c.header('X-Content-Type-Options', 'nosniff');
  // A page opened with ?key= must not hand its URL to the sites it links to.
  c.header('Referrer-Policy', 'no-referrer');
  await next();
  // The status is live and may be private: no cache, shared or not, keeps a copy.
  if (c.res !== RESPONSE_ALREADY_SENT && !c.res.headers.has('cache-control')) c.header('Cache-Control', 'no-store');
};
