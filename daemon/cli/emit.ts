/**
 * `pocketpaw-status emit`: sends events to the ingest socket from a shell, one built from flags or NDJSON lines from
 * stdin. Every event is checked with the daemon's own decoder first (daemon/ingest/decode.ts), so a mistake is
 * reported here, with its reason, instead of being counted silently by the daemon.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { EVENT_TYPES } from '../../protocol/events.ts';
import { resolveSocketPath, untrustedSocketReason } from '../../protocol/socket-path.ts';
import { decodeLine, decodeObject, type Decoded } from '../ingest/decode.ts';
import { LineFramer } from '../ingest/lines.ts';
import { clean } from './render.ts';

export const EMIT_USAGE = `Usage: pocketpaw-status emit TYPE --session KEY [--name TOOL] [--title T] [--message M]
                             [--input N --output N] [--socket PATH]
       pocketpaw-status emit [--socket PATH] < events.ndjson

Sends one event built from the flags, or, without TYPE, every NDJSON line read from stdin, to the ingest socket:
--socket, else POCKETPAW_STATUS_SOCKET, else the same default as serve.

TYPE is one of: ${EVENT_TYPES.join(', ')}.

  --session KEY    the session key, "<channel>:<id>" (e.g. websocket:abc123); every type but hello needs one
  --name TOOL      tool_start: the tool; tool_result: the tool that finished
  --title T        agent_start, title: the session's title
  --message M      error: the message shown
  --input N        token_usage: input tokens so far in this run
  --output N       token_usage: output tokens so far in this run
  --socket PATH    the ingest socket

Examples:
  pocketpaw-status emit agent_start --session cli:demo --title "Fix the tests"
  pocketpaw-status emit tool_start --session cli:demo --name bash
  pocketpaw-status emit agent_end --session cli:demo

Exit codes: 0 sent; 1 no daemon listens on the socket; 2 an event the protocol rejects (the reason is printed),
or invalid arguments.
`;

const PREFIX = 'pocketpaw-status emit';
/** stdin lines are framed with this cap; the daemon applies its own --max-line-bytes and answers if a line passes it. */
const STDIN_MAX_LINE_BYTES = 16 * 1024 * 1024;
/** After the last line, how long the daemon may take to read everything and close its side. */
const ACK_TIMEOUT_MS = 10_000;

class ExitError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export async function emitCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    await run(argv, env);
  } catch (error) {
    if (!(error instanceof ExitError)) throw error;
    process.stderr.write(`${PREFIX}: ${error.message}\n`);
    process.exit(error.code);
  }
}

async function run(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        socket: { type: 'string' },
        session: { type: 'string' },
        name: { type: 'string' },
        title: { type: 'string' },
        message: { type: 'string' },
        input: { type: 'string' },
        output: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new ExitError(2, `${error instanceof Error ? error.message : String(error)}\nRun 'pocketpaw-status emit --help' for the usage.`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(EMIT_USAGE);
    return;
  }
  if (positionals.length > 1) throw new ExitError(2, `expected one event TYPE, got ${positionals.length}: ${positionals.join(' ')}`);
  const socketPath = resolveSocketPath(values.socket, env);
  const untrusted = untrustedSocketReason(socketPath, env);
  if (untrusted !== null) throw new ExitError(1, untrusted);

  if (positionals.length === 0) {
    const flags = ['session', 'name', 'title', 'message', 'input', 'output'] as const;
    const stray = flags.filter((f) => values[f] !== undefined);
    if (stray.length > 0) throw new ExitError(2, `--${stray[0]} needs an event TYPE (without TYPE, events are read from stdin)`);
    return sendStdin(socketPath);
  }

  const event = eventFromFlags(positionals[0]!, values);
  const problem = describeProblem(decodeObject(event), event.type as string);
  if (problem) throw new ExitError(2, problem);
  const connection = await open(socketPath);
  connection.write(`${JSON.stringify(event)}\n`);
  const replies = await connection.finish();
  if (replies.length > 0) throw new ExitError(2, replies.map((r) => describeReply(r, r.line)).join('\n'));
}

function eventFromFlags(
  type: string,
  values: { session?: string; name?: string; title?: string; message?: string; input?: string; output?: string },
): Record<string, unknown> {
  const event: Record<string, unknown> = { type };
  if (values.session !== undefined) event.session_key = values.session;
  if (values.name !== undefined) event.name = values.name;
  if (values.title !== undefined) event.title = values.title;
  if (values.message !== undefined) event.message = values.message;
  if (values.input !== undefined) event.input = tokenCount('--input', values.input);
  if (values.output !== undefined) event.output = tokenCount('--output', values.output);
  return event;
}

function tokenCount(flag: string, raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new ExitError(2, `${flag} expects a whole number of tokens (0 or more), got ${JSON.stringify(raw)}`);
  return Number(raw.trim());
}

/** Why this event cannot go out as written, or null. Unknown types and a missing key are mistakes on a command line. */
function describeProblem(decoded: Decoded, type: string): string | null {
  if (decoded.kind === 'event') return null;
  if (decoded.kind === 'rejected') return `the protocol rejects this event: ${decoded.message}`;
  if (decoded.reason === 'unknown_type') return `unknown event type ${JSON.stringify(type)}; known types: ${EVENT_TYPES.join(', ')}`;
  return `${type} needs --session KEY (a session key such as websocket:abc123)`;
}

/**
 * Streams stdin to the socket, line by line, skipping (and reporting) lines the protocol rejects.
 *
 * stdin may be slow (a person typing, a pipe from a slow process), and the daemon closes a producer connection that
 * has no complete line within --line-timeout or sends nothing for --producer-idle-timeout. So a connection is opened
 * only once a complete line is ready, and when the daemon closes one for idling (its last line says `connection
 * closed: ...`), the next line goes on a new connection: the close is routine, not a failure.
 */
async function sendStdin(socketPath: string): Promise<void> {
  // Fail at once when nobody listens, before a person types a line for nothing.
  await probe(socketPath);
  if (process.stdin.isTTY) process.stderr.write(`${PREFIX}: reading NDJSON events from stdin; end with Ctrl+D\n`);
  let failed = false;
  const sender = new StdinSender(socketPath);
  const framer = new LineFramer(STDIN_MAX_LINE_BYTES, {
    line(bytes, lineNo) {
      const decoded = decodeLine(bytes);
      if (decoded.kind === 'rejected') {
        failed = true;
        process.stderr.write(`${PREFIX}: stdin line ${lineNo}: ${decoded.message} (not sent)\n`);
        return;
      }
      if (decoded.kind === 'ignored') {
        const why = decoded.reason === 'unknown_type' ? 'its type is unknown to protocol v1' : 'it has no session_key';
        process.stderr.write(`${PREFIX}: stdin line ${lineNo}: sent, but the daemon will ignore it: ${why}\n`);
      }
      const line = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
      sender.send(Buffer.concat([line, NEWLINE]), lineNo);
    },
    oversized(lineNo) {
      failed = true;
      process.stderr.write(`${PREFIX}: stdin line ${lineNo}: longer than ${STDIN_MAX_LINE_BYTES} bytes (not sent)\n`);
    },
  });
  sender.onBacklog = (full) => (full ? process.stdin.pause() : process.stdin.resume());
  await new Promise<void>((resolve, reject) => {
    process.stdin.on('data', (chunk: Buffer) => framer.push(chunk));
    process.stdin.on('end', () => {
      framer.end();
      resolve();
    });
    process.stdin.on('error', reject);
  });
  const { replies, lost } = await sender.finish();
  for (const { reply, stdinLine } of replies) process.stderr.write(`${PREFIX}: ${describeReply(reply, stdinLine, 'stdin line')}\n`);
  if (lost > 0) throw new ExitError(1, `${lost} line(s) sent just as the daemon closed an idle connection may not have reached it; send them again`);
  if (failed || replies.length > 0) process.exit(2);
}

/** Connects and leaves at once: the same errors as a real connection (no daemon, permission), and no line owed. */
async function probe(path: string): Promise<void> {
  const connection = await open(path);
  await connection.finish();
}

const NEWLINE = Buffer.from('\n');
/** How many lines queued for the socket pause stdin until they are written. */
const BACKLOG_LINES = 1000;
/** The lines of a connection kept to send again if the daemon turns out not to have read them (see `retire`). */
const KEPT_LINES = 256;
const KEPT_BYTES = 4 * 1024 * 1024;

interface SentLine {
  readonly bytes: Buffer;
  readonly stdinLine: number;
  /** performance.now() when written. */
  readonly at: number;
}

/** One connection of a stdin run and what it carried. */
interface Link {
  readonly connection: Connection;
  /** The daemon numbers lines per connection from 1: stdinLineOf[n] is the stdin line of its line n. */
  readonly stdinLineOf: number[];
  /** The latest lines written, oldest first, within KEPT_LINES and KEPT_BYTES. */
  readonly recent: SentLine[];
  recentBytes: number;
  /** How many lines were dropped from `recent`. */
  forgotten: number;
}

/** Writes stdin's lines in order, on one connection at a time, opening the next when the daemon closed the last. */
class StdinSender {
  private readonly queue: { bytes: Buffer; stdinLine: number }[] = [];
  private readonly links: Link[] = [];
  private current: Link | null = null;
  private pumping: Promise<void> | null = null;
  private failure: unknown = null;
  private lost = 0;
  private paused = false;
  onBacklog: (full: boolean) => void = () => {};

  constructor(private readonly path: string) {}

  send(bytes: Buffer, stdinLine: number): void {
    // After a failure nothing more can go out: stdin is read to its end only to finish the run.
    if (this.failure !== null) return;
    this.queue.push({ bytes, stdinLine });
    this.backlog();
    this.kick();
  }

  /** Pauses stdin while BACKLOG_LINES lines wait for the socket, resumes it below. */
  private backlog(): void {
    const full = this.failure === null && this.queue.length >= BACKLOG_LINES;
    if (full !== this.paused) this.onBacklog((this.paused = full));
  }

  private kick(): void {
    this.pumping ??= this.pump()
      .catch((error: unknown) => {
        this.failure = error;
        this.queue.length = 0;
        this.backlog();
      })
      .finally(() => (this.pumping = null));
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && this.failure === null) {
      const link = await this.link();
      const { bytes, stdinLine } = this.queue.shift()!;
      this.backlog();
      link.stdinLineOf.push(stdinLine);
      link.recent.push({ bytes, stdinLine, at: performance.now() });
      link.recentBytes += bytes.length;
      while (link.recent.length > KEPT_LINES || link.recentBytes > KEPT_BYTES) {
        link.recentBytes -= link.recent.shift()!.bytes.length;
        link.forgotten++;
      }
      if (!link.connection.write(bytes)) await link.connection.drained();
    }
  }

  /** The open connection, or a new one when there is none or the daemon closed it. */
  private async link(): Promise<Link> {
    const current = this.current;
    if (current !== null && current.connection.closedBy() === null) return current;
    if (current !== null) this.retire(current);
    const connection = await open(this.path);
    const link: Link = { connection, stdinLineOf: [0], recent: [], recentBytes: 0, forgotten: 0 };
    this.links.push(link);
    this.current = link;
    return link;
  }

  /**
   * Done with a connection the daemon closed. The lines it cannot have read go out again, ahead of the rest: the
   * daemon closes for idling only after reading nothing for the whole --producer-idle-timeout (its notice says how
   * long) and reads nothing more once it decided, so a line written less than that before the notice arrived never
   * reached it. For any other close (e.g. evicted at the producer limit) nothing can be told, and nothing is resent.
   */
  private retire(link: Link): void {
    if (this.current === link) this.current = null;
    const notice = link.connection.closedBy();
    const idle = notice === null ? null : /nothing sent for (\d+(?:\.\d+)?) s/.exec(notice.error);
    if (notice === null || idle === null) return;
    const since = notice.at - Number(idle[1]) * 1000;
    const unread = link.recent.filter((l) => l.at > since);
    if (unread.length === 0) return;
    // Lines older than those kept may have been unread too, when every kept one was.
    if (unread.length === link.recent.length) this.lost += link.forgotten;
    this.queue.unshift(...unread.map(({ bytes, stdinLine }) => ({ bytes, stdinLine })));
  }

  /** Once stdin ended: every line written, every connection closed; the daemon's answers with stdin's line numbers. */
  async finish(): Promise<{ replies: { reply: Reply; stdinLine: number | null }[]; lost: number }> {
    for (;;) {
      while (this.pumping !== null) await this.pumping;
      if (this.failure !== null) throw this.failure;
      const link = this.current;
      if (link === null) break;
      await link.connection.finish();
      // The daemon may have closed it for idling just as the last lines went: those go again on a new connection.
      this.retire(link);
      if (this.queue.length === 0) break;
      this.kick();
    }
    const replies: { reply: Reply; stdinLine: number | null }[] = [];
    for (const link of this.links) {
      for (const reply of await link.connection.finish()) {
        // The daemon closing an idle connection is routine: the next line, if any, went on a new one.
        if (reply === link.connection.closedBy()) continue;
        replies.push({ reply, stdinLine: reply.line !== null ? (link.stdinLineOf[reply.line] ?? null) : null });
      }
    }
    return { replies, lost: this.lost };
  }
}

interface Reply {
  /** The daemon's whole answer, e.g. `line 3: invalid JSON`. */
  readonly error: string;
  readonly line: number | null;
  readonly text: string;
  /** performance.now() when it arrived. */
  readonly at: number;
}

interface Connection {
  write(data: string | Buffer): boolean;
  /** Resolves once the socket takes writes again (or closed). */
  drained(): Promise<void>;
  /** The daemon's `connection closed: ...` answer once it closed this connection for a reason of its own, else null. */
  closedBy(): Reply | null;
  /** Half-closes, then resolves with the daemon's error answers once it has read everything and closed (once: later calls give the same). */
  finish(): Promise<Reply[]>;
}

function open(path: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    socket.once('error', (error: NodeJS.ErrnoException) => reject(new ExitError(1, describeConnectError(path, error))));
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      const replies: Reply[] = [];
      let tail = '';
      let lost: Error | null = null;
      let notice: Reply | null = null;
      let isClosed = false;
      let finishing: Promise<Reply[]> | null = null;
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const lines = (tail + chunk).split('\n');
        tail = lines.pop() ?? '';
        for (const line of lines) {
          if (line.trim() === '') continue;
          const reply = parseReply(line);
          replies.push(reply);
          if (reply.line === null && reply.error.startsWith('connection closed: ')) notice = reply;
        }
      });
      socket.on('error', (error) => (lost = error));
      const closed = new Promise<void>((r) =>
        socket.once('close', () => {
          isClosed = true;
          r();
        }),
      );
      resolve({
        write: (data) => socket.write(data),
        drained: () =>
          new Promise<void>((r) => {
            if (isClosed) return r();
            const done = () => {
              socket.off('drain', done);
              socket.off('close', done);
              r();
            };
            socket.on('drain', done);
            socket.on('close', done);
          }),
        closedBy: () => notice,
        finish: () =>
          (finishing ??= (async () => {
            socket.end();
            const timer = setTimeout(() => socket.destroy(new Error(`the daemon did not finish reading within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
            await closed;
            clearTimeout(timer);
            if (lost && replies.length === 0) throw new ExitError(1, `lost the connection to the daemon on ${path}: ${(lost as Error).message}`);
            return replies;
          })()),
      });
    });
  });
}

/** The daemon's answer comes from a peer: cleaned as `status` cleans its table, so it cannot drive the terminal. */
function describeReply(reply: Reply, line: number | null, what = 'line'): string {
  if (reply.line === null || line === null) return `the daemon answered: ${clean(reply.error)}`;
  return `the daemon rejected ${what} ${line}: ${clean(reply.text)}`;
}

function parseReply(line: string): Reply {
  let error = line;
  try {
    const value = JSON.parse(line) as { error?: unknown };
    if (typeof value.error === 'string') error = value.error;
  } catch {
    // Not JSON: report it as it came.
  }
  const m = /^line (\d+): ([\s\S]*)$/.exec(error);
  return { error, line: m ? Number(m[1]) : null, text: m ? m[2]! : error, at: performance.now() };
}

function describeConnectError(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return `no daemon is listening on ${path}; start one with 'pocketpaw-status serve', or pass --socket PATH (or set POCKETPAW_STATUS_SOCKET)`;
    case 'EACCES':
      return `permission denied on ${path}: this user may not write events there (see the socket's mode and group)`;
    default:
      return `cannot connect to ${path}: ${error.message}`;
  }
}
