/**
 * Headers every response carries: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, and
 * `Cache-Control: no-store` unless the route chose its own (the SSE stream's `no-cache`, the page's).
 *
 * Set on Node's response before Hono sees the request, not by Hono middleware. `c.header()` builds a WHATWG Headers
 * object for every response, which @hono/node-server then converts back into a plain object: that round trip cost
 * about a tenth of the REST path's CPU (scripts/bench/rest.ts). Node keeps these in its own header table, and
 * `writeHead()` merges a route's headers over them, so a route's own value still wins, and the SSE route, which
 * writes its head itself (stream.ts), gets them the same way.
 *
 * Hono's secureHeaders() would also add document headers a JSON API does not need.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

type Listener = (req: IncomingMessage, res: ServerResponse) => unknown;

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  // A page opened with ?key= must not hand its URL to the sites it links to.
  'Referrer-Policy': 'no-referrer',
  // The status is live and may be private: no cache, shared or not, keeps a copy.
  'Cache-Control': 'no-store',
};

const ENTRIES = Object.entries(SECURITY_HEADERS);

/** Wraps the HTTP server's request listener so that every response starts with the security headers. */
export function withSecurityHeaders(listener: Listener): Listener {
  return (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of ENTRIES) res.setHeader(name, value);
    return listener(req, res);
  };
}
