/**
 * GET /api/v1/agent/status/stream: hands the raw Node response to the SSE hub.
 *
 * The hub writes pre-encoded bytes straight to Node's ServerResponse (`c.env.outgoing`): Hono's streamSSE helper
 * costs several times the CPU and memory per client and blocks on a client that stops reading (pitfalls.md §3).
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import type { OutgoingHttpHeaders } from 'node:http';
import type { SessionFilter } from '../state/snapshot.ts';
import { SSE_HEADERS, type SseHub } from '../sse/hub.ts';
import type { SseStats } from '../sse/stats.ts';
import { jsonError } from './errors.ts';
import { filterFromQuery } from './filter.ts';

export type NodeEnv = { Bindings: HttpBindings };

const STREAM_HEADER_NAMES = new Set(Object.keys(SSE_HEADERS).map((name) => name.toLowerCase()));

export function streamRoute(hub: SseHub, stats: SseStats, maxClients: number) {
  return (c: Context<NodeEnv>): Response => {
    if (c.req.method === 'HEAD') return c.body(null, 200, SSE_HEADERS);
    if (hub.clientCount >= maxClients) {
      stats.clientsRefused++;
      return jsonError(c, 503, `too many SSE clients connected (limit ${maxClients}); retry later`, { 'Retry-After': '5' });
    }
    const filter = filterFromQuery(c);
    hub.accept({
      res: c.env.outgoing,
      filter,
      filterKey: filterKey(filter),
      transitions: ['1', 'true', 'yes'].includes(c.req.query('transitions') ?? ''),
      lastEventId: c.req.header('last-event-id') ?? c.req.query('last_event_id') ?? null,
      headers: takeOver(c),
    });
    return RESPONSE_ALREADY_SENT;
  };
}

/**
 * Returns the headers middleware set (CORS, security) and marks the response as already sent.
 *
 * Once middleware has touched `c.res`, Hono merges a returned Response into a new one, which @hono/node-server then
 * writes as an ordinary response ("Cannot write headers after they are sent"). Clearing `c.res` first and setting
 * RESPONSE_ALREADY_SENT directly avoids the merge. Middleware must therefore set its headers before `await next()`.
 */
function takeOver(c: Context<NodeEnv>): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  c.res.headers.forEach((value, name) => {
    // The stream's own headers win (Headers gives lower-case names; SSE_HEADERS is spelled differently).
    if (!STREAM_HEADER_NAMES.has(name)) headers[name] = value;
  });
  c.res = undefined;
  c.res = RESPONSE_ALREADY_SENT;
  return headers;
}

function filterKey(filter: SessionFilter): string {
  if (filter.sessions === null && filter.channels === null && !filter.nodes) return '';
  const sorted = (set: ReadonlySet<string> | null | undefined) => (set ? [...set].sort() : null);
  return JSON.stringify([sorted(filter.sessions), sorted(filter.channels), sorted(filter.nodes)]);
}
