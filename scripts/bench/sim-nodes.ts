/**
 * Simulated nodes: publish exactly what a daemon with `serve --mqtt-url` publishes (protocol/fleet.ts), computed by
 * the daemon's own fold and renderer, so the fleet's tests and benchmark need neither real daemons nor agents.
 *
 * A node folds StatusEvents as the daemon does, then publishes under `<base>/<node_id>/`: its retained
 * availability, state, status (timers frozen now) and each changed session (an empty retained payload for one that
 * ended), and each transition (not retained). Many nodes can share one MQTT connection (the benchmark's thousand);
 * a node with a connection of its own has `offline` as its last will, so `kill()` shows what a crash shows.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { DEFAULT_TOPIC_BASE, sessionTopicLevel } from '../../protocol/fleet.ts';
import type { StatusEvent } from '../../protocol/events.ts';
import { foldAll, initialState, type StatusState } from '../../daemon/state/fold.ts';
import { globalState, renderSnapshot } from '../../daemon/state/snapshot.ts';

export interface SimNodeOptions {
  readonly base?: string;
  readonly maxConcurrent?: number;
}

export class SimNode {
  private state: StatusState;
  /** As the daemon's clock: ms since it started (timers are rendered from it, frozen at publish time). */
  private readonly startedAt = performance.now();
  readonly prefix: string;
  private readonly producer = { id: 1, agent: false };

  constructor(
    readonly client: MqttClient,
    readonly nodeId: string,
    options: SimNodeOptions = {},
    /** The node has this connection to itself (its last will is its `offline`). */
    private readonly ownsClient = false,
  ) {
    this.prefix = `${options.base ?? DEFAULT_TOPIC_BASE}/${nodeId}`;
    this.state = initialState({ maxConcurrent: options.maxConcurrent ?? 5, errorTtlMs: 30_000 });
  }

  /** A node with a connection of its own, `offline` as its will; publishes `online` and its (empty) status. */
  static async connect(url: string, nodeId: string, options: SimNodeOptions = {}): Promise<SimNode> {
    const prefix = `${options.base ?? DEFAULT_TOPIC_BASE}/${nodeId}`;
    const client = await connectAsync(url, {
      clientId: `sim-${nodeId}-${Math.random().toString(16).slice(2, 8)}`,
      keepalive: 5,
      reconnectPeriod: 0,
      will: { topic: `${prefix}/availability`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    const node = new SimNode(client, nodeId, options, true);
    await node.online();
    return node;
  }

  get sessions(): StatusState['sessions'] {
    return this.state.sessions;
  }

  /** Announces the node and its current state, as a daemon does on every connection. */
  async online(): Promise<void> {
    await this.publish('availability', 'online', true);
    await this.publishState([...this.state.sessions.keys()], []);
  }

  /** What a daemon does on a clean shutdown. */
  async offline(): Promise<void> {
    await this.publish('availability', 'offline', true);
  }

  /** Folds events as the daemon would, then publishes what changed. */
  async apply(events: readonly StatusEvent[]): Promise<void> {
    const prev = this.state;
    const now = performance.now() - this.startedAt;
    const result = foldAll(prev, events.map((event) => ({ kind: 'event', event, producer: this.producer })), now);
    if (result.state === prev) return;
    this.state = result.state;
    const changed = new Set<string>();
    for (const [key, s] of result.state.sessions) if (prev.sessions.get(key) !== s) changed.add(key);
    for (const key of prev.sessions.keys()) if (!result.state.sessions.has(key)) changed.add(key);
    const at = Date.now();
    await this.publishState([...changed], result.transitions.map((t) => JSON.stringify({ session_key: t.session_key, from: t.from, to: t.to, tool_name: t.tool_name, error_message: t.error_message, at: new Date(at).toISOString() })));
  }

  private async publishState(changedKeys: readonly string[], transitions: readonly string[]): Promise<void> {
    const now = performance.now() - this.startedAt;
    const snapshot = renderSnapshot(this.state, now, 0).json;
    const work: Promise<unknown>[] = [];
    for (const key of changedKeys) {
      const live = this.state.sessions.has(key);
      work.push(this.publish(`sessions/${sessionTopicLevel(key)}`, live ? sessionJson(this.state, key, now) : '', true));
    }
    work.push(this.publish('state', globalState(this.state), true));
    work.push(this.publish('status', snapshot, true));
    for (const t of transitions) work.push(this.publish('transitions', t, false));
    await Promise.all(work);
  }

  private publish(topic: string, payload: string, retain: boolean): Promise<unknown> {
    return this.client.publishAsync(`${this.prefix}/${topic}`, payload, { qos: 1, retain });
  }

  /** A crash: the connection drops without a word, and the broker publishes the last will. */
  kill(): void {
    if (!this.ownsClient) throw new Error('kill() needs a node with its own connection (SimNode.connect)');
    this.client.stream.destroy();
    this.client.end(true);
  }

  /** Clean shutdown: `offline`, then disconnect. */
  async stop(): Promise<void> {
    await this.offline();
    if (this.ownsClient) await this.client.endAsync();
  }
}

/** One session's object, cut from the rendered snapshot so it is byte for byte what `sessions[]` holds. */
function sessionJson(state: StatusState, key: string, now: number): string {
  const json = renderSnapshot(state, now, 0, { sessions: new Set([key]), channels: null }).json;
  const start = json.indexOf('"sessions":[') + '"sessions":['.length;
  return json.slice(start, -2);
}

/** Removes every retained topic a set of nodes left on the broker (tests share no broker, but a bench run might). */
export async function clearRetained(client: MqttClient, topics: readonly string[]): Promise<void> {
  await Promise.all(topics.map((topic) => client.publishAsync(topic, '', { qos: 1, retain: true })));
}
