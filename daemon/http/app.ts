/**
 * The HTTP API as a Hono app: cross-cutting middleware first, then the routes.
 */
import { Hono } from 'hono';
import type { Logger } from '../log.ts';
import type { SseHub } from '../sse/hub.ts';
import type { SseStats } from '../sse/stats.ts';
import type { Snapshots } from '../state/snapshots.ts';
import { jsonError } from './errors.ts';
import { filterFromQuery } from './filter.ts';
import { streamRoute, type NodeEnv } from './stream.ts';

export const STATUS_PATH = '/api/v1/agent/status';
export const STREAM_PATH = '/api/v1/agent/status/stream';

export interface AppDeps {
  readonly snapshots: Snapshots;
  readonly hub: SseHub;
  readonly sseStats: SseStats;
  readonly maxSseClients: number;
  readonly log: Logger;
}

export function createApp(deps: AppDeps): Hono<NodeEnv> {
  const { snapshots, log } = deps;
  const app = new Hono<NodeEnv>();

  // --- middleware ---

  // --- routes ---
  app.get(STATUS_PATH, (c) =>
    c.body(snapshots.render(filterFromQuery(c)).json, 200, { 'Content-Type': 'application/json' }),
  );
  app.get(STREAM_PATH, streamRoute(deps.hub, deps.sseStats, deps.maxSseClients));

  // --- fallbacks ---
  for (const path of [STATUS_PATH, STREAM_PATH]) {
    app.all(path, (c) => jsonError(c, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' }));
  }
  app.notFound((c) => jsonError(c, 404, 'Not Found'));
  app.onError((error, c) => {
    log.error({ err: error, path: c.req.path }, 'request failed');
    return jsonError(c, 500, 'Internal Server Error');
  });
  return app;
}
