/**
 * StatusEmitter: what an agent written in TypeScript embeds to report its sessions to pocketpaw-status.
 *
 *     const status = new StatusEmitter({ agent: 'my-agent' });
 *     status.emit({ type: 'agent_start', session_key: 'websocket:abc', title: 'Fix the tests' });
 *     ...
 *     await status.close();
 *
 * Its promise to the agent: `emit()` returns at once and never throws, whether or not the daemon runs. Events go to the
 * socket when connected, else wait in a bounded queue (the oldest dropped first and counted in `dropped`). It
 * reconnects by itself (backoff capped at `maxBackoffMs`), and on every connection it first says `hello` (so the
 * daemon marks this agent's sessions `agent disconnected` if it dies) and then re-sends, for every session that has
 * started and not ended, the few events that rebuild its state: a restarted daemon shows the truth again at once.
 *
 * Runtime imports are Node built-ins only (the protocol types are erased): embedding it costs the agent nothing.
 * protocol/python/pocketpaw_status/__init__.py is the same design for Python; keep the two in step.
 */
import net from 'node:net';
import { basename } from 'node:path';
import type { StatusEventInput } from './events.ts';
import { resolveSocketPath, untrustedSocketReason } from './socket-path.ts';

export interface StatusEmitterOptions {
  /** The ingest socket; default `POCKETPAW_STATUS_SOCKET`, else the same default as `serve`. */
  readonly socket?: string;
  /** Names this agent in `hello`; default the script's file name. */
  readonly agent?: string;
  readonly version?: string | number;
  /** Sent in `hello`: replaces the daemon's configured `max_concurrent`. */
  readonly maxConcurrent?: number;
  /** Events kept while disconnected or while the daemon reads slowly; default 10000. */
  readonly maxQueue?: number;
  /** Longest wait between reconnection attempts; default 1000 ms, so a restarted daemon is found within a second. */
  readonly maxBackoffMs?: number;
  /**
   * The daemon's `--max-line-bytes` (default 65536). A longer event is cut down to the fields the protocol reads
   * (PocketPaw's `tool_start` carries the tool's whole `params`); if it is still too long it is dropped.
   */
  readonly maxLineBytes?: number;
}

/** A protocol event, or any `{type, ...}` object to forward as it is (a PocketPaw bus event, say). */
export type EmitterEvent = StatusEventInput | { readonly type: string; readonly [field: string]: unknown };

type LiveState = 'thinking' | 'tool_running' | 'streaming' | 'waiting_for_user' | 'error';

/** What the emitter remembers of a live session: just enough to rebuild it on a daemon that has never seen it. */
interface LiveSession {
  title: string | null;
  state: LiveState;
  tool: string | null;
  message: string | null;
  tokens: { input: number; output: number } | null;
  /** Calls opened with a `call_id` and not closed yet, oldest first (as the daemon keeps them). */
  calls: { id: string; name: string | null; asks: boolean }[];
}

const MIN_BACKOFF_MS = 50;
const CONNECT_TIMEOUT_MS = 2000;
/** A connection that dies sooner than this does not reset the backoff (a daemon that accepts and refuses). */
const STABLE_CONNECTION_MS = 1000;
/** Lines are written in batches of about this many bytes. */
const WRITE_BATCH_BYTES = 64 * 1024;
const UNKNOWN_ERROR = 'Unknown error';
const PROTOCOL_FIELDS = [
  'type', 'v', 'session_key', 'title', 'name', 'tool', 'status', 'result', 'message',
  'input', 'output', 'input_tokens', 'output_tokens', 'agent', 'version', 'max_concurrent',
  'call_id', 'create_session', 'pid',
] as const;
/** As the daemon's MAX_OPEN_CALLS: calls never closed cannot grow the mirror without bound. */
const MAX_OPEN_CALLS = 64;
const CUT_TEXT = 1000;

export class StatusEmitter {
  readonly socketPath: string;
  private readonly hello: string;
  private readonly maxQueue: number;
  private readonly maxBackoffMs: number;
  private readonly maxLineBytes: number;
  private readonly sessions = new Map<string, LiveSession>();

  // The queue is an array with a moving head: shift() is O(n) and a burst can queue thousands of lines.
  private queue: string[] = [];
  private head = 0;

  private socket: net.Socket | null = null;
  private isConnected = false;
  private connectedAt = 0;
  private backoffMs = MIN_BACKOFF_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private replyTail = '';
  /** Set when an event was dropped: the next write starts with the replay, so nothing dropped stays wrong. */
  private resync = false;

  private closing = false;
  private closed: Promise<void> | null = null;
  private flushed: (() => void) | null = null;

  private droppedCount = 0;
  private rejectedCount = 0;
  private lastRejection: string | null = null;

  constructor(options: StatusEmitterOptions = {}) {
    this.socketPath = resolveSocketPath(options.socket);
    this.maxQueue = Math.max(1, Math.trunc(options.maxQueue ?? 10_000));
    this.maxBackoffMs = Math.max(MIN_BACKOFF_MS, options.maxBackoffMs ?? 1000);
    this.maxLineBytes = options.maxLineBytes ?? 65536;
    const hello: Record<string, unknown> = { type: 'hello', agent: options.agent ?? defaultAgentName() };
    if (options.version !== undefined) hello.version = options.version;
    if (options.maxConcurrent !== undefined) hello.max_concurrent = options.maxConcurrent;
    this.hello = `${JSON.stringify(hello)}\n`;
    this.connect();
  }

  /** Events lost so far: the queue overflowed, the event could not be serialised, or it came after close(). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Lines the daemon answered with an error (a malformed event); `lastError` holds the latest answer. */
  get rejected(): number {
    return this.rejectedCount;
  }

  get lastError(): string | null {
    return this.lastRejection;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Events waiting to be written. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Queues one event and returns at once. Never throws. */
  emit(event: EmitterEvent): void {
    try {
      if (this.closing || typeof event !== 'object' || event === null || Array.isArray(event)) {
        this.droppedCount++;
        return;
      }
      const line = this.line(event as Readonly<Record<string, unknown>>);
      if (line === null) {
        this.droppedCount++;
        return;
      }
      track(this.sessions, event as Readonly<Record<string, unknown>>);
      this.enqueue(`${line}\n`);
      this.pump();
    } catch {
      // A circular or BigInt payload, a throwing getter: the agent must not pay for it.
      this.droppedCount++;
    }
  }

  /**
   * Writes what is queued (connecting once more if needed), then closes the connection. Resolves within `timeoutMs`
   * whatever happens; what could not be written by then is counted in `dropped`. Closing is this agent leaving: the
   * daemon marks its unfinished sessions `agent disconnected`.
   */
  close(timeoutMs = 1000): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = new Promise<void>((resolve) => {
      const deadline = setTimeout(() => finish(), timeoutMs);
      const finish = () => {
        clearTimeout(deadline);
        this.flushed = null;
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.droppedCount += this.queued;
        this.queue = [];
        this.head = 0;
        this.socket?.destroy();
        resolve();
      };
      this.flushed = finish;
      // Until now nothing held the process open; the flush must be allowed to finish.
      this.socket?.ref();
      if (this.isConnected) {
        this.pump();
      } else if (this.queued === 0) {
        finish(); // nothing to deliver, and no daemon to tell
      } else if (this.retryTimer) {
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.connect();
      }
    });
    return this.closed;
  }

  private line(event: Readonly<Record<string, unknown>>): string | null {
    const line = JSON.stringify(event) as string | undefined;
    if (typeof line !== 'string') return null;
    if (Buffer.byteLength(line) <= this.maxLineBytes) return line;
    const slim: Record<string, unknown> = {};
    for (const field of PROTOCOL_FIELDS) {
      const value = event[field];
      if (value !== undefined) slim[field] = typeof value === 'string' ? value.slice(0, CUT_TEXT) : value;
    }
    const short = JSON.stringify(slim);
    return Buffer.byteLength(short) <= this.maxLineBytes ? short : null;
  }

  private enqueue(line: string): void {
    if (this.queued >= this.maxQueue) {
      this.head++;
      this.droppedCount++;
      this.resync = true;
    }
    this.queue.push(line);
  }

  private pump(): void {
    const socket = this.socket;
    if (!socket || !this.isConnected) return;
    if (this.resync && !socket.writableNeedDrain) socket.write(this.replay());
    while (this.queued > 0 && !socket.writableNeedDrain) {
      let batch = '';
      while (this.head < this.queue.length && batch.length < WRITE_BATCH_BYTES) batch += this.queue[this.head++];
      socket.write(batch);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.queued === 0 && this.closing && this.flushed) {
      // The daemon closes its side once it has read everything: 'close' then finishes close().
      socket.end();
    }
  }

  private connect(): void {
    this.retryTimer = null;
    // A default-path socket another user owns is not the daemon (protocol/socket-path.ts): never connect, say why
    // once, and look again later (the real daemon may replace it).
    const untrusted = untrustedSocketReason(this.socketPath);
    if (untrusted !== null) {
      if (this.lastRejection !== untrusted) process.emitWarning(untrusted, 'PocketPawStatusWarning');
      this.lastRejection = untrusted;
      if (this.closing && this.flushed) return this.flushed();
      this.retryTimer = setTimeout(() => this.connect(), this.maxBackoffMs);
      this.retryTimer.unref();
      return;
    }
    const socket = net.connect({ path: this.socketPath });
    this.socket = socket;
    if (!this.closing) socket.unref();
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy());
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.setTimeout(0);
      this.isConnected = true;
      this.connectedAt = Date.now();
      socket.write(this.hello + this.replay());
      this.pump();
    });
    socket.on('data', (chunk: string) => {
      try {
        this.onReplies(chunk);
      } catch {
        // No answer may stop the emitter: whatever the reader choked on, drop this connection; 'close' reconnects.
        socket.destroy();
      }
    });
    socket.on('drain', () => this.pump());
    // 'close' always follows and decides what to do next.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(socket));
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    const lived = this.isConnected ? Date.now() - this.connectedAt : 0;
    this.socket = null;
    this.isConnected = false;
    this.replyTail = '';
    if (this.closing && this.queued === 0 && this.flushed) return this.flushed();
    if (this.closing && !this.flushed) return;
    this.backoffMs = lived >= STABLE_CONNECTION_MS ? MIN_BACKOFF_MS : Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.retryTimer = setTimeout(() => this.connect(), lived >= STABLE_CONNECTION_MS ? 0 : this.backoffMs);
    if (!this.closing) this.retryTimer.unref();
  }

  /** The daemon answers only rejected lines, each with `{"error":"line N: ..."}`. */
  private onReplies(chunk: string): void {
    const lines = (this.replyTail + chunk).split('\n');
    this.replyTail = (lines.pop() ?? '').slice(-4096);
    for (const line of lines) {
      if (line.trim() === '') continue;
      this.rejectedCount++;
      try {
        const reply = JSON.parse(line) as { error?: unknown };
        this.lastRejection = typeof reply.error === 'string' ? reply.error : line;
      } catch {
        this.lastRejection = line;
      }
    }
  }

  /** The lines that rebuild every live session on a daemon that may never have seen them. */
  private replay(): string {
    this.resync = false;
    let out = '';
    for (const [key, s] of this.sessions) {
      for (const event of rebuild(key, s)) out += `${JSON.stringify(event)}\n`;
    }
    return out;
  }
}

/** Events that bring a fresh daemon to this session's state: a new run, its state, its token totals. */
function rebuild(key: string, s: LiveSession): Record<string, unknown>[] {
  const start: Record<string, unknown> = { type: 'agent_start', session_key: key };
  if (s.title !== null) start.title = s.title;
  const events = [start];
  // Open calls first, oldest first, with their ids: their later closes then count on the new daemon too.
  for (const c of s.calls) {
    if (c.asks) events.push({ type: 'ask_user_question', session_key: key, call_id: c.id });
    else events.push(c.name === null ? { type: 'tool_start', session_key: key, call_id: c.id } : { type: 'tool_start', session_key: key, name: c.name, call_id: c.id });
  }
  if (!rebuiltByCalls(s)) switch (s.state) {
    case 'tool_running':
      events.push(s.tool === null ? { type: 'tool_start', session_key: key } : { type: 'tool_start', session_key: key, name: s.tool });
      break;
    case 'streaming':
      events.push({ type: 'stream_start', session_key: key });
      break;
    case 'waiting_for_user':
      events.push({ type: 'ask_user_question', session_key: key });
      break;
    case 'error':
      events.push({ type: 'error', session_key: key, message: s.message ?? UNKNOWN_ERROR });
      break;
    case 'thinking':
      break; // agent_start already means thinking
  }
  if (s.tokens) events.push({ type: 'token_usage', session_key: key, input: s.tokens.input, output: s.tokens.output });
  return events;
}

/** Whether the open calls replayed above already bring the daemon to the session's state. */
function rebuiltByCalls(s: LiveSession): boolean {
  const last = s.calls[s.calls.length - 1];
  if (last === undefined) return false;
  if (s.state === 'waiting_for_user') return s.calls.some((c) => c.asks);
  return s.state === 'tool_running' && !last.asks && last.name === s.tool;
}

/** A small mirror of the daemon's fold (daemon/state/fold.ts), limited to what `rebuild` needs. */
function track(sessions: Map<string, LiveSession>, e: Readonly<Record<string, unknown>>): void {
  const key = e.session_key;
  if (typeof key !== 'string' || key === '') return;
  if (e.type === 'agent_start') {
    sessions.set(key, { title: text(e.title) ?? sessions.get(key)?.title ?? null, state: 'thinking', tool: null, message: null, tokens: null, calls: [] });
    return;
  }
  let s = sessions.get(key);
  if (!s && e.create_session === true && e.type !== 'agent_end') {
    // As the daemon does: the event starts its session when it is not live.
    s = { title: null, state: 'thinking', tool: null, message: null, tokens: null, calls: [] };
    sessions.set(key, s);
  }
  if (!s) return;
  const enter = (state: LiveState, tool: string | null = null) => {
    s.state = state;
    s.tool = tool;
    s.message = null;
    // Only tool_running and waiting_for_user hold open calls (the daemon's rule).
    if (state !== 'tool_running' && state !== 'waiting_for_user') s.calls = [];
  };
  const open = (id: string, name: string | null, asks: boolean) => {
    s.calls = s.calls.filter((c) => c.id !== id);
    s.calls.push({ id, name, asks });
    if (s.calls.length > MAX_OPEN_CALLS) s.calls.splice(0, s.calls.length - MAX_OPEN_CALLS);
  };
  const callId = text(e.call_id);
  switch (e.type) {
    case 'agent_end':
      sessions.delete(key);
      break;
    case 'thinking':
    case 'stream_end':
      enter('thinking');
      break;
    case 'tool_start':
      if (callId !== null) open(callId, text(e.name) ?? text(e.tool), false);
      if (callId !== null && s.calls.some((c) => c.asks)) enter('waiting_for_user');
      else enter('tool_running', text(e.name) ?? text(e.tool));
      break;
    case 'tool_result':
      if (callId !== null && !(e.status === 'error' && e.name === 'agent')) {
        const index = s.calls.findIndex((c) => c.id === callId);
        if (index < 0) break;
        const plainWait = s.state === 'waiting_for_user' && !s.calls.some((c) => c.asks);
        s.calls.splice(index, 1);
        if (s.calls.length === 0) enter('thinking');
        else if (plainWait || s.calls.some((c) => c.asks)) enter('waiting_for_user');
        else enter('tool_running', s.calls[s.calls.length - 1]!.name);
      } else if (e.status === 'error' && e.name === 'agent') {
        enter('error');
        s.message = typeof e.result === 'string' && e.result !== '' ? e.result : e.result == null || e.result === '' ? UNKNOWN_ERROR : JSON.stringify(e.result);
      } else if (s.state === 'tool_running') {
        enter('streaming');
      }
      break;
    case 'stream_start':
      enter('streaming');
      break;
    case 'ask_user_question':
      if (callId !== null) open(callId, null, true);
      enter('waiting_for_user');
      break;
    case 'error':
      enter('error');
      s.message = text(e.message) ?? UNKNOWN_ERROR;
      break;
    case 'title':
      s.title = text(e.title);
      break;
    case 'token_usage': {
      const input = count(e.input) ?? count(e.input_tokens) ?? 0;
      const output = count(e.output) ?? count(e.output_tokens) ?? 0;
      s.tokens = { input: Math.max(s.tokens?.input ?? 0, input), output: Math.max(s.tokens?.output ?? 0, output) };
      break;
    }
  }
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
}

function defaultAgentName(): string {
  const script = process.argv[1];
  return script ? basename(script) : 'node';
}
