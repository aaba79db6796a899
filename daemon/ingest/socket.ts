/**
 * The ingest socket: accepts producer connections, frames lines, decodes them, and folds the events into the store.
 *
 * A bad line costs only itself: it is counted, answered on its own connection (best effort), and the next line is
 * read normally. A long-lived agent (one that sent `hello`) owns the sessions it drives; when its connection closes
 * the store marks them `error` so the status never stays "busy" for an agent that died.
 */
import { chmodSync, lstatSync, mkdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.ts';
import type { FoldInput, Producer } from '../state/fold.ts';
import type { StatusStore } from '../state/store.ts';
import { decodeLine, type RejectReason } from './decode.ts';
import { LineFramer } from './lines.ts';
import { checkSocketFolder, socketModeWarning } from './socket-folder.ts';
import { applySocketGroup } from './socket-group.ts';
import type { CloseReason, IngestStats } from './stats.ts';
import { WarningLimiter } from './warnings.ts';

export interface IngestOptions {
  readonly maxLineBytes: number;
  readonly maxProducers: number;
  /** Seconds a connection (not a hello agent) may take to complete a line, from connecting or from starting it. */
  readonly lineTimeout: number;
  /** Seconds a connection (not a hello agent) may send nothing before it is closed. */
  readonly producerIdleTimeout: number;
}

/** Error answers beyond this much unread output are not written: a producer that never reads costs us nothing. */
const REPLY_BUFFER_LIMIT = 16 * 1024;
/** A connection we closed (or refused) is destroyed after this long if its peer does not read our last line. */
const CLOSE_GRACE_MS = 1000;
/**
 * Agents connecting and leaving are logged one by one up to this many a window (warnings.ts), then summed up: a few
 * dozen agents starting together are all named, a reconnect loop costs a line per window.
 */
const AGENT_LOG_BURST = 20;
/** Refused session starts are logged at most this often (with how many were refused since the last line). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export class StartupError extends Error {}
/** The ingest socket is held by a live daemon: a newcomer's second `npm start`, or a service. */
export class SocketInUseError extends StartupError {}

type EventInput = Extract<FoldInput, { kind: 'event' }>;

interface Connection {
  readonly socket: net.Socket;
  readonly framer: LineFramer;
  producer: Producer;
  rejected: number;
  /** performance.now() of the last read. */
  lastActivity: number;
  /** When the line now awaited began (the connection itself, or the first byte of an unfinished line), else null. */
  partialSince: number | null;
  /** Closed by us (idle, line timeout, room for another): whatever it still sends is ignored. */
  closedByUs: boolean;
  /** Events decoded from the current read, not yet folded, and their line numbers. */
  batch: EventInput[];
  batchLines: number[];
}

export class IngestServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private nextProducerId = 1;
  private readonly warnings: WarningLimiter;
  private readonly agentLog: WarningLimiter;
  private readonly sweeper: NodeJS.Timeout;
  /** The socket file this process created, and its identity: only that file is removed on exit. */
  private owned: { path: string; dev: number; ino: number } | null = null;
  private refusalLoggedAt = -Infinity;
  private refusedSinceLog = 0;

  constructor(
    private readonly options: IngestOptions,
    private readonly store: StatusStore,
    private readonly stats: IngestStats,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
    this.warnings = new WarningLimiter(log, () => performance.now());
    this.agentLog = new WarningLimiter(log, () => performance.now(), undefined, AGENT_LOG_BURST);
    // One timer for every connection: a look at each one per tick costs less than a timer per connection.
    const tickMs = Math.min(1000, Math.max(50, (Math.min(options.lineTimeout, options.producerIdleTimeout) * 1000) / 4));
    this.sweeper = setInterval(() => this.sweep(), tickMs);
    this.sweeper.unref();
  }

  get producerCount(): number {
    return this.connections.size;
  }

  /**
   * Binds a path: refuses a folder others could write (socket-folder.ts) and a path another daemon answers on,
   * replaces a stale socket file, applies the mode and group.
   *
   * The socket is bound under a private name in the same folder, given its mode and group, then renamed into place:
   * it never appears at `path` wider than intended, and libuv, which unlinks the name it bound when the server closes,
   * unlinks that private name, not `path`, which may by then belong to a successor (see close()).
   */
  async listenPath(path: string, mode: number, gid: number | null = null): Promise<void> {
    const dir = dirname(path);
    const firstCreatedDir = mkdirSync(dir, { recursive: true, mode: 0o750 });
    checkSocketFolder(dir, gid !== null);
    const wide = socketModeWarning(mode);
    if (wide !== null) this.log.warn({ socket: path }, wide);
    await clearStaleSocket(path);
    const staging = join(dir, `.${process.pid}.sock`);
    // sun_path holds 107 bytes: a path whose folder is near that limit is bound directly (libuv may then unlink it on
    // exit even if a successor bound it since).
    const bindAt = Buffer.byteLength(staging) <= 107 ? staging : path;
    if (bindAt !== path) rmSync(bindAt, { force: true }); // left by an earlier process with this pid
    // The umask makes bind() create the socket with the right mode: no window in which it is wider.
    const previous = process.umask(~mode & 0o777);
    try {
      // A deep accept queue: at boot, or after a restart, every agent reconnects at once.
      await listen(this.server, { path: bindAt, backlog: Math.max(511, this.options.maxProducers) });
    } finally {
      process.umask(previous);
    }
    // --socket-group: after bind, so the socket only ever goes from narrower (the daemon's group) to the intended group.
    if (gid !== null) applySocketGroup(bindAt, gid, firstCreatedDir);
    chmodSync(bindAt, mode);
    if (bindAt !== path) renameSync(bindAt, path);
    const st = lstatSync(path);
    this.owned = { path, dev: st.dev, ino: st.ino };
  }

  /** Uses a listening socket passed by systemd. Its file belongs to systemd: it is never unlinked here. */
  async listenFd(fd: number): Promise<void> {
    await listen(this.server, { fd });
  }

  /** Stops accepting, closes every producer connection, and removes the socket file if this process created it. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.socket.destroy();
    await closed;
    const owned = this.owned;
    this.owned = null;
    if (owned) {
      try {
        // Only the file this process created: after `rm` and a new daemon on the same path, the file there is the
        // successor's, and removing it would cut every agent off from a daemon that runs.
        const st = lstatSync(owned.path);
        if (st.dev === owned.dev && st.ino === owned.ino) unlinkSync(owned.path);
      } catch {
        // Already gone.
      }
    }
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxProducers) {
      // Idle connections must not lock agents out: make room by closing the longest-idle one that is not an agent.
      const idlest = this.longestIdle();
      if (idlest !== null) {
        this.closeProducer(idlest, 'evicted', `the producer limit (${this.options.maxProducers}) was reached and this connection had been idle the longest; reconnect when there is something to send`);
      } else {
        this.stats.producersRefused++;
        this.warnings.warn('refused', { limit: this.options.maxProducers }, 'producer refused: too many producers connected');
        socket.on('error', () => {});
        socket.end(
          `${JSON.stringify({ error: `too many producers connected (limit ${this.options.maxProducers}); close idle connections or raise --max-producers` })}\n`,
        );
        setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
        return;
      }
    }
    const max = this.options.maxLineBytes;
    const now = performance.now();
    const conn: Connection = {
      socket,
      framer: new LineFramer(max, {
        line: (line, lineNo, utf8) => this.onLine(conn, line, lineNo, utf8),
        oversized: (lineNo) => this.reject(conn, lineNo, 'too_long', `line longer than ${max} bytes`),
      }),
      producer: { id: this.nextProducerId++, agent: false },
      rejected: 0,
      lastActivity: now,
      partialSince: now,
      closedByUs: false,
      batch: [],
      batchLines: [],
    };
    this.connections.add(conn);
    this.stats.producersConnected = this.connections.size;

    const { framer } = conn;
    // The events of one read are folded together: one copy of the state and one change for the whole batch.
    socket.on('data', (chunk: Buffer) => {
      if (conn.closedByUs) return;
      const lines = framer.lineCount;
      framer.push(chunk);
      this.flush(conn);
      const at = performance.now();
      conn.lastActivity = at;
      if (!framer.pending) conn.partialSince = null;
      else if (conn.partialSince === null || framer.lineCount !== lines) conn.partialSince = at;
    });
    socket.on('end', () => {
      if (conn.closedByUs) return;
      framer.end();
      this.flush(conn);
    });
    // A reset by the peer is an ordinary way for a producer to go away; 'close' follows.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(conn));
  }

  /** The connection, not a hello agent, that has sent nothing for the longest, or null when all are agents. */
  private longestIdle(): Connection | null {
    let idlest: Connection | null = null;
    for (const c of this.connections) {
      if (!c.producer.agent && (idlest === null || c.lastActivity < idlest.lastActivity)) idlest = c;
    }
    return idlest;
  }

  /** Closes producers past --line-timeout or --producer-idle-timeout (hello agents are never closed for idling). */
  private sweep(): void {
    const now = performance.now();
    const lineMs = this.options.lineTimeout * 1000;
    const idleMs = this.options.producerIdleTimeout * 1000;
    for (const c of this.connections) {
      if (c.producer.agent) continue;
      if (c.partialSince !== null && now - c.partialSince > lineMs) {
        this.closeProducer(c, 'line_timeout', `no complete line within ${this.options.lineTimeout} s (--line-timeout); end every event with a newline`);
      } else if (now - c.lastActivity > idleMs) {
        this.closeProducer(c, 'idle', `nothing sent for ${this.options.producerIdleTimeout} s (--producer-idle-timeout); reconnect when there is something to send, or say hello to stay connected`);
      }
    }
    this.warnings.flush();
    this.agentLog.flush();
  }

  /** Closes a producer connection for a reason of ours, with a last line saying why; its slot is free at once. */
  private closeProducer(conn: Connection, reason: CloseReason, why: string): void {
    conn.closedByUs = true;
    this.connections.delete(conn);
    this.stats.producersConnected = this.connections.size;
    this.stats.producersClosed[reason]++;
    this.warnings.warn(`closed_${reason}`, { producer: conn.producer.id }, `closed a producer connection: ${why}`);
    const { socket } = conn;
    socket.end(`${JSON.stringify({ error: `connection closed: ${why}` })}\n`);
    // A peer that does not read our last line is not waited for.
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  private onLine(conn: Connection, line: Buffer | string, lineNo: number, utf8: boolean): void {
    const decoded = decodeLine(line, utf8);
    if (decoded.kind === 'rejected') return this.reject(conn, lineNo, decoded.reason, decoded.message);
    if (decoded.kind === 'ignored') {
      this.stats.ignored[decoded.reason]++;
      return;
    }
    const { event } = decoded;
    // Logged once per connection: a producer repeating hello must not be able to flood the log.
    if (event.type === 'hello' && !conn.producer.agent) {
      conn.producer = { id: conn.producer.id, agent: true };
      this.agentLog.info('agent_connected', { producer: conn.producer.id }, 'agent connected');
    }
    conn.batch.push({ kind: 'event', event, producer: conn.producer });
    conn.batchLines.push(lineNo);
  }

  private flush(conn: Connection): void {
    if (conn.batch.length === 0) return;
    const inputs = conn.batch;
    const lines = conn.batchLines;
    conn.batch = [];
    conn.batchLines = [];
    try {
      const result = this.store.applyAll(inputs);
      this.count(inputs, result.unknownSession, result.refused);
      for (const i of result.refused) this.refuseStart(conn, lines[i]!, inputs[i]!);
    } catch {
      // A bug in the fold must cost only the line that hit it, not the daemon and every producer's sessions:
      // apply the batch again one event at a time to find it.
      inputs.forEach((input, i) => this.applyOne(conn, input, lines[i]!));
    }
  }

  private applyOne(conn: Connection, input: EventInput, lineNo: number): void {
    try {
      const result = this.store.applyAll([input]);
      this.count([input], result.unknownSession, result.refused);
      if (result.refused.length > 0) this.refuseStart(conn, lineNo, input);
    } catch (error) {
      // Logged without the event: the error's message and stack carry no payload.
      this.log.error({ err: error, producer: conn.producer.id, line: lineNo, type: input.event.type }, 'an event could not be applied; it was dropped');
      this.reject(conn, lineNo, 'invalid_event', `${input.event.type}: could not be applied (a daemon bug; the event was dropped)`);
    }
  }

  private count(inputs: readonly EventInput[], unknownSession: readonly number[], refused: readonly number[]): void {
    const ignored = unknownSession.length > 0 ? new Set(unknownSession) : null;
    const refusedAt = refused.length > 0 ? new Set(refused) : null;
    for (let i = 0; i < inputs.length; i++) {
      if (ignored?.has(i)) this.stats.ignored.unknown_session++;
      else if (refusedAt?.has(i)) this.stats.sessionsRefused++;
      else this.stats.countEvent(inputs[i]!.event.type);
    }
  }

  /** An agent_start the fold refused (--max-sessions): one error answer on its connection; a log line a minute at most. */
  private refuseStart(conn: Connection, lineNo: number, input: EventInput): void {
    const limit = this.store.state.maxSessions;
    const key = input.event.type === 'agent_start' ? input.event.session_key : '';
    this.answer(conn, `line ${lineNo}: agent_start for ${JSON.stringify(key)} refused: ${limit} sessions are live (the --max-sessions limit); end finished sessions with agent_end, or raise --max-sessions`);
    this.refusedSinceLog++;
    const now = this.store.clock();
    if (now - this.refusalLoggedAt >= REFUSAL_LOG_INTERVAL_MS) {
      this.log.warn(
        { limit, refused: this.refusedSinceLog, producer: conn.producer.id },
        `refused new sessions: ${limit} sessions are live (--max-sessions); live sessions are kept. Producers should end finished sessions with agent_end, or raise --max-sessions (logged at most once a minute)`,
      );
      this.refusalLoggedAt = now;
      this.refusedSinceLog = 0;
    }
  }

  /** Writes one error answer unless the producer has left too much unread. */
  private answer(conn: Connection, message: string): void {
    const { socket } = conn;
    if (socket.writable && socket.writableLength < REPLY_BUFFER_LIMIT) socket.write(`${JSON.stringify({ error: message })}\n`);
    else this.stats.repliesDropped++;
  }

  private reject(conn: Connection, lineNo: number, reason: RejectReason, message: string): void {
    this.stats.rejected[reason]++;
    if (conn.rejected++ === 0) {
      this.warnings.warn(`rejected_${reason}`, { producer: conn.producer.id, line: lineNo, reason }, 'rejected an event line (further rejects on this connection are summed up when it closes)');
    }
    const { socket } = conn;
    if (socket.writable && socket.writableLength < REPLY_BUFFER_LIMIT) {
      socket.write(`${JSON.stringify({ error: `line ${lineNo}: ${message}` })}\n`);
    } else {
      this.stats.repliesDropped++;
    }
  }

  private onClose(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    this.stats.producersConnected = this.connections.size;
    if (conn.rejected > 1) this.warnings.warn('closed_after_rejects', { producer: conn.producer.id, rejected: conn.rejected }, 'producer closed after rejected lines');
    if (conn.producer.agent) {
      this.agentLog.info('agent_disconnected', { producer: conn.producer.id }, 'agent disconnected; its unfinished sessions are now in error');
      this.store.apply({ kind: 'producer_closed', producer: conn.producer.id });
    }
  }
}

function listen(server: net.Server, target: { path: string; backlog: number } | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(target, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** A socket file nobody answers on is left over from a crash: remove it. One somebody answers on is not ours. */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // absent
  }
  if (!isSocket) throw new StartupError(`${path} exists and is not a socket; remove it or choose another --socket`);
  if (await answers(path)) {
    throw new SocketInUseError(
      `another daemon is listening on ${path} (a second npm start, or a service); stop it, or pass --socket PATH and --port N to run one more beside it`,
    );
  }
  unlinkSync(path);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    const done = (live: boolean) => {
      probe.destroy();
      resolve(live);
    };
    probe.setTimeout(500, () => done(true));
    probe.once('connect', () => done(true));
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'EAGAIN'));
  });
}
