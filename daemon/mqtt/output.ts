/**
 * The MQTT output: publishes the status to a broker, retained, for lights, stream decks and Home Assistant.
 *
 * An output like the SSE hub: it listens to the change feed and reads the current state, never anything upstream.
 * Loaded by serve.ts through a dynamic import only when --mqtt-url is set (with it, MQTT.js).
 *
 * Publishing: transitions go out as they happen; the retained topics (state, summary, status, one per session) at
 * once on the leading edge of a burst, then at most once per --mqtt-min-interval, always ending with the latest
 * state. Each retained topic is published only when its content changed (a session topic only for a session that
 * changed; an ended session's topic is cleared with an empty retained message).
 *
 * The broker is optional: while it is away nothing is published and nothing queues (MQTT.js's own offline queue
 * stays empty because nothing is handed to it); the client reconnects with a backoff capped at 30 s and, once
 * connected, republishes availability, discovery, state, summary, status and every live session, and clears the
 * topics of sessions that ended meanwhile, including those a previous run left behind (found by a brief subscription
 * to P/sessions/+, whose retained messages the broker sends at once). Unacknowledged publishes are bounded too: past
 * MAX_IN_FLIGHT, transitions are dropped (counted) and the retained topics wait for the broker to catch up.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { ServeConfig } from '../config.ts';
import type { Change, ChangeFeed } from '../feed/feed.ts';
import type { Logger } from '../log.ts';
import { transitionJson } from '../sse/frames.ts';
import type { Session } from '../state/fold.ts';
import { globalState, renderSession } from '../state/snapshot.ts';
import type { Snapshots } from '../state/snapshots.ts';
import type { StatusStore } from '../state/store.ts';
import type { Transition } from '../state/transitions.ts';
import { MqttStats, type MqttTopicKind } from './stats.ts';
import { defaultPrefix, discoveryMessages, OFFLINE, ONLINE, sessionKeyOf, sessionTopic, summaryOf, topics, type Topics } from './topics.ts';

/** Unacknowledged publishes at most; past it transitions are dropped and retained topics wait (see file comment). */
export const MAX_IN_FLIGHT = 1000;
const RECONNECT_FIRST_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;
/** How long a clean shutdown waits for the broker to acknowledge `offline`, then to take the DISCONNECT. */
const CLOSE_ACK_MS = 800;
const CLOSE_END_MS = 300;
/** Seconds of silence after which the broker considers the daemon gone and publishes its will (`offline`). */
const KEEPALIVE_S = 30;

export interface MqttDeps {
  readonly feed: ChangeFeed;
  readonly store: StatusStore;
  readonly snapshots: Snapshots;
  /** Date.now() minus the monotonic clock (the SSE hub's): transitions carry the same `at` on both. */
  readonly wallOffset: number;
  readonly log: Logger;
}

export interface MqttOutput {
  readonly stats: MqttStats;
  readonly connected: boolean;
  /** Publishes the last state and `offline`, then disconnects (bounded: under a second and a half). */
  close(): Promise<void>;
}

/**
 * Starts the output; connecting happens in the background. `password` comes from settings.ts's loadPassword (read by
 * serve.ts, so that an unreadable source is a configuration error found before anything MQTT is loaded).
 */
export function startMqtt(config: ServeConfig, deps: MqttDeps, password: string | null): MqttOutput {
  if (config.mqttUrl === null) throw new Error('startMqtt needs --mqtt-url');
  return new Publisher(config, deps, password);
}

interface SentSession {
  /** The session object last published (identity: unchanged sessions are skipped without rendering). */
  session: Session | null;
  /** Its JSON without the timing field, plus when it entered its state; null when the broker's copy is unknown. */
  key: string | null;
}

class Publisher implements MqttOutput {
  readonly stats = new MqttStats();
  private readonly client: MqttClient;
  private readonly topics: Topics;
  private readonly url: string;
  private readonly unsubscribe: () => void;

  // --- what the broker holds, as far as this connection knows (reset on every connect) ---
  private sentState: string | null = null;
  private sentSummary: string | null = null;
  private sentStatus: string | null = null;
  private readonly sentSessions = new Map<string, SentSession>();

  // --- pacing ---
  private pending: Transition[] = [];
  private changed = false;
  private immediate: NodeJS.Immediate | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private lastFlushAt = -Infinity;
  /** A flush was skipped because too much is unacknowledged; it runs when the broker catches up. */
  private backlogged = false;

  // --- connection ---
  private inFlight = 0;
  /** Bumped when a connection ends: acknowledgements of an earlier connection no longer count. */
  private generation = 0;
  private everConnected = false;
  /** An outage is being reported: one warning per outage, one info line when it ends. */
  private failing = false;
  private lastError: Error | null = null;
  private attempt = 0;
  private connectedAt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly config: ServeConfig,
    private readonly deps: MqttDeps,
    password: string | null,
  ) {
    const url = config.mqttUrl!;
    this.url = `${url.protocol}//${url.host}`;
    this.topics = topics(config.mqttTopicPrefix ?? defaultPrefix(config.mqttNodeId));
    const options: IClientOptions = {
      // Unique per process: two daemons given the same node id must not keep taking each other's connection.
      clientId: `pocketpaw-status-${config.mqttNodeId}-${randomBytes(4).toString('hex')}`,
      protocolVersion: 4,
      clean: true,
      keepalive: KEEPALIVE_S,
      connectTimeout: 10_000,
      // Reconnection is ours (backoff capped at 30 s); MQTT.js's is a fixed period.
      reconnectPeriod: 0,
      // Nothing is handed to the client while disconnected; this makes sure nothing QoS 0 would queue either.
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: this.topics.availability, payload: Buffer.from(OFFLINE), qos: 1, retain: true },
    };
    if (config.mqttUsername !== null) options.username = config.mqttUsername;
    if (password !== null) options.password = password;
    if (config.mqttCaFile !== null) options.ca = readFileSync(config.mqttCaFile);
    this.client = connect(this.url, options);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (error) => (this.lastError = error));
    this.client.on('message', (topic, payload) => this.onSweepMessage(topic, payload));
    this.unsubscribe = deps.feed.subscribe((change) => this.onChange(change));
    deps.log.info(
      { mqtt: this.url, prefix: this.topics.prefix, discovery: config.haDiscovery ? config.haDiscoveryPrefix : null },
      `MQTT: publishing to ${this.url} under ${this.topics.prefix}/${config.haDiscovery ? ` with Home Assistant discovery under ${config.haDiscoveryPrefix}/` : ''}`,
    );
  }

  get connected(): boolean {
    return this.stats.connected;
  }

  // --- the change feed: only enqueue here (ingest waits for listeners) ---

  private onChange(change: Change): void {
    const n = change.transitions.length;
    if (n > 0) {
      if (!this.stats.connected) this.stats.transitionsDropped.disconnected += n;
      else {
        for (const t of change.transitions) {
          if (this.pending.length + this.inFlight >= MAX_IN_FLIGHT) this.stats.transitionsDropped.backlog++;
          else this.pending.push(t);
        }
      }
    }
    this.changed = true;
    this.immediate ??= setImmediate(() => this.tick());
  }

  private tick(): void {
    this.immediate = null;
    this.sendTransitions();
    if (!this.changed) return;
    this.changed = false;
    const wait = this.lastFlushAt + this.config.mqttMinInterval - this.deps.store.clock();
    if (wait <= 0) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), wait);
  }

  private sendTransitions(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    if (!this.stats.connected) {
      this.stats.transitionsDropped.disconnected += pending.length;
      return;
    }
    for (const t of pending) {
      this.send('transition', this.topics.transitions, transitionJson(t, new Date(this.deps.wallOffset + t.at).toISOString()), false);
    }
  }

  /** Publishes every retained topic whose content differs from what the broker was last given. */
  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const now = this.deps.store.clock();
    this.lastFlushAt = now;
    const state = this.deps.store.state;
    if (!this.stats.connected) {
      // Republished on connect. Ended sessions wait here to be cleared, but not without bound: past that the sweep
      // on connect finds their retained topics instead.
      if (this.sentSessions.size > state.sessions.size + MAX_IN_FLIGHT) {
        for (const key of this.sentSessions.keys()) if (!state.sessions.has(key)) this.sentSessions.delete(key);
      }
      return;
    }
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.backlogged = true;
      return;
    }
    const t = this.topics;
    const global = globalState(state);
    if (global !== this.sentState) {
      this.send('state', t.state, global, true);
      this.sentState = global;
    }
    const summary = JSON.stringify(summaryOf(state));
    if (summary !== this.sentSummary) {
      this.send('summary', t.summary, summary, true);
      this.sentSummary = summary;
    }
    let sessionsChanged = false;
    for (const s of state.sessions.values()) {
      const sent = this.sentSessions.get(s.key);
      if (sent?.session === s) continue;
      const rendered = renderSession(s, now);
      const key = `${rendered.fingerprint}\u0000${s.stateSince}`;
      if (sent && sent.key === key) {
        sent.session = s;
        continue;
      }
      this.send('session', sessionTopic(t, s.key), rendered.json, true);
      this.sentSessions.set(s.key, { session: s, key });
      sessionsChanged = true;
    }
    for (const key of this.sentSessions.keys()) {
      if (state.sessions.has(key)) continue;
      this.send('session', sessionTopic(t, key), '', true);
      this.sentSessions.delete(key);
      sessionsChanged = true;
    }
    const status = this.deps.snapshots.render();
    if (sessionsChanged || status.fingerprint !== this.sentStatus) {
      this.send('status', t.status, status.json, true);
      this.sentStatus = status.fingerprint;
    }
  }

  private send(kind: MqttTopicKind, topic: string, payload: string, retain: boolean): void {
    const generation = this.generation;
    this.inFlight++;
    this.client.publish(topic, payload, { qos: 1, retain }, (error) => {
      if (generation !== this.generation) return; // counted as failed when its connection ended
      this.inFlight--;
      if (error) this.stats.publishFailures++;
      else this.stats.publishes[kind]++;
      if (this.backlogged && this.inFlight < MAX_IN_FLIGHT / 2) {
        this.backlogged = false;
        this.changed = true;
        this.immediate ??= setImmediate(() => this.tick());
      }
    });
  }

  // --- the connection ---

  private onConnect(): void {
    if (this.closing) return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.connectedAt = this.deps.store.clock();
    if (this.everConnected) this.stats.reconnects++;
    this.everConnected = true;
    this.stats.connected = true;
    this.deps.log.info({ mqtt: this.url }, this.failing ? `MQTT: connected to ${this.url} again; republishing every retained topic` : `MQTT: connected to ${this.url}`);
    this.failing = false;
    this.lastError = null;
    const t = this.topics;
    this.send('availability', t.availability, ONLINE, true);
    if (this.config.haDiscovery) {
      for (const m of discoveryMessages(this.config.haDiscoveryPrefix, this.config.mqttNodeId, t)) this.send('discovery', m.topic, m.payload, true);
    }
    // The broker may have lost everything (restarted without persistence) or kept stale copies: send it all again.
    this.sentState = null;
    this.sentSummary = null;
    this.sentStatus = null;
    for (const sent of this.sentSessions.values()) {
      sent.session = null;
      sent.key = null;
    }
    // Session topics left by a previous run (killed, or its ended sessions never cleared): the broker sends them
    // right after the subscription is acknowledged; onSweepMessage clears those not live.
    this.client.subscribe(t.sessionsFilter, { qos: 1 }, (error) => {
      if (!error && this.stats.connected) this.client.unsubscribe(t.sessionsFilter);
    });
    this.pending = [];
    this.backlogged = false;
    this.flush();
    // A republish is not a change: the next change still goes out on the leading edge.
    this.lastFlushAt = -Infinity;
  }

  private onSweepMessage(topic: string, payload: Buffer): void {
    if (payload.length === 0 || !this.stats.connected || this.closing) return;
    const key = sessionKeyOf(this.topics, topic);
    if (key === null || this.deps.store.state.sessions.has(key) || this.sentSessions.has(key)) return;
    this.send('session', topic, '', true);
  }

  private onClose(): void {
    const wasConnected = this.stats.connected;
    this.stats.connected = false;
    this.generation++;
    this.stats.publishFailures += this.inFlight;
    this.inFlight = 0;
    this.stats.transitionsDropped.disconnected += this.pending.length;
    this.pending = [];
    if (this.closing) return;
    // The backoff starts over only after a connection that held: one the broker keeps dropping (a duplicate client,
    // an ACL) is retried, and logged, at most every 30 s like a broker that is down.
    if (wasConnected && this.deps.store.clock() - this.connectedAt >= RECONNECT_MAX_MS) this.attempt = 0;
    if (!this.failing) {
      this.failing = true;
      const why = describeError(this.lastError);
      this.deps.log.warn(
        { mqtt: this.url, reason: why },
        wasConnected
          ? `MQTT: lost the connection to ${this.url} (${why}); HTTP, SSE and ingest carry on; reconnecting with backoff up to ${RECONNECT_MAX_MS / 1000} s, then republishing`
          : `MQTT: cannot connect to ${this.url} (${why}); HTTP, SSE and ingest carry on; retrying with backoff up to ${RECONNECT_MAX_MS / 1000} s${advice(this.lastError)}`,
      );
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closing) return;
    const delay = reconnectDelay(this.attempt++, Math.random());
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closing) return;
      // end(true) fails whatever the old connection left unacknowledged (it would otherwise wait forever), then a
      // fresh connection with empty stores: the retained topics are republished on connect anyway.
      this.client.end(true, () => {
        if (!this.closing) this.client.reconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutDown());
  }

  private async shutDown(): Promise<void> {
    this.unsubscribe();
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.stats.connected) {
      // The last state first (a burst's end may still be waiting for its interval), then `offline`.
      this.sendTransitions();
      this.flush();
      await withDeadline(CLOSE_ACK_MS, (done) => this.client.publish(this.topics.availability, OFFLINE, { qos: 1, retain: true }, () => done()));
      await withDeadline(CLOSE_END_MS, (done) => this.client.end(false, {}, () => done()));
    } else if (this.flushTimer) {
      clearTimeout(this.flushTimer);
    }
    this.flushTimer = null;
    await withDeadline(CLOSE_END_MS, (done) => this.client.end(true, {}, () => done()));
    this.stats.connected = false;
  }
}

/**
 * The wait before reconnection attempt `attempt` (0 first): 1 s doubling to 30 s, with a jitter of +-20% (`random` in
 * [0, 1)) so that daemons dropped by the same broker restart do not all come back at the same instant; never over 30 s.
 */
export function reconnectDelay(attempt: number, random: number): number {
  const base = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** Math.min(attempt, 16));
  return Math.min(RECONNECT_MAX_MS, base * (0.8 + 0.4 * random));
}

function withDeadline(ms: number, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    start(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function describeError(error: Error | null): string {
  if (error === null) return 'the connection closed';
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}

/** What to do about a refusal the user can fix (MQTT 3.1.1 CONNACK codes 4 and 5; TLS verification). */
function advice(error: Error | null): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 4 || code === 5 || code === 134 || code === 135) {
    return '; check --mqtt-username and --mqtt-password-file (or the systemd credential mqtt-password)';
  }
  if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) return '; check --mqtt-ca-file';
  return '';
}
