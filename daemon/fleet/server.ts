/**
 * `pocketpaw-status fleet`: wires the aggregator in the order data flows, as serve.ts does for a daemon:
 * MQTT input -> fleet fold (store) -> change feed -> outputs (REST, two SSE hubs, the page, /metrics).
 *
 * The outputs are the daemon's own HTTP pieces (app.ts: key rules, CORS, Host checks, rate limits, security headers;
 * hub.ts: ids, retry, Last-Event-ID replay, coalescing, bounded slow clients), given the fleet's snapshot sources.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkExposure, loadStartupKey } from '../auth/exposure.ts';
import { ConfigError, type FleetConfig } from '../config.ts';
import { loadMqttPassword } from '../mqtt/settings.ts';
import { readFileSync } from 'node:fs';
import { FLEET_VIEW_HEADER } from '../cli/render.ts';
import { createApp } from '../http/app.ts';
import { filterFromQuery } from '../http/filter.ts';
import { Readiness } from '../http/health.ts';
import { createHttpServer, listenHttp } from '../http/server.ts';
import { currentPage, type RenderedPage } from '../http/page.ts';
import { streamRoute } from '../http/stream.ts';
import type { Logger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import { SseHub, type HubOptions } from '../sse/hub.ts';
import { SseStats } from '../sse/stats.ts';
import { IngestStats } from '../ingest/stats.ts';
import type { SessionState } from '../../protocol/snapshot.ts';
import { initialFleetState, type FleetState } from './fold.ts';
import { renderFleetSummary } from './render.ts';
import type { RenderedSummary } from '../state/summary.ts';
import { FleetMqttInput } from './mqtt-input.ts';
import { FleetSnapshots } from './snapshots.ts';
import { DropLog, FleetStats, registerFleetMetrics } from './stats.ts';
import { FleetStore } from './store.ts';

export const FLEET_STATUS_PATH = '/api/v1/fleet/status';
export const FLEET_STREAM_PATH = '/api/v1/fleet/status/stream';

export interface Fleet {
  readonly url: string;
  readonly store: FleetStore;
  readonly stats: FleetStats;
  close(): Promise<void>;
  reload(): void;
}

export async function startFleet(config: FleetConfig, log: Logger): Promise<Fleet> {
  const { apiKey, warnings } = loadStartupKey(config.apiKeyFile, process.env);
  checkExposure(config.host, apiKey, config.allowOpen);
  for (const warning of warnings) log.warn(warning);
  const clock = () => performance.now();
  const startedAt = clock();
  const store = new FleetStore(initialFleetState(config.maxNodes), clock);
  const stats = new FleetStats();
  const fleetView = new FleetSnapshots(store, 'fleet', startedAt);
  const agentView = new FleetSnapshots(store, 'agent', startedAt);
  const sseStats = new SseStats();
  const hubOptions: HubOptions = {
    heartbeatMs: config.sseHeartbeat * 1000,
    minIntervalMs: config.sseMinInterval,
    replay: config.sseReplay,
    writeTimeoutMs: config.sseWriteTimeout * 1000,
    maxClientBytes: config.sseMaxClientBytes,
    maxTotalBytes: config.sseMaxTotalBytes,
  };
  const fleetHub = new SseHub(fleetView.feed(), fleetView, clock, hubOptions, sseStats, log);
  const agentHub = new SseHub(agentView.feed(), agentView, clock, hubOptions, sseStats, log);
  const readiness = new Readiness();
  const metrics = createMetrics({ ingest: new IngestStats(), sse: sseStats, state: () => ({ sessions: sessionStates(store.state) }), more: registerFleetMetrics(stats, () => store.state) });
  const app = createApp({
    snapshots: agentView,
    summary: fleetSummary(store),
    hub: agentHub,
    sseStats,
    maxSseClients: config.maxSseClients,
    log,
    readiness,
    metrics,
    apiKey,
    corsOrigins: config.corsOrigin,
    allowedHosts: config.allowedHost,
    page: fleetPage,
    moreRoutes: (routes) => {
      routes.get(FLEET_STATUS_PATH, (c) => c.body(fleetView.body(filterFromQuery(c)), 200, { 'Content-Type': 'application/json' }));
      routes.get(FLEET_STREAM_PATH, streamRoute(fleetHub, sseStats, config.maxSseClients));
      return [FLEET_STATUS_PATH, FLEET_STREAM_PATH];
    },
  });
  const http = createHttpServer(app.fetch, markedAsFleet);
  const drops = new DropLog(log, clock);
  // "ingest" in /readyz is, for the fleet, the subscription to the nodes' topics.
  const broker = config.mqttUrl!;
  const brokerUrl = `${broker.protocol}//${broker.host}`;
  // The broker's credentials as serve reads them: a password file or the systemd credential mqtt-password, never argv.
  let password: string | null;
  try {
    password = loadMqttPassword(config.mqttPasswordFile, config.mqttUsername, process.env);
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  const input = new FleetMqttInput(
    {
      url: brokerUrl,
      base: config.mqttTopicBase,
      username: config.mqttUsername ?? undefined,
      password: password ?? undefined,
      ca: config.mqttCaFile === null ? undefined : readFileSync(config.mqttCaFile),
    },
    store,
    stats,
    drops,
    log,
    () => readiness.markIngestBound(),
  );
  try {
    await listenHttp(http, { port: config.port, host: config.host });
    await input.start();
  } catch (error) {
    if (http.listening) http.close();
    fleetHub.close();
    agentHub.close();
    drops.close();
    await input.close();
    throw error;
  }
  const address = http.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ http: url, broker: brokerUrl, base: config.mqttTopicBase }, `ready: fleet on ${url}, reading ${config.mqttTopicBase}/+/... from ${brokerUrl}`);

  let closing: Promise<void> | null = null;
  return {
    url,
    store,
    stats,
    reload: () => apiKey.reload(log),
    close: () =>
      (closing ??= (async () => {
        readiness.startDraining();
        fleetHub.close();
        agentHub.close();
        drops.close();
        const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeAllConnections();
        await Promise.all([input.close(), httpClosed]);
      })()),
  };
}

/** The agent view's summary, rendered once per fleet state (the state is replaced on every change, so identity is enough). */
function fleetSummary(store: FleetStore): () => RenderedSummary {
  let last: { state: FleetState; rendered: RenderedSummary } | null = null;
  return () => {
    if (last?.state !== store.state) last = { state: store.state, rendered: renderFleetSummary(store.state) };
    return last.rendered;
  };
}

/** Every session by the state the fleet shows it in (a session of an offline node counts as `error`), for /metrics. */
/** Sessions by state over every node, as the metrics' sessions gauge counts them (an offline node's are `error`). */
function sessionStates(state: FleetState): { countIn(state: SessionState): number } {
  const counts = new Map<SessionState, number>();
  for (const node of state.nodes.values()) {
    for (const s of node.sessions.values()) {
      const shown = node.availability === 'offline' ? 'error' : s.session.state;
      counts.set(shown, (counts.get(shown) ?? 0) + 1);
    }
  }
  return { countIn: (s) => counts.get(s) ?? 0 };
}

/** The marker page.ts reads to follow the fleet stream and group sessions by node. */
export const FLEET_PAGE_MARKER = '<meta name="pocketpaw-status-view" content="fleet">';

/** The status page with the fleet marker in its head; the script and stylesheet (and so the CSP hashes) are the same. */
export function fleetPage(): RenderedPage {
  const page = currentPage();
  return { ...page, html: page.html.replace('<head>', `<head>\n${FLEET_PAGE_MARKER}`) };
}

/** Every response says it comes from a fleet: `status --url` adds its NODE column (cli/render.ts). */
function markedAsFleet(listener: (req: IncomingMessage, res: ServerResponse) => unknown) {
  return (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader(FLEET_VIEW_HEADER, 'fleet');
    return listener(req, res);
  };
}

