/**
 * An MQTT.js subscriber for tests: records every message, and knows when the broker has sent it all the retained
 * messages of its subscriptions (it publishes a marker to itself: the broker delivers it after them).
 */
import { randomBytes } from 'node:crypto';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { waitFor } from './daemon.ts';

export interface Received {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
}

export class Subscriber {
  readonly messages: Received[] = [];
  private markers = 0;

  private constructor(
    readonly client: MqttClient,
    private readonly markerTopic: string,
  ) {
    client.on('message', (topic, payload, packet) => {
      if (topic === this.markerTopic) this.markers++;
      else this.messages.push({ topic, payload: payload.toString('utf8'), retain: packet.retain });
    });
  }

  /** Connects, subscribes to `filters` (QoS 1) and waits until every retained message they match has arrived. */
  static async open(url: string, filters: string[], options: IClientOptions = {}): Promise<Subscriber> {
    const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options });
    client.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const marker = `test-marker/${randomBytes(6).toString('hex')}`;
    const sub = new Subscriber(client, marker);
    await client.subscribeAsync([...filters, marker], { qos: 1 });
    await sub.settle();
    return sub;
  }

  /** Waits until the broker has delivered everything it had for this client before now. */
  async settle(): Promise<void> {
    const seen = this.markers;
    await this.client.publishAsync(this.markerTopic, 'x', { qos: 1 });
    await waitFor(() => this.markers > seen, { what: 'the marker message' });
  }

  /** The latest payload per topic (an empty payload removes the topic, as it clears a retained message). */
  latest(): Map<string, string> {
    const out = new Map<string, string>();
    for (const m of this.messages) {
      if (m.payload === '') out.delete(m.topic);
      else out.set(m.topic, m.payload);
    }
    return out;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  last(topic: string): string | undefined {
    const all = this.on(topic);
    return all[all.length - 1]?.payload;
  }

  async waitFor(topic: string, check: (payload: string) => boolean, what = `${topic}`, timeoutMs = 10_000): Promise<string> {
    try {
      // Boxed: an empty payload (a cleared topic) is what some callers wait for, and waitFor wants a truthy value.
      const found = await waitFor(() => {
        const payload = this.last(topic);
        return payload !== undefined && check(payload) ? { payload } : null;
      }, { timeoutMs });
      return found!.payload;
    } catch {
      throw new Error(`timed out waiting for ${what} (last on ${topic}: ${JSON.stringify(this.last(topic))})`);
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** The retained messages under `filters` right now, as a fresh subscriber sees them. */
export async function retained(url: string, filters: string[], options: IClientOptions = {}): Promise<Map<string, string>> {
  const sub = await Subscriber.open(url, filters, options);
  try {
    return new Map(sub.messages.filter((m) => m.retain && m.payload !== '').map((m) => [m.topic, m.payload]));
  } finally {
    await sub.close();
  }
}
