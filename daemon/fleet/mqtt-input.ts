/**
 * The fleet's input: one MQTT subscription to every node's topics under the base, each message decoded (decode.ts)
 * and folded as it arrives. Folding one message costs a few µs (node-map.ts), and the SSE hubs already coalesce a
 * turn's changes into one tick: batching here as well only added an Immediate (and its call from C++) per message at
 * the usual rates, where messages arrive one or two per turn.
 *
 * The broker holds the truth: on every (re)connection it sends the retained availability, status and sessions of
 * every node again, so nothing here is persisted and a restarted aggregator needs no help from the nodes. MQTT.js
 * reconnects and resubscribes by itself; nothing is published, so nothing queues while the broker is away.
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import type { Logger } from '../log.ts';
import { SUBSCRIPTION_QOS, decodeMessage, fleetSubscriptions } from './decode.ts';
import type { DropLog, FleetStats } from './stats.ts';
import type { FleetStore } from './store.ts';

export interface FleetInputOptions {
  readonly url: string;
  readonly base: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM of the authority that signed the broker's certificate (mqtts://). */
  readonly ca?: Buffer;
}

export class FleetMqttInput {
  private client: MqttClient | null = null;
  private connections = 0;
  private closed = false;
  private warnedDown = false;

  constructor(
    private readonly options: FleetInputOptions,
    private readonly store: FleetStore,
    private readonly stats: FleetStats,
    private readonly drops: DropLog,
    private readonly log: Logger,
    /** Called once the first subscription is granted (readiness). */
    private readonly onSubscribed: () => void,
  ) {}

  /** Connects (without waiting for the broker: HTTP serves the fleet as known, empty at first, while it is away). */
  async start(): Promise<void> {
    const { connect } = await import('mqtt');
    const client = connect(this.options.url, {
      clientId: `pocketpaw-status-fleet-${randomBytes(6).toString('hex')}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
      username: this.options.username,
      password: this.options.password,
      ca: this.options.ca,
      // Nothing is published: a message queue while disconnected would only hold acknowledgements.
      queueQoSZero: false,
    });
    this.client = client;
    client.on('connect', () => {
      this.stats.brokerConnected = true;
      if (this.connections++ > 0) this.stats.reconnects++;
      if (this.warnedDown || this.connections === 1) this.log.info({ broker: this.options.url }, `connected to the MQTT broker ${this.options.url}`);
      this.warnedDown = false;
      // A clean session has no subscriptions: subscribe on every connection (retained messages come with each).
      client.subscribe(fleetSubscriptions(this.options.base), { qos: SUBSCRIPTION_QOS }, (error) => {
        if (error) this.log.error({ err: error }, 'the broker refused the fleet subscription; check the ACL for the topic base');
        else this.onSubscribed();
      });
    });
    client.on('close', () => {
      this.stats.brokerConnected = false;
      // One line per outage, however many retries it takes.
      if (this.closed || this.warnedDown) return;
      this.warnedDown = true;
      this.log.warn({ broker: this.options.url }, `not connected to the MQTT broker ${this.options.url}; retrying every second (the fleet shows what it last knew)`);
    });
    client.on('error', (error) => {
      // Refused credentials, unreachable host: 'close' follows and MQTT.js retries; log the cause once per outage.
      if (!this.warnedDown) this.log.warn({ err: error }, `MQTT broker error: ${error.message}`);
    });
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  private onMessage(topic: string, payload: Buffer): void {
    const decoded = decodeMessage(this.options.base, topic, payload);
    if (!decoded.ok) {
      this.stats.dropped[decoded.reason]++;
      this.drops.drop(decoded.reason, topic);
      return;
    }
    this.stats.messagesAccepted++;
    const result = this.store.apply(decoded.input);
    if (result.refused > 0) {
      this.stats.dropped.too_many_nodes += result.refused;
      this.drops.drop('too_many_nodes', `${this.options.base}/+`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }
}
