/**
 * The SSE hub: fans state changes out to every stream without letting one client hurt the others.
 *
 * Modelled on Mercure's hub. The change feed only enqueues; one `setImmediate` tick per burst writes transitions at
 * once and status snapshots at most every `minIntervalMs` (leading edge, then the latest state when the burst ends).
 * Each frame is encoded once and the same Buffer is written to every client that gets it. A client whose socket
 * will not take more is paused: its status collapses to "send the newest when drained", its transitions queue up to
 * `replay`, and past that, or after `writeTimeoutMs` without progress, it is dropped (it reconnects and resumes with
 * Last-Event-ID). Nothing here ever awaits a client.
 *
 * Bytes are bounded as well as counts (the SSE amplification of issue 13): what Node holds for one client (its
 * unsent writes and queued transitions) may not pass `maxClientBytes` beyond the frame being written, and what it
 * holds for all clients together may not pass `maxTotalBytes`: past either, the slowest clients are dropped as a
 * slow client is. Clients whose filters select the same sessions in any spelling share one rendering per change
 * (`filterKey`), and a rendering keeps only its encoded frame and the list of its pieces, not the JSON again.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { splitSessionKey } from '../../protocol/snapshot.ts';
import type { Change } from '../feed/feed.ts';
import type { Logger } from '../log.ts';
import { matches, sameContent, type RenderedSnapshot, type SessionFilter } from '../state/snapshot.ts';
import type { Transition } from '../state/transitions.ts';
import { KEEPALIVE_FRAME, RETRY_FIELD, resetFrame, statusFrame, transitionFrame } from './frames.ts';
import { TransitionHistory, type HistoryEntry } from './history.ts';
import { EventIds, parseId } from './ids.ts';
import type { IdPosition } from '../persist/state-file.ts';
import type { SseDropReason, SseStats } from './stats.ts';

export interface HubOptions {
  readonly heartbeatMs: number;
  readonly minIntervalMs: number;
  readonly replay: number;
  readonly writeTimeoutMs: number;
  /** Where the ids stood before a clean restart: they continue from there (daemon/persist). */
  readonly resume?: IdPosition | null;
  /** Most bytes Node may hold for one client beyond the frame being written (--sse-max-client-bytes). */
  readonly maxClientBytes: number;
  /** Most bytes Node may hold for all clients together (--sse-max-total-bytes). */
  readonly maxTotalBytes: number;
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
  /** The content of the last status this client got (compared by identity first: see `views`). */
  lastContent: readonly string[] | null;
  lastStatusAt: number;
  statusDirty: boolean;
  /** Waiting for 'drain': nothing more is written until the socket takes what it has. */
  paused: boolean;
  backlog: Buffer[];
  backlogBytes: number;
  /** The size of the last status frame written: a client may always hold that one beyond maxClientBytes. */
  frameBytes: number;
  /** When it was last paused: the total bound drops the clients paused longest first. */
  pausedAt: number;
  lastWriteAt: number;
  stalledSince: number;
  stalledLength: number;
  /** No event written yet: the first one carries `retry:`. */
  retryPending: boolean;
  /**
   * The client's socket, once its headers and first event went out through `res` with chunked encoding: later frames
   * are written to it as ready-made chunks (see chunkOf), the same bytes `res.write` would send.
   */
  socket: Socket | null;
}

interface View {
  readonly content: readonly string[];
  readonly frame: Buffer;
  /** The versionSeq and the time it was rendered at: a client accepted moments later may share it. */
  readonly seq: number;
  readonly at: number;
  /**
   * The last content this view was compared with, and whether it was the same: the clients of one filter mostly
   * hold the same content object (the previous view's), so a flush compares once per view, not once per client.
   */
  comparedWith: readonly string[] | null;
  sameAsCompared: boolean;
}

/** A status flush hands the event loop back after this long, and goes on at the next turn. */
const FLUSH_SLICE_MS = 8;
/** Past --sse-max-total-bytes, only clients paused at least this long are dropped. */
const STALL_GRACE_MS = 1000;
const DROP_LOG_INTERVAL_MS = 10_000;

const RETRY = Buffer.from(RETRY_FIELD);
const KEEPALIVE = Buffer.from(KEEPALIVE_FRAME);
const CRLF = Buffer.from('\r\n');
/** A status flush reads the clock once per this many clients (a read costs about what the rest of a client does). */
const CLOCK_EVERY = 16;

export class SseHub {
  private readonly clients = new Set<Subscriber>();
  private transitionClients = 0;
  readonly ids: EventIds;
  private readonly history: TransitionHistory;
  /** The seq of the last transition event (0: none yet). */
  private transitionSeq: number;
  /** The seq of the last transition before a restart: the ones up to it are gone with the previous process. */
  private readonly lostUpTo: number;
  /** The seq naming the current state: the id of the status event that shows it. */
  private versionSeq: number;
  private pending: HistoryEntry[] = [];
  private statusChanged = false;
  private immediate: NodeJS.Immediate | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private statusTimerAt = Infinity;
  private lastStatusFlush = -Infinity;
  /** The status flush in progress, served in slices (see continueFlush). */
  private flush: {
    readonly clients: Subscriber[];
    next: number;
    readonly fresh: Map<string, View>;
    retryAt: number;
    again: boolean;
    immediate: NodeJS.Immediate | null;
  } | null = null;
  /** Per filter, the last rendering: unchanged content keeps its array object, so comparisons are by identity. */
  private views = new Map<string, View>();
  /** The encoded frame of a rendering, for views whose filters select the same sessions. */
  private readonly frames = new WeakMap<RenderedSnapshot, { seq: number; bytes: Buffer }>();
  /** Each shared frame as one HTTP/1.1 chunk, made once for every client it is written to (see write). */
  private readonly chunks = new WeakMap<Buffer, Buffer>();
  private readonly dropLog: Partial<Record<SseDropReason, { at: number; suppressed: number }>> = {};
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
    const resume = options.resume ?? null;
    this.ids = resume ? new EventIds(resume.run, resume.seq) : new EventIds();
    this.transitionSeq = resume?.transitionSeq ?? 0;
    // The transitions before a restart are not kept: a client that asks for any of them gets `reset` (replay()).
    this.lostUpTo = this.transitionSeq;
    this.history = new TransitionHistory(options.replay);
    this.versionSeq = this.ids.next();
    this.wallOffset = Date.now() - clock();
    this.unsubscribe = feed.subscribe((change) => this.onChange(change));
    // One sweep for every client (heartbeats, stalled writes) instead of a timer per client.
    const sweepMs = Math.min(1000, Math.max(20, Math.min(options.heartbeatMs, options.writeTimeoutMs) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
  }

  /** Where the ids stand, for the state file. */
  position(): IdPosition {
    return { run: this.ids.run, seq: this.ids.last, transitionSeq: this.transitionSeq };
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
      lastContent: null,
      lastStatusAt: -Infinity,
      statusDirty: false,
      paused: false,
      backlog: [],
      backlogBytes: 0,
      frameBytes: 0,
      pausedAt: 0,
      lastWriteAt: now,
      stalledSince: 0,
      stalledLength: 0,
      retryPending: true,
      socket: null,
    };
    this.clients.add(c);
    if (c.transitions) this.transitionClients++;
    this.stats.clientsTotal++;
    // Counted up and down rather than set from this hub's size: the fleet runs two hubs on one SseStats.
    this.stats.clientsConnected++;
    req.res.on('close', () => this.remove(c));
    req.res.on('error', () => this.remove(c));

    req.res.writeHead(200, { ...req.headers, ...SSE_HEADERS });
    if (req.lastEventId !== null && c.transitions) this.replay(c, req.lastEventId, now);
    if (req.lastEventId === this.ids.format(this.versionSeq)) {
      // The client already shows the current state: remember it as seen instead of sending it again.
      c.lastContent = this.view(c.filterKey, c.filter, now).content;
      c.lastStatusAt = now;
    } else {
      this.sendStatus(c, now);
    }
    // Nothing to send yet: send the headers alone, so the client knows it is connected (EventSource's `open`).
    if (c.retryPending) req.res.flushHeaders();
  }

  /** Ends every stream cleanly, so that clients reconnect (to the restarted daemon). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.sweepTimer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.flush?.immediate) clearImmediate(this.flush.immediate);
    this.flush = null;
    for (const c of this.clients) c.res.end();
    this.stats.clientsConnected -= this.clients.size;
    this.clients.clear();
    this.transitionClients = 0;
  }

  private onChange(change: Pick<Change, 'transitions'>): void {
    for (const transition of change.transitions) {
      const entry: HistoryEntry = { seq: (this.transitionSeq = this.ids.next()), transition, frame: null };
      this.history.push(entry);
      if (this.transitionClients > 0) this.pending.push(entry);
    }
    this.versionSeq = this.ids.next();
    // Nobody to tell: no turn of the event loop is spent on it. A client that connects gets the state as it is then.
    if (this.clients.size === 0) return;
    this.statusChanged = true;
    this.immediate ??= setImmediate(() => this.tick());
  }

  private tick(): void {
    this.immediate = null;
    // A client that takes transitions may get several frames this turn (each transition, then the status): its socket
    // is corked until the turn's frames are written, so they leave in one writev, as `res.write` would send them.
    let corked: Socket[] | null = null;
    if (this.pending.length > 0) {
      const entries = this.pending;
      this.pending = [];
      const now = this.clock();
      for (const c of this.clients) {
        if (!c.transitions) continue;
        if (c.socket !== null && !c.paused) {
          c.socket.cork();
          (corked ??= []).push(c.socket);
        }
        for (const entry of entries) this.sendTransition(c, entry, now);
      }
    }
    if (this.statusChanged) {
      this.statusChanged = false;
      const wait = this.lastStatusFlush + this.options.minIntervalMs - this.clock();
      if (wait <= 0) this.flushStatus();
      else this.scheduleStatus(wait);
    }
    if (corked !== null) for (const socket of corked) socket.uncork();
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
    if (this.flush !== null) {
      // The previous flush is still going (in slices): the next starts when it ends, so no client is starved.
      this.flush.again = true;
      return;
    }
    const now = this.clock();
    this.lastStatusFlush = now;
    this.flush = { clients: [...this.clients], next: 0, fresh: new Map(), retryAt: Infinity, again: false, immediate: null };
    this.continueFlush();
  }

  /**
   * Serves the flush's clients for at most FLUSH_SLICE_MS, then lets the event loop run (health checks, ingest,
   * other requests) before going on: many distinct filters over many sessions cost many renderings, and that work
   * must not stall everything else.
   */
  private continueFlush(): void {
    const flush = this.flush!;
    flush.immediate = null;
    const start = this.clock();
    let now = start;
    let served = 0;
    while (flush.next < flush.clients.length) {
      const c = flush.clients[flush.next++]!;
      if (!this.clients.has(c)) continue;
      if (c.paused) {
        c.statusDirty = true;
        continue;
      }
      const eligibleAt = c.lastStatusAt + this.options.minIntervalMs;
      if (eligibleAt > now) {
        // Only a client that connected (or drained) moments ago can be here: it gets the latest state on time.
        c.statusDirty = true;
        flush.retryAt = Math.min(flush.retryAt, eligibleAt);
        continue;
      }
      const renderings = this.stats.renderings;
      this.sendStatus(c, now, flush.fresh);
      // The clock is read after every rendering (the costly part), else once per CLOCK_EVERY clients.
      if (++served % CLOCK_EVERY !== 0 && this.stats.renderings === renderings) continue;
      now = this.clock();
      if (now - start >= FLUSH_SLICE_MS && flush.next < flush.clients.length) {
        flush.immediate = setImmediate(() => this.continueFlush());
        return;
      }
    }
    this.flush = null;
    now = this.clock();
    // Renderings no client asked for this time are let go: a filter nobody uses any more holds nothing.
    this.views = flush.fresh;
    this.stats.views = flush.fresh.size;
    this.enforceTotal();
    if (flush.again) this.scheduleStatus(this.lastStatusFlush + this.options.minIntervalMs - now);
    if (flush.retryAt !== Infinity) this.scheduleStatus(flush.retryAt - now);
  }

  /**
   * The rendering for a filter: one per distinct filter per flush (`fresh`); outside a flush (a client just
   * accepted), the last one while it shows the current state and is younger than the status interval.
   */
  private view(filterKey: string, filter: SessionFilter, now: number, fresh?: Map<string, View>): View {
    const current = fresh ? fresh.get(filterKey) : this.views.get(filterKey);
    if (current && (fresh || (current.seq === this.versionSeq && now - current.at < Math.max(this.options.minIntervalMs, 10)))) return current;
    const rendered = this.snapshots.render(filter);
    const previous = this.views.get(filterKey);
    // Filters spelled differently may select the very same sessions and get the same rendering: one frame for all.
    let frame = this.frames.get(rendered);
    if (frame === undefined || frame.seq !== this.versionSeq) {
      this.stats.renderings++;
      frame = { seq: this.versionSeq, bytes: Buffer.from(statusFrame(this.ids.format(this.versionSeq), rendered.json)) };
      this.frames.set(rendered, frame);
    }
    const view: View = {
      content: previous && sameContent(previous.content, rendered.content) ? previous.content : rendered.content,
      frame: frame.bytes,
      seq: this.versionSeq,
      at: now,
      comparedWith: null,
      sameAsCompared: false,
    };
    (fresh ?? this.views).set(filterKey, view);
    return view;
  }

  private sendStatus(c: Subscriber, now: number, fresh?: Map<string, View>): void {
    c.statusDirty = false;
    const view = this.view(c.filterKey, c.filter, now, fresh);
    if (c.lastContent !== null && this.seen(view, c.lastContent)) return;
    c.lastContent = view.content;
    c.lastStatusAt = now;
    this.stats.eventsSent.status++;
    c.frameBytes = view.frame.length;
    this.write(c, view.frame, now);
  }

  /** Whether a client that shows `content` has seen what `view` shows (compared once per content object, see View). */
  private seen(view: View, content: readonly string[]): boolean {
    if (view.content === content) return true;
    if (view.comparedWith !== content) {
      view.comparedWith = content;
      view.sameAsCompared = sameContent(view.content, content);
    }
    return view.sameAsCompared;
  }

  private sendTransition(c: Subscriber, entry: HistoryEntry, now: number): void {
    if (!this.clients.has(c)) return; // dropped while this batch was being sent
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
      c.backlogBytes += entry.frame.length;
      if (c.backlog.length > this.options.replay) this.drop(c, 'replay_overflow');
      else if (this.queued(c) > this.options.maxClientBytes + c.frameBytes) this.drop(c, 'bytes_overflow');
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
    else if (parsed.seq < this.lostUpTo) reason = 'the daemon restarted since that event id; transitions in between are lost';
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

  /**
   * Writes a frame. The first event goes through `res` (it sends the headers, and chooses the framing); after that, a
   * chunked response gets each frame as a ready-made chunk straight on its socket: `res.write` would frame the same
   * bytes anew for every client (a size line, the frame, CRLF: three buffers, a cork and a tick per client), which at
   * a hundred clients cost a quarter of a delivery. Anything else (an HTTP/1.0 client: no chunks) stays on `res`.
   */
  private write(c: Subscriber, frame: Buffer, now: number): void {
    c.lastWriteAt = now;
    let written: boolean;
    if (c.socket !== null) {
      written = c.socket.write(this.chunkOf(frame));
    } else {
      // `retry:` rides in the stream's first event (frames.ts says why); a keepalive comment is not an event.
      if (c.retryPending && frame !== KEEPALIVE) {
        c.retryPending = false;
        frame = Buffer.concat([RETRY, frame]);
      }
      written = c.res.write(frame);
      const socket = c.res.socket;
      // Only once `res` holds nothing of its own (its headers and this frame are on the socket, in order).
      if (!c.retryPending && c.res.chunkedEncoding && socket && c.res.writableLength === socket.writableLength) c.socket = socket;
    }
    if (!written && !c.paused) {
      c.paused = true;
      c.pausedAt = now;
      // `res` emits 'drain' only for its own writes; the socket, for every write.
      (c.socket ?? c.res).once('drain', () => this.onDrain(c));
    }
    // A client may always hold the status it is being sent (a snapshot of many sessions can be large by itself).
    if (c.paused && this.queued(c) > this.options.maxClientBytes + Math.max(c.frameBytes, frame.length)) this.drop(c, 'bytes_overflow');
  }

  /** `frame` as one chunk of a chunked HTTP/1.1 body, made once per frame however many clients it goes to. */
  private chunkOf(frame: Buffer): Buffer {
    let chunk = this.chunks.get(frame);
    if (chunk === undefined) {
      chunk = Buffer.concat([Buffer.from(`${frame.length.toString(16)}\r\n`), frame, CRLF]);
      this.chunks.set(frame, chunk);
    }
    return chunk;
  }

  /** The bytes Node holds for a client: its unsent writes and the transitions queued while it is paused. */
  private queued(c: Subscriber): number {
    return c.res.writableLength + c.backlogBytes;
  }

  /**
   * Keeps the total held for all clients within maxTotalBytes: past it, clients paused for STALL_GRACE_MS or more are
   * dropped, the one paused longest first (a client that reads is paused only while a large frame drains). A frame
   * shared by several clients counts once per client: the bound errs on the side of memory.
   */
  private enforceTotal(): void {
    const now = this.clock();
    let total = 0;
    let stalled: Subscriber[] | null = null;
    for (const c of this.clients) {
      const bytes = this.queued(c);
      total += bytes;
      if (c.paused && bytes > 0 && now - c.pausedAt >= STALL_GRACE_MS) (stalled ??= []).push(c);
    }
    if (total > this.options.maxTotalBytes && stalled !== null) {
      stalled.sort((a, b) => a.pausedAt - b.pausedAt);
      for (const c of stalled) {
        if (total <= this.options.maxTotalBytes) break;
        total -= this.queued(c);
        this.drop(c, 'hub_bytes_overflow');
      }
    }
    this.stats.queuedBytes = total;
  }

  private onDrain(c: Subscriber): void {
    if (!this.clients.has(c)) return;
    c.paused = false;
    c.stalledSince = 0;
    const now = this.clock();
    let i = 0;
    for (; i < c.backlog.length && !c.paused; i++) {
      this.stats.eventsSent.transition++;
      c.backlogBytes -= c.backlog[i]!.length;
      this.write(c, c.backlog[i]!, now);
    }
    if (!this.clients.has(c)) return;
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
    this.enforceTotal();
  }

  private drop(c: Subscriber, reason: SseDropReason): void {
    if (!this.clients.has(c)) return;
    this.stats.clientsDropped[reason]++;
    // Hundreds of stalled clients may go at once: one line per reason per DROP_LOG_INTERVAL_MS, with the count.
    const now = this.clock();
    const logged = (this.dropLog[reason] ??= { at: -Infinity, suppressed: 0 });
    if (now - logged.at >= DROP_LOG_INTERVAL_MS) {
      this.log.warn({ reason, alsoDroppedSinceLastLine: logged.suppressed }, 'dropped a slow SSE client; it can reconnect and resume with Last-Event-ID');
      logged.at = now;
      logged.suppressed = 0;
    } else {
      logged.suppressed++;
    }
    this.remove(c);
    c.res.destroy();
  }

  private remove(c: Subscriber): void {
    if (!this.clients.delete(c)) return;
    if (c.transitions) this.transitionClients--;
    c.backlog = [];
    c.backlogBytes = 0;
    this.stats.clientsConnected--;
  }
}
