/**
 * The HTTP API as a Hono app: cross-cutting middleware first, then the routes.
 */
import { Hono } from 'hono';
import type { ApiKey } from '../auth/key.ts';
import type { Logger } from '../log.ts';
import { METRICS_PATH, registerMetricsRoute, type Metrics } from '../metrics.ts';
import type { SseHub } from '../sse/hub.ts';
import type { SseStats } from '../sse/stats.ts';
import type { StatusState } from '../state/fold.ts';
import type { Snapshots } from '../state/snapshots.ts';
import { authMiddleware } from './auth.ts';
import { corsMiddleware } from './cors.ts';
import { jsonError } from './errors.ts';
import { hostMiddleware } from './host.ts';
import { rejectMalformedUrl } from './malformed.ts';
import { filterFromQuery } from './filter.ts';
import { LIVEZ_PATH, READYZ_PATH, registerHealthRoutes, type Readiness } from './health.ts';
import { PAGE_PATH, registerPageRoute, type RenderedPage } from './page.ts';
import { FailureLimiter } from './rate-limit.ts';
import { etagMatches, summaryCache, type RenderedSummary } from '../state/summary.ts';
import { streamRoute, type NodeEnv } from './stream.ts';

export const STATUS_PATH = '/api/v1/agent/status';
export const STREAM_PATH = '/api/v1/agent/status/stream';
export const SUMMARY_PATH = '/api/v1/agent/status/summary';

export interface AppDeps {
  readonly snapshots: Pick<Snapshots, 'body'>;
  /** The state the summary is made of (serve). */
  readonly summaryOf?: () => StatusState;
  /** The summary already rendered (the fleet, over its agent view); with neither, there is no summary route. */
  readonly summary?: () => RenderedSummary;
  readonly hub: SseHub;
  readonly sseStats: SseStats;
  readonly maxSseClients: number;
  readonly log: Logger;
  readonly readiness: Readiness;
  readonly metrics: Metrics;
  /** The key in force (SIGHUP swaps it inside); a key that is not required means open access. */
  readonly apiKey: ApiKey;
  /** `--cors-origin`: the origins whose pages may read the API. */
  readonly corsOrigins: readonly string[];
  /** `--allowed-host`: names answered besides IP literals, localhost and this machine's hostname. */
  readonly allowedHosts: readonly string[];
  /** The fleet (daemon/fleet/server.ts): its own routes, behind the same middleware; returns their paths (for 405). */
  readonly moreRoutes?: (app: Hono<NodeEnv>) => readonly string[];
  /** The fleet: the status page in its fleet form. */
  readonly page?: () => RenderedPage;
}

export function createApp(deps: AppDeps): Hono<NodeEnv> {
  const { snapshots, log } = deps;
  const app = new Hono<NodeEnv>();

  // --- middleware ---
  // First, so that every response is counted, those refused by later middleware included.
  app.use(deps.metrics.httpMiddleware);
  // Before anything reads the request: a page that rebound its name to this machine gets nothing but a 421.
  app.use(hostMiddleware(deps.allowedHosts));
  app.use(rejectMalformedUrl);
  // Sets its headers before next(): the SSE route copies them when it takes over the response (stream.ts). The
  // headers every response carries are set beneath Hono, on Node's response (security-headers.ts).
  // Before the key check: a browser's preflight never carries the key.
  app.use(corsMiddleware(deps.corsOrigins));
  // Every path but the open ones (auth.ts OPEN_PATHS: /, /livez, /readyz) needs the key when one is set.
  app.use(authMiddleware(deps.apiKey, new FailureLimiter(), log));

  // --- routes ---
  // /livez and /readyz are open; /metrics sits behind the API key like /api/*.
  registerHealthRoutes(app, deps.readiness);
  registerMetricsRoute(app, deps.metrics);
  // The status page at / is open: its data comes from the stream, which checks the key.
  registerPageRoute(app, log, deps.page);
  app.get(STATUS_PATH, (c) =>
    c.body(snapshots.body(filterFromQuery(c)), 200, { 'Content-Type': 'application/json' }),
  );
  app.get(STREAM_PATH, streamRoute(deps.hub, deps.sseStats, deps.maxSseClients));
  // For pollers: small, no timers, an ETag; behind the key like the snapshot (auth.ts denies by default).
  const summaryOf = deps.summaryOf;
  const cache = summaryCache();
  const summary = deps.summary ?? (summaryOf ? () => cache(summaryOf()) : null);
  if (summary) {
    app.get(SUMMARY_PATH, (c) => {
      const { json, etag } = summary();
      if (etagMatches(c.req.header('if-none-match'), etag)) return c.body(null, 304, { ETag: etag });
      return c.body(json, 200, { 'Content-Type': 'application/json', ETag: etag });
    });
  }

  const more = deps.moreRoutes?.(app) ?? [];

  // --- fallbacks ---
  const paths = [PAGE_PATH, STATUS_PATH, STREAM_PATH, ...(summary ? [SUMMARY_PATH] : []), LIVEZ_PATH, READYZ_PATH, METRICS_PATH, ...more];
  for (const path of paths) {
    app.all(path, (c) => jsonError(c, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' }));
  }
  app.notFound((c) => jsonError(c, 404, 'Not Found'));
  app.onError((error, c) => {
    log.error({ err: error, path: c.req.path }, 'request failed');
    return jsonError(c, 500, 'Internal Server Error');
  });
  return app;
}
