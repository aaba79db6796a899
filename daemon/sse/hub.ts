/**
 * The SSE hub: fans state changes out to every stream without letting one client hurt the others.
 *
 * Modelled on Mercure's hub. The change feed only enqueues; one `setImmediate` tick per burst writes transitions at
 * once and status snapshots at most every `minIntervalMs` (leading edge, then the latest state when the burst ends).
 * Each frame is encoded once and the same Buffer is written to every client that gets it. A client whose socket
 * will not take more is paused: its status collapses to "send the newest when drained", its transitions queue up to
 * `replay`, and past that, or after `writeTimeoutMs` without progress, it is dropped (it reconnects and resumes with
 * Last-Event-ID). Nothing here ever awaits a client.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { splitSessionKey } from '../../protocol/snapshot.ts';
import type { Change } from '../feed/feed.ts';
import type { Logger } from '../log.ts';
import { matches, type RenderedSnapshot, type SessionFilter } from '../state/snapshot.ts';
import type { Transition } from '../state/transitions.ts';
import { KEEPALIVE_FRAME, RETRY_FRAME, resetFrame, statusFrame, transitionFrame } from './frames.ts';
import { TransitionHistory, type HistoryEntry } from './history.ts';
import { EventIds, parseId } from './ids.ts';
import type { SseDropReason, SseStats } from './stats.ts';

export interface HubOptions {
  readonly heartbeatMs: number;
  readonly minIntervalMs: number;
  readonly replay: number;
  readonly writeTimeoutMs: number;
}

export interface StreamRequest {
  readonly res: ServerResponse;
  readonly filter: SessionFilter;
  /** Identifies equal filters, so that clients with the same filter share one rendering. */
  readonly filterKey: string;
  readonly transitions: boolean;
  readonly lastEventId: string | null;
  /** Headers set by middleware (CORS, security) to send along. */
  readonly headers: OutgoingHttpHeaders;
}

/** What the hub streams: the daemon's own snapshots (state/snapshots.ts), or the fleet's (fleet/snapshots.ts). */
export interface SnapshotSource {
  render(filter: SessionFilter): RenderedSnapshot;
  /** Whether a transition passes a client's filter; without it, by its session key and the channel in that key. */
  transitionMatches?(filter: SessionFilter, t: Transition): boolean;
}

/** Where changes come from: the daemon's change feed, or the fleet's; the hub reads only their transitions. */
export interface TransitionFeed {
  subscribe(listener: (change: Pick<Change, 'transitions'>) => void): () => void;
}

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
};

interface Subscriber {
  readonly res: ServerResponse;
  readonly filter: SessionFilter;
  readonly filterKey: string;
  readonly transitions: boolean;
  /** The fingerprint of the last status this client got (compared by identity first: see `views`). */
  lastFingerprint: string | null;
  lastStatusAt: number;
  statusDirty: boolean;
  /** Waiting for 'drain': nothing more is written until the socket takes what it has. */
  paused: boolean;
  backlog: Buffer[];
  lastWriteAt: number;
  stalledSince: number;
  stalledLength: number;
}

interface View {
  readonly fingerprint: string;
  readonly json: string;
  frame: Buffer | null;
}

const RETRY = Buffer.from(RETRY_FRAME);
const KEEPALIVE = Buffer.from(KEEPALIVE_FRAME);

export class SseHub {
  private readonly clients = new Set<Subscriber>();
  private transitionClients = 0;
  readonly ids = new EventIds();
  private readonly history: TransitionHistory;
  /** The seq naming the current state: the id of the status event that shows it. */
  private versionSeq: number;
  private pending: HistoryEntry[] = [];
  private statusChanged = false;
  private immediate: NodeJS.Immediate | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private statusTimerAt = Infinity;
  private lastStatusFlush = -Infinity;
  /** Per filter, the last rendering: an unchanged fingerprint keeps its string object, so comparisons are by identity. */
  private views = new Map<string, View>();
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  /** Date.now() minus the monotonic clock: turns a transition's `at` into wall time (shared with the MQTT output). */
  readonly wallOffset: number;
  private closed = false;

  constructor(
    feed: TransitionFeed,
    private readonly snapshots: SnapshotSource,
    private readonly clock: () => number,
    private readonly options: HubOptions,
    private readonly stats: SseStats,
    private readonly log: Logger,
  ) {
    this.history = new TransitionHistory(options.replay);
    this.versionSeq = this.ids.next();
    this.wallOffset = Date.now() - clock();
    this.unsubscribe = feed.subscribe((change) => this.onChange(change));
    // One sweep for every client (heartbeats, stalled writes) instead of a timer per client.
    const sweepMs = Math.min(1000, Math.max(20, Math.min(options.heartbeatMs, options.writeTimeoutMs) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  accept(req: StreamRequest): void {
    // Transitions already queued belong before this client's replay point: send them to the others first.
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.tick();
    }
    const now = this.clock();
    const c: Subscriber = {
      res: req.res,
      filter: req.filter,
      filterKey: req.filterKey,
      transitions: req.transitions,
      lastFingerprint: null,
      lastStatusAt: -Infinity,
      statusDirty: false,
      paused: false,
      backlog: [],
      lastWriteAt: now,
      stalledSince: 0,
      stalledLength: 0,
    };
    this.clients.add(c);
    if (c.transitions) this.transitionClients++;
    this.stats.clientsTotal++;
    // Counted up and down rather than set from this hub's size: the fleet runs two hubs on one SseStats.
    this.stats.clientsConnected++;
    req.res.on('close', () => this.remove(c));
    req.res.on('error', () => this.remove(c));

    req.res.writeHead(200, { ...req.headers, ...SSE_HEADERS });
    this.write(c, RETRY, now);
    if (req.lastEventId !== null && c.transitions) this.replay(c, req.lastEventId, now);
    if (req.lastEventId === this.ids.format(this.versionSeq)) {
      // The client already shows the current state: remember it as seen instead of sending it again.
      c.lastFingerprint = this.view(c.filterKey, c.filter).fingerprint;
      c.lastStatusAt = now;
    } else {
      this.sendStatus(c, now);
    }
  }

  /** Ends every stream cleanly, so that clients reconnect (to the restarted daemon). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.sweepTimer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    if (this.immediate) clearImmediate(this.immediate);
    for (const c of this.clients) c.res.end();
    this.stats.clientsConnected -= this.clients.size;
    this.clients.clear();
    this.transitionClients = 0;
  }

  private onChange(change: Pick<Change, 'transitions'>): void {
    for (const transition of change.transitions) {
      const entry: HistoryEntry = { seq: this.ids.next(), transition, frame: null };
      this.history.push(entry);
      if (this.transitionClients > 0) this.pending.push(entry);
    }
    this.versionSeq = this.ids.next();
    this.statusChanged = true;
    this.immediate ??= setImmediate(() => this.tick());
  }

  private tick(): void {
    this.immediate = null;
    if (this.pending.length > 0) {
      const entries = this.pending;
      this.pending = [];
      const now = this.clock();
      for (const c of this.clients) {
        if (!c.transitions) continue;
        for (const entry of entries) this.sendTransition(c, entry, now);
      }
    }
    if (this.statusChanged) {
      this.statusChanged = false;
      const wait = this.lastStatusFlush + this.options.minIntervalMs - this.clock();
      if (wait <= 0) this.flushStatus();
      else this.scheduleStatus(wait);
    }
  }

  private scheduleStatus(wait: number): void {
    const at = this.clock() + wait;
    if (this.statusTimer && this.statusTimerAt <= at) return;
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.statusTimerAt = at;
    this.statusTimer = setTimeout(() => this.flushStatus(), Math.max(0, wait));
  }

  private flushStatus(): void {
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.statusTimer = null;
    this.statusTimerAt = Infinity;
    const now = this.clock();
    this.lastStatusFlush = now;
    const fresh = new Map<string, View>();
    let retryAt = Infinity;
    for (const c of this.clients) {
      if (c.paused) {
        c.statusDirty = true;
        continue;
      }
      const eligibleAt = c.lastStatusAt + this.options.minIntervalMs;
      if (eligibleAt > now) {
        // Only a client that connected (or drained) moments ago can be here: it gets the latest state on time.
        c.statusDirty = true;
        retryAt = Math.min(retryAt, eligibleAt);
        continue;
      }
      this.sendStatus(c, now, fresh);
    }
    this.views = fresh;
    if (retryAt !== Infinity) this.scheduleStatus(retryAt - now);
  }

  private view(filterKey: string, filter: SessionFilter, fresh?: Map<string, View>): View {
    const current = fresh?.get(filterKey);
    if (current) return current;
    const rendered = this.snapshots.render(filter);
    const previous = this.views.get(filterKey);
    const view: View = {
      fingerprint: previous && previous.fingerprint === rendered.fingerprint ? previous.fingerprint : rendered.fingerprint,
      json: rendered.json,
      frame: null,
    };
    (fresh ?? this.views).set(filterKey, view);
    return view;
  }

  private sendStatus(c: Subscriber, now: number, fresh?: Map<string, View>): void {
    c.statusDirty = false;
    const view = this.view(c.filterKey, c.filter, fresh);
    if (view.fingerprint === c.lastFingerprint) return;
    view.frame ??= Buffer.from(statusFrame(this.ids.format(this.versionSeq), view.json));
    c.lastFingerprint = view.fingerprint;
    c.lastStatusAt = now;
    this.stats.eventsSent.status++;
    this.write(c, view.frame, now);
  }

  private sendTransition(c: Subscriber, entry: HistoryEntry, now: number): void {
    const t = entry.transition;
    const custom = this.snapshots.transitionMatches;
    if (custom) {
      if (!custom.call(this.snapshots, c.filter, t)) return;
    } else if (c.filter.sessions !== null || c.filter.channels !== null) {
      if (!matches(c.filter, { key: t.session_key, channel: splitSessionKey(t.session_key).channel })) return;
    }
    entry.frame ??= Buffer.from(
      transitionFrame(this.ids.format(entry.seq), t, t.at_iso ?? new Date(this.wallOffset + t.at).toISOString()),
    );
    if (c.paused) {
      c.backlog.push(entry.frame);
      if (c.backlog.length > this.options.replay) this.drop(c, 'replay_overflow');
      return;
    }
    this.stats.eventsSent.transition++;
    this.write(c, entry.frame, now);
  }

  private replay(c: Subscriber, lastEventId: string, now: number): void {
    const parsed = parseId(lastEventId);
    let reason: string | null = null;
    if (parsed && parsed.run !== this.ids.run) reason = 'the daemon restarted since that event id; transitions in between are lost';
    else if (!parsed || parsed.seq > this.ids.last) reason = 'that event id was not issued by this daemon';
    else {
      const missed = this.history.since(parsed.seq);
      if (missed === null) reason = `more than ${this.options.replay} transitions happened since that event id; the ones in between are no longer kept`;
      else for (const entry of missed) this.sendTransition(c, entry, now);
    }
    if (reason !== null) {
      this.stats.eventsSent.reset++;
      this.write(c, Buffer.from(resetFrame(reason, lastEventId)), now);
    }
  }

  private write(c: Subscriber, frame: Buffer, now: number): void {
    c.lastWriteAt = now;
    if (!c.res.write(frame) && !c.paused) {
      c.paused = true;
      c.res.once('drain', () => this.onDrain(c));
    }
  }

  private onDrain(c: Subscriber): void {
    if (!this.clients.has(c)) return;
    c.paused = false;
    c.stalledSince = 0;
    const now = this.clock();
    let i = 0;
    for (; i < c.backlog.length && !c.paused; i++) {
      this.stats.eventsSent.transition++;
      this.write(c, c.backlog[i]!, now);
    }
    c.backlog = c.backlog.slice(i);
    if (c.paused || !c.statusDirty) return;
    const eligibleAt = c.lastStatusAt + this.options.minIntervalMs;
    if (eligibleAt <= now) this.sendStatus(c, now);
    else this.scheduleStatus(eligibleAt - now);
  }

  private sweep(): void {
    const now = this.clock();
    for (const c of this.clients) {
      if (c.paused) {
        const length = c.res.writableLength;
        if (c.stalledSince === 0 || length < c.stalledLength) {
          c.stalledSince = now;
          c.stalledLength = length;
        } else if (now - c.stalledSince >= this.options.writeTimeoutMs) {
          this.drop(c, 'write_timeout');
        }
      } else if (now - c.lastWriteAt >= this.options.heartbeatMs) {
        this.write(c, KEEPALIVE, now);
      }
    }
  }

  private drop(c: Subscriber, reason: SseDropReason): void {
    this.stats.clientsDropped[reason]++;
    this.log.warn({ reason }, 'dropped a slow SSE client; it can reconnect and resume with Last-Event-ID');
    this.remove(c);
    c.res.destroy();
  }

  private remove(c: Subscriber): void {
    if (!this.clients.delete(c)) return;
    if (c.transitions) this.transitionClients--;
    c.backlog = [];
    this.stats.clientsConnected--;
  }
}
