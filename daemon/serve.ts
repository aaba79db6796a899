/**
 * Wires the daemon together in the order data flows: ingest socket -> store (the fold) -> change feed -> HTTP.
 */
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { checkExposure, loadStartupKey } from './auth/exposure.ts';
import { ConfigError, type ServeConfig } from './config.ts';
import { ChangeFeed } from './feed/feed.ts';
import { createApp } from './http/app.ts';
import { createHttpServer, listenHttp } from './http/server.ts';
import { Readiness } from './http/health.ts';
import { PidWatch } from './ingest/pid-watch.ts';
import { IngestServer } from './ingest/socket.ts';
import { IngestStats } from './ingest/stats.ts';
import type { Logger } from './log.ts';
import { createMetrics } from './metrics.ts';
import { StatePersister } from './persist/persister.ts';
import { loadState, startReconnectGrace } from './persist/restore.ts';
import { SseHub } from './sse/hub.ts';
import { SseStats } from './sse/stats.ts';
import { initialState } from './state/fold.ts';
import { SessionTable } from './state/sessions.ts';
import { Snapshots } from './state/snapshots.ts';
import { StatusStore } from './state/store.ts';
import { pickSockets, takeListenFds, unixSocketPath } from './systemd/listen-fds.ts';
import type { MqttOutput } from './mqtt/output.ts';
import { loadMqttPassword } from './mqtt/settings.ts';

export interface Daemon {
  readonly url: string;
  readonly socketPath: string;
  readonly store: StatusStore;
  readonly stats: IngestStats;
  /** The ingest socket is bound and shutdown has not begun: what /readyz reports. */
  readonly ready: boolean;
  /** Shutdown has begun (readiness failed first, before anything closed). */
  readonly draining: boolean;
  /** Stops accepting, closes every connection, removes the socket file (unless systemd passed it). */
  close(): Promise<void>;
  /** SIGHUP: re-reads the API key file or credential; a key that cannot be read keeps the old one (and says why). */
  reload(): void;
}

export async function startDaemon(config: ServeConfig, log: Logger): Promise<Daemon> {
  // Before anything is bound: a key source that cannot be used, or an open LAN listener, stops the start (exit 2).
  const { apiKey, warnings: keyWarnings } = loadStartupKey(config.apiKeyFile, process.env);
  const clock = () => performance.now();
  const startedAt = clock();
  // Sockets passed by systemd (socket activation) replace --socket and --host/--port; without them, bind as usual.
  const systemd = pickSockets(takeListenFds(process.env, process.pid));
  if (systemd.http === null) checkExposure(config.host, apiKey, config.allowOpen);
  // Sessions kept from the previous run, before anything can change them (docs/state.md).
  const saved = await loadState(config.stateDir, config.stateMaxAge * 1000, clock, log);
  const feed = new ChangeFeed();
  const store = new StatusStore(
    { ...initialState({ maxConcurrent: config.maxConcurrent, errorTtlMs: config.errorTtl * 1000, maxSessions: config.maxSessions }), sessions: SessionTable.from(saved.sessions) },
    feed,
    clock,
  );
  const stats = new IngestStats();
  const ingest = new IngestServer(config, store, stats, log);
  const pidWatch = new PidWatch(store);
  for (const warning of keyWarnings) log.warn(warning);
  const readiness = new Readiness();

  const snapshots = new Snapshots(store, startedAt);
  const sseStats = new SseStats();
  const hub = new SseHub(
    feed,
    snapshots,
    clock,
    {
      heartbeatMs: config.sseHeartbeat * 1000,
      minIntervalMs: config.sseMinInterval,
      replay: config.sseReplay,
      writeTimeoutMs: config.sseWriteTimeout * 1000,
      resume: saved.ids,
      maxClientBytes: config.sseMaxClientBytes,
      maxTotalBytes: config.sseMaxTotalBytes,
    },
    sseStats,
    log,
  );
  // Loaded only when asked for: without --mqtt-url neither this module nor MQTT.js is ever read.
  let mqtt: MqttOutput | null = null;
  if (config.mqttUrl) {
    let password: string | null;
    try {
      password = loadMqttPassword(config.mqttPasswordFile, config.mqttUsername, process.env);
    } catch (error) {
      hub.close();
      throw new ConfigError(error instanceof Error ? error.message : String(error));
    }
    // The compiled build keeps this module and MQTT.js in a file of their own, dist/mqtt.js (scripts/build.ts).
    const { startMqtt } = await import('./mqtt/output.ts');
    mqtt = startMqtt(config, { feed, store, snapshots, wallOffset: hub.wallOffset, log }, password);
    const output = mqtt;
    readiness.addOptional('mqtt', () => output.connected);
  }
  const persister = config.stateDir === null ? null : new StatePersister(feed, config.stateDir, { state: () => store.state, ids: () => hub.position(), clock }, log);
  await persister?.start();
  let cancelGrace = () => {};
  const metrics = createMetrics({ ingest: stats, sse: sseStats, state: () => store.state, mqtt: mqtt?.stats ?? null });
  const app = createApp({
    snapshots,
    summaryOf: () => store.state,
    hub,
    sseStats,
    maxSseClients: config.maxSseClients,
    log,
    readiness,
    metrics,
    apiKey,
    corsOrigins: config.corsOrigin,
    allowedHosts: config.allowedHost,
  });
  const http = createHttpServer(app.fetch);
  try {
    if (systemd.ingest !== null) await ingest.listenFd(systemd.ingest);
    else await ingest.listenPath(config.socket, config.socketMode, config.socketGroup?.gid ?? null);
    readiness.markIngestBound();
    // Agents can reconnect from now on: the grace for their restored sessions starts.
    cancelGrace = startReconnectGrace(store, saved.awaitingAgents, config.reconnectGrace * 1000, log);
    // Restored sessions of a watched pid that died while the daemon was down turn error now, not a second later.
    pidWatch.check();
    await listenHttp(http, systemd.http !== null ? { fd: systemd.http } : { port: config.port, host: config.host });
    // A socket from systemd may be bound anywhere: check where, before the first request can be read.
    const bound = http.address();
    if (systemd.http !== null && bound !== null && typeof bound === 'object') checkExposure(bound.address, apiKey, config.allowOpen);
  } catch (error) {
    if (http.listening) http.close();
    cancelGrace();
    persister?.freeze();
    hub.close();
    pidWatch.close();
    await mqtt?.close();
    store.close();
    await ingest.close();
    saved.release();
    throw error;
  }
  const address = http.address();
  const url = address !== null && typeof address === 'object' ? httpUrl(address) : `http+unix://${encodeURIComponent(address ?? '')}`;
  const socketPath = systemd.ingest === null ? config.socket : (unixSocketPath(systemd.ingest) ?? `fd ${systemd.ingest}`);
  if (systemd.unknown.length > 0) log.warn({ names: systemd.unknown.map((f) => f.name) }, 'ignoring sockets passed by systemd with names other than ingest and http');
  const activated = systemd.ingest !== null || systemd.http !== null ? ' (sockets from systemd)' : '';
  // Once bound: a start that fails (the port or the socket taken) says so in one line and nothing else.
  log.info({ keySource: apiKey.required ? apiKey.source.kind : 'none' }, apiKey.required ? 'the status API needs the API key' : 'no API key: the status API is open to whoever can reach it');
  log.info({ http: url, socket: socketPath }, `ready: HTTP on ${url}, ingest socket ${socketPath}${activated}`);
  log.info(saved.summary.fields, saved.summary.message);

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Readiness fails before anything closes (pitfalls §7): whoever polls /readyz stops counting on this process.
      readiness.startDraining();
      // The state as it is now is what the next start restores: closing agent connections below would turn their
      // sessions to error, which a restart should not show.
      cancelGrace();
      persister?.freeze();
      // Streams end cleanly first, so clients reconnect to the restarted daemon; then every other connection.
      hub.close();
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      // MQTT publishes the last state and `offline` before it disconnects (bounded: it cannot hold up the exit).
      await Promise.all([ingest.close(), httpClosed, mqtt?.close()]);
      pidWatch.close();
      store.close();
      await persister?.close();
      saved.release();
    })());

  return {
    url,
    socketPath,
    store,
    stats,
    close,
    reload: () => {
      apiKey.reload(log);
    },
    get ready() {
      return readiness.ready;
    },
    get draining() {
      return readiness.isDraining;
    },
  };
}

function httpUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
