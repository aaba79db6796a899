/**
 * Prometheus metrics through prom-client, on a registry of the daemon's own (never the global one, so that two
 * daemons in one process, as in tests, never share series).
 *
 * The hot paths keep plain counters (IngestStats, SseStats, HTTP responses here, the store's state); the collectors
 * read them only when /metrics is scraped, so counting costs an increment and nothing more. prom-client itself is
 * loaded and the registry built at the first scrape: start-up does not pay for a module most runs never use (the
 * default process and Node series, such as GC durations, therefore count from the first scrape on). Counters end in
 * `_total`, the daemon's own series start with `pocketpaw_status_`; the default series keep their standard names so
 * that ready-made dashboards work.
 */
import type { Env, Hono, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Registry } from 'prom-client';
import { EVENT_TYPES } from '../protocol/events.ts';
import { SESSION_STATES, type SessionState } from '../protocol/snapshot.ts';
import { IGNORE_REASONS, REJECT_REASONS } from './ingest/decode.ts';
import { CLOSE_REASONS, type IngestStats } from './ingest/stats.ts';
import type { MqttStats } from './mqtt/stats.ts';
import type { SseStats } from './sse/stats.ts';

export const METRICS_PATH = '/metrics';
const PREFIX = 'pocketpaw_status_';

export interface MetricsSources {
  readonly ingest: IngestStats;
  readonly sse: SseStats;
  /** The store's current state (sessions by state are counted from it at scrape time). */
  readonly state: () => { readonly sessions: { countIn(state: SessionState): number } };
  /** The MQTT output's counters; null without --mqtt-url (then no mqtt_* series exist). */
  readonly mqtt?: MqttStats | null;
  /** Series of the fleet aggregator's own (daemon/fleet/stats.ts), registered beside these. */
  readonly more?: (prom: PromClient, registry: Registry, prefix: string) => void;
}

export interface Metrics {
  /** Counts every HTTP response by route pattern and status; register it before every other middleware. */
  readonly httpMiddleware: MiddlewareHandler;
  /** The registry, built (and prom-client loaded) on first use. */
  registry(): Promise<Registry>;
}

export type PromClient = typeof import('prom-client');

/** A counter whose value is copied from a plain number at scrape time. */
function mirroredCounter({ Counter }: PromClient, registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name: PREFIX + name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A labelled counter copied from a record of plain numbers; every known label is present from the start (at 0). */
function mirroredCounterByLabel<L extends string>(
  { Counter }: PromClient,
  registry: Registry,
  name: string,
  help: string,
  label: L,
  read: () => Iterable<readonly [string, number]>,
): void {
  new Counter({
    name: PREFIX + name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of read()) this.inc({ [label]: value } as Record<L, string>, n);
    },
  });
}

function mirroredGauge({ Gauge }: PromClient, registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name: PREFIX + name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

export function createMetrics(sources: MetricsSources): Metrics {
  // Responses by route, then status: plain Maps on the request path, mirrored into a counter at scrape time. Keyed
  // by the route's own path string and the status number, never a string built per request (hashing a fresh string
  // is most of a Map lookup).
  const httpResponses: HttpResponseCounts = new Map();
  const httpMiddleware: MiddlewareHandler = async (c, next) => {
    await next();
    const route = routeLabel(c);
    let byStatus = httpResponses.get(route);
    if (!byStatus) httpResponses.set(route, (byStatus = new Map()));
    const status = c.res.status;
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  };
  let registry: Promise<Registry> | null = null;
  const load = (): Promise<Registry> =>
    import('prom-client').then(
      (prom) => buildRegistry(prom, sources, httpResponses),
      (error: unknown) => {
        // Not kept: a file missing from an install answers 500 now, and works on the next scrape once it is put back.
        registry = null;
        throw error;
      },
    );
  return { httpMiddleware, registry: () => (registry ??= load()) };
}

type HttpResponseCounts = Map<string, Map<number, number>>;

function buildRegistry(prom: PromClient, sources: MetricsSources, httpResponses: HttpResponseCounts): Registry {
  const { ingest, sse, state } = sources;
  const registry = new prom.Registry();
  // The event-loop lag histogram samples on a timer: prom-client's 10 ms wakes the process 100 times a second, about
  // 5 ms of CPU per second from the first scrape on, for ever (a fifth of an idle fleet aggregator's CPU per node
  // update at 200 updates/s). 100 ms costs a tenth of that; a stall of 100 ms or more is still seen in full.
  prom.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

  // --- ingest ---
  mirroredCounterByLabel(prom, registry, 'events_ingested_total', 'Events accepted from producers and applied, by type.', 'type', () =>
    EVENT_TYPES.map((type) => [type, ingest.events(type)] as const),
  );
  mirroredCounterByLabel(prom, registry, 'lines_rejected_total', 'Event lines dropped as malformed, by reason (each answered with an error line).', 'reason', () =>
    REJECT_REASONS.map((reason) => [reason, ingest.rejected[reason]] as const),
  );
  mirroredCounterByLabel(prom, registry, 'events_ignored_total', 'Well-formed events ignored (unknown type, no session key, unknown session), by reason.', 'reason', () =>
    IGNORE_REASONS.map((reason) => [reason, ingest.ignored[reason]] as const),
  );
  mirroredGauge(prom, registry, 'producers_connected', 'Producer connections open on the ingest socket.', () => ingest.producersConnected);
  mirroredCounter(prom, registry, 'producers_refused_total', 'Producer connections refused by --max-producers.', () => ingest.producersRefused);
  mirroredCounterByLabel(prom, registry, 'producers_closed_total', 'Producer connections the daemon closed: no complete line within --line-timeout, idle past --producer-idle-timeout, or evicted to make room at --max-producers.', 'reason', () =>
    CLOSE_REASONS.map((reason) => [reason, ingest.producersClosed[reason]] as const),
  );
  mirroredCounter(prom, registry, 'error_replies_dropped_total', 'Error answers not written because the producer was not reading them.', () => ingest.repliesDropped);
  mirroredCounter(prom, registry, 'sessions_refused_total', 'agent_start events refused because --max-sessions sessions were live (each answered with an error line).', () => ingest.sessionsRefused);

  // --- sessions ---
  new prom.Gauge({
    name: `${PREFIX}sessions`,
    help: 'Sessions listed in the status, by state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      // Counted by the session table as it changes: a scrape costs nothing per session.
      const sessions = state().sessions;
      for (const s of SESSION_STATES) this.set({ state: s }, sessions.countIn(s));
    },
  });

  // --- SSE ---
  mirroredGauge(prom, registry, 'sse_clients_connected', 'SSE streams open now.', () => sse.clientsConnected);
  mirroredCounter(prom, registry, 'sse_clients_total', 'SSE streams accepted since start (its rate shows reconnect storms).', () => sse.clientsTotal);
  mirroredCounter(prom, registry, 'sse_clients_refused_total', 'SSE streams refused by --max-sse-clients.', () => sse.clientsRefused);
  mirroredCounterByLabel(prom, registry, 'sse_events_sent_total', 'SSE events written to clients, by event type.', 'type', () => Object.entries(sse.eventsSent));
  mirroredCounterByLabel(prom, registry, 'sse_clients_dropped_total', 'SSE clients disconnected for being too slow, by reason.', 'reason', () =>
    Object.entries(sse.clientsDropped),
  );
  mirroredGauge(prom, registry, 'sse_queued_bytes', 'Bytes held for all SSE clients (unsent writes and queued transitions) at the last status flush or sweep; bounded by --sse-max-total-bytes.', () => sse.queuedBytes);
  mirroredCounter(prom, registry, 'sse_renderings_total', 'Status snapshots rendered for SSE: one per distinct filter per change, shared by every client with an equivalent filter.', () => sse.renderings);
  mirroredGauge(prom, registry, 'sse_views', 'Distinct status renderings (filters in use) the last SSE status flush made.', () => sse.views);

  // --- MQTT (only with --mqtt-url) ---
  const mqtt = sources.mqtt;
  if (mqtt) {
    mirroredGauge(prom, registry, 'mqtt_connected', 'Whether the MQTT broker connection is up (1) or not (0).', () => (mqtt.connected ? 1 : 0));
    mirroredCounterByLabel(prom, registry, 'mqtt_publishes_total', 'MQTT messages the broker acknowledged, by topic kind.', 'topic', () => Object.entries(mqtt.publishes));
    mirroredCounter(prom, registry, 'mqtt_publish_failures_total', 'MQTT publishes that failed (the connection went before the broker acknowledged them).', () => mqtt.publishFailures);
    mirroredCounter(prom, registry, 'mqtt_reconnects_total', 'MQTT connections re-established after a loss (each republishes every retained topic).', () => mqtt.reconnects);
    mirroredCounterByLabel(prom, registry, 'mqtt_transitions_dropped_total', 'Transitions not published to MQTT, by reason (broker away, or too many unacknowledged).', 'reason', () =>
      Object.entries(mqtt.transitionsDropped),
    );
  }

  sources.more?.(prom, registry, PREFIX);

  // --- HTTP ---
  new prom.Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'HTTP responses by matched route pattern ("unmatched" when no route matched) and status code.',
    labelNames: ['route', 'status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [route, byStatus] of httpResponses) {
        for (const [status, n] of byStatus) this.inc({ route, status: String(status) }, n);
      }
    },
  });
  return registry;
}

/**
 * The route pattern a request was for, never its raw URL (unbounded label values would be a memory leak). The
 * routes from the one that answered on are searched for the first that is not a wildcard middleware pattern: a
 * request refused by the auth middleware still counts under the route it asked for; one that matched no route at
 * all counts as "unmatched".
 */
function routeLabel(c: Parameters<MiddlewareHandler>[0]): string {
  const routes = matchedRoutes(c);
  for (let i = c.req.routeIndex; i < routes.length; i++) {
    const path = routes[i]!.path;
    if (!path.includes('*')) return path;
  }
  return 'unmatched';
}

/** `GET /metrics`: the exposition, in the registry's own content type (the API key applies when one is set). */
export function registerMetricsRoute<E extends Env>(app: Hono<E>, metrics: Metrics): void {
  app.get(METRICS_PATH, async (c) => {
    const registry = await metrics.registry();
    return c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
  });
}
