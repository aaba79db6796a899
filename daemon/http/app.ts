/**
 * The HTTP API as a Hono app: routes and the middleware that applies to all of them.
 */
import { Hono } from 'hono';
import type { Logger } from '../log.ts';
import type { Snapshots } from '../state/snapshots.ts';
import { jsonError } from './errors.ts';
import { filterFromQuery } from './filter.ts';

export const STATUS_PATH = '/api/v1/agent/status';

export interface AppDeps {
  readonly snapshots: Snapshots;
  readonly log: Logger;
}

export function createApp({ snapshots, log }: AppDeps): Hono {
  const app = new Hono();

  app.get(STATUS_PATH, (c) =>
    c.body(snapshots.render(filterFromQuery(c)).json, 200, { 'Content-Type': 'application/json' }),
  );

  for (const path of [STATUS_PATH]) {
    app.all(path, (c) => jsonError(c, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' }));
  }
  app.notFound((c) => jsonError(c, 404, 'Not Found'));
  app.onError((error, c) => {
    log.error({ err: error, path: c.req.path }, 'request failed');
    return jsonError(c, 500, 'Internal Server Error');
  });
  return app;
}
