/**
 * Wires the daemon together in the order data flows: ingest socket -> store (the fold) -> change feed -> HTTP.
 */
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ServeConfig } from './config.ts';
import { ChangeFeed } from './feed/feed.ts';
import { createApp } from './http/app.ts';
import { IngestServer } from './ingest/socket.ts';
import { IngestStats } from './ingest/stats.ts';
import type { Logger } from './log.ts';
import { SseHub } from './sse/hub.ts';
import { SseStats } from './sse/stats.ts';
import { initialState } from './state/fold.ts';
import { Snapshots } from './state/snapshots.ts';
import { StatusStore } from './state/store.ts';

export interface Daemon {
  readonly url: string;
  readonly socketPath: string;
  readonly store: StatusStore;
  readonly stats: IngestStats;
  /** Stops accepting, closes every connection, removes the socket file. */
  close(): Promise<void>;
}

export async function startDaemon(config: ServeConfig, log: Logger): Promise<Daemon> {
  const clock = () => performance.now();
  const startedAt = clock();
  const feed = new ChangeFeed();
  const store = new StatusStore(
    initialState({ maxConcurrent: config.maxConcurrent, errorTtlMs: config.errorTtl * 1000 }),
    feed,
    clock,
  );
  const stats = new IngestStats();
  const ingest = new IngestServer(config, store, stats, log);

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
    },
    sseStats,
    log,
  );
  const app = createApp({ snapshots, hub, sseStats, maxSseClients: config.maxSseClients, log });
  const http = createAdaptorServer({ fetch: app.fetch }) as Server;
  try {
    await ingest.listenPath(config.socket, config.socketMode);
    await listenHttp(http, config.port, config.host);
  } catch (error) {
    hub.close();
    store.close();
    await ingest.close();
    throw error;
  }
  const url = httpUrl(http.address() as AddressInfo);
  log.info({ http: url, socket: config.socket }, `ready: HTTP on ${url}, ingest socket ${config.socket}`);

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Streams end cleanly first, so clients reconnect to the restarted daemon; then every other connection.
      hub.close();
      const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await Promise.all([ingest.close(), httpClosed]);
      store.close();
    })());

  return { url, socketPath: config.socket, store, stats, close };
}

function listenHttp(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function httpUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
