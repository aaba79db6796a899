/**
 * The ingest socket: accepts producer connections, frames lines, decodes them, and folds the events into the store.
 *
 * A bad line costs only itself: it is counted, answered on its own connection (best effort), and the next line is
 * read normally. A long-lived agent (one that sent `hello`) owns the sessions it drives; when its connection closes
 * the store marks them `error` so the status never stays "busy" for an agent that died.
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import net from 'node:net';
import type { Logger } from '../log.ts';
import type { FoldInput, Producer } from '../state/fold.ts';
import type { StatusStore } from '../state/store.ts';
import { decodeLine, type RejectReason } from './decode.ts';
import { LineFramer } from './lines.ts';
import { applySocketGroup } from './socket-group.ts';
import type { IngestStats } from './stats.ts';

export interface IngestOptions {
  readonly maxLineBytes: number;
  readonly maxProducers: number;
}

/** Error answers beyond this much unread output are not written: a producer that never reads costs us nothing. */
const REPLY_BUFFER_LIMIT = 16 * 1024;
/** Refused session starts are logged at most this often (with how many were refused since the last line). */
const REFUSAL_LOG_INTERVAL_MS = 60_000;

export class StartupError extends Error {}

type EventInput = Extract<FoldInput, { kind: 'event' }>;

interface Connection {
  readonly socket: net.Socket;
  producer: Producer;
  rejected: number;
  /** Events decoded from the current read, not yet folded, and their line numbers. */
  batch: EventInput[];
  batchLines: number[];
}

export class IngestServer {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private nextProducerId = 1;
  private ownedPath: string | null = null;
  private refusalLoggedAt = -Infinity;
  private refusedSinceLog = 0;

  constructor(
    private readonly options: IngestOptions,
    private readonly store: StatusStore,
    private readonly stats: IngestStats,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  get producerCount(): number {
    return this.connections.size;
  }

  /** Binds a path: refuses when another daemon answers on it, replaces a stale socket file, applies the mode. */
  async listenPath(path: string, mode: number, gid: number | null = null): Promise<void> {
    await clearStaleSocket(path);
    const firstCreatedDir = mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    // The umask makes bind() create the socket with the right mode: no window in which it is wider.
    const previous = process.umask(~mode & 0o777);
    try {
      // A deep accept queue: at boot, or after a restart, every agent reconnects at once.
      await listen(this.server, { path, backlog: Math.max(511, this.options.maxProducers) });
    } finally {
      process.umask(previous);
    }
    this.ownedPath = path;
    // --socket-group: after bind, so the socket only ever goes from narrower (the daemon's group) to the intended group.
    if (gid !== null) applySocketGroup(path, gid, firstCreatedDir);
    chmodSync(path, mode);
  }

  /** Uses a listening socket passed by systemd. Its file belongs to systemd: it is never unlinked here. */
  async listenFd(fd: number): Promise<void> {
    await listen(this.server, { fd });
  }

  /** Stops accepting, closes every producer connection, and removes the socket file if this process created it. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.socket.destroy();
    await closed;
    if (this.ownedPath) {
      try {
        unlinkSync(this.ownedPath);
      } catch {
        // Already gone (net.Server.close() unlinks it itself on most platforms).
      }
      this.ownedPath = null;
    }
  }

  private accept(socket: net.Socket): void {
    if (this.connections.size >= this.options.maxProducers) {
      this.stats.producersRefused++;
      this.log.warn({ limit: this.options.maxProducers }, 'producer refused: too many producers connected');
      socket.on('error', () => {});
      socket.end(
        `${JSON.stringify({ error: `too many producers connected (limit ${this.options.maxProducers}); close idle connections or raise --max-producers` })}\n`,
      );
      return;
    }
    const conn: Connection = { socket, producer: { id: this.nextProducerId++, agent: false }, rejected: 0, batch: [], batchLines: [] };
    this.connections.add(conn);
    this.stats.producersConnected = this.connections.size;

    const max = this.options.maxLineBytes;
    const framer = new LineFramer(max, {
      line: (line, lineNo, utf8) => this.onLine(conn, line, lineNo, utf8),
      oversized: (lineNo) => this.reject(conn, lineNo, 'too_long', `line longer than ${max} bytes`),
    });
    // The events of one read are folded together: one copy of the state and one change for the whole batch.
    socket.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      this.flush(conn);
    });
    socket.on('end', () => {
      framer.end();
      this.flush(conn);
    });
    // A reset by the peer is an ordinary way for a producer to go away; 'close' follows.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(conn));
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
      this.log.info({ producer: conn.producer.id }, 'agent connected');
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
      this.log.warn({ producer: conn.producer.id, line: lineNo, reason }, 'rejected an event line (further rejects on this connection are summed up when it closes)');
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
    if (conn.rejected > 1) this.log.warn({ producer: conn.producer.id, rejected: conn.rejected }, 'producer closed after rejected lines');
    if (conn.producer.agent) {
      this.log.info({ producer: conn.producer.id }, 'agent disconnected; its unfinished sessions are now in error');
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
    throw new StartupError(`another daemon is listening on ${path}; stop it, or choose another --socket`);
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
