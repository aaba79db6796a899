/**
 * The aggregator's own counters: plain numbers on the message path, mirrored into /metrics when it is scraped (as
 * daemon/metrics.ts does for ingest and SSE), and drops logged at most once per LOG_EVERY_MS.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import type { PromClient } from '../metrics.ts';
import { DROP_REASONS, type DropReason } from './decode.ts';
import type { FleetState } from './fold.ts';

/** A foreign publisher can send thousands of bad messages a second: one log line per this long says how many. */
export const LOG_EVERY_MS = 10_000;

export class FleetStats {
  /** Messages decoded and handed to the fold. */
  messagesAccepted = 0;
  readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  brokerConnected = false;
  /** Connections to the broker after the first: their rate shows a flapping broker or network. */
  reconnects = 0;
}

/** Logs the first drop at once, then at most one summary per LOG_EVERY_MS: a flood never floods the log. */
export class DropLog {
  private lastLogAt = -Infinity;
  private since: Partial<Record<DropReason, number>> = {};
  private pending = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly log: Logger,
    private readonly clock: () => number,
  ) {}

  drop(reason: DropReason, topic: string): void {
    const now = this.clock();
    if (now - this.lastLogAt >= LOG_EVERY_MS && this.pending === 0) {
      this.lastLogAt = now;
      this.log.warn({ reason, topic: topic.slice(0, 200) }, `dropped an MQTT message on ${topic.slice(0, 200)} (${reason}): not what a pocketpaw-status daemon publishes; check for a foreign publisher or another version under the topic base`);
      return;
    }
    this.since[reason] = (this.since[reason] ?? 0) + 1;
    this.pending++;
    this.timer ??= setTimeout(() => this.flush(), Math.max(0, this.lastLogAt + LOG_EVERY_MS - now));
    this.timer.unref();
  }

  private flush(): void {
    this.timer = null;
    this.lastLogAt = this.clock();
    this.log.warn({ dropped: this.since }, `dropped ${this.pending} more MQTT messages that are not what a pocketpaw-status daemon publishes (counted by reason in /metrics)`);
    this.since = {};
    this.pending = 0;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The fleet's series for /metrics; node counts are read from the state when scraped, not kept up per message. */
export function registerFleetMetrics(stats: FleetStats, state: () => FleetState) {
  return (prom: PromClient, registry: Registry, prefix: string): void => {
    const counter = (name: string, help: string, read: () => number) =>
      new prom.Counter({ name: prefix + name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
    const gauge = (name: string, help: string, read: () => number) =>
      new prom.Gauge({ name: prefix + name, help, registers: [registry], collect() { this.set(read()); } });
    counter('fleet_messages_total', 'MQTT messages from nodes accepted and folded into the fleet.', () => stats.messagesAccepted);
    new prom.Counter({
      name: `${prefix}fleet_messages_dropped_total`,
      help: 'MQTT messages dropped as not what a daemon publishes (foreign publisher, other version, oversized), by reason.',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const reason of DROP_REASONS) this.inc({ reason }, stats.dropped[reason]);
      },
    });
    gauge('fleet_broker_connected', '1 while the aggregator is connected to the broker.', () => (stats.brokerConnected ? 1 : 0));
    counter('fleet_broker_reconnects_total', 'Connections to the broker after the first.', () => stats.reconnects);
    gauge('fleet_nodes', 'Nodes the fleet knows.', () => state().nodes.size);
    gauge('fleet_nodes_online', 'Nodes whose availability is online.', () => {
      let online = 0;
      for (const node of state().nodes.values()) if (node.availability === 'online') online++;
      return online;
    });
  };
}
