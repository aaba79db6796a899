/**
 * `pocketpaw-status emit`: sends events to the ingest socket from a shell, one built from flags or NDJSON lines from
 * stdin. Every event is checked with the daemon's own decoder first (daemon/ingest/decode.ts), so a mistake is
 * reported here, with its reason, instead of being counted silently by the daemon.
 */
import net from 'node:net';
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

/** Streams stdin to the socket, line by line, skipping (and reporting) lines the protocol rejects. */
async function sendStdin(socketPath: string): Promise<void> {
  const connection = await open(socketPath);
  if (process.stdin.isTTY) process.stderr.write(`${PREFIX}: reading NDJSON events from stdin; end with Ctrl+D\n`);
  let failed = false;
  // The daemon numbers lines per connection; skipped lines make its numbers differ from stdin's.
  const stdinLineOf: number[] = [0];
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
      stdinLineOf.push(lineNo);
      const line = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
      if (!connection.write(Buffer.concat([line, NEWLINE]))) process.stdin.pause();
    },
    oversized(lineNo) {
      failed = true;
      process.stderr.write(`${PREFIX}: stdin line ${lineNo}: longer than ${STDIN_MAX_LINE_BYTES} bytes (not sent)\n`);
    },
  });
  connection.onDrain(() => process.stdin.resume());
  await new Promise<void>((resolve, reject) => {
    process.stdin.on('data', (chunk: Buffer) => framer.push(chunk));
    process.stdin.on('end', () => {
      framer.end();
      resolve();
    });
    process.stdin.on('error', reject);
  });
  const replies = await connection.finish();
  for (const reply of replies) {
    const line = reply.line !== null ? stdinLineOf[reply.line] : undefined;
    process.stderr.write(`${PREFIX}: ${describeReply(reply, line ?? null, 'stdin line')}\n`);
  }
  if (failed || replies.length > 0) process.exit(2);
}

const NEWLINE = Buffer.from('\n');

interface Reply {
  /** The daemon's whole answer, e.g. `line 3: invalid JSON`. */
  readonly error: string;
  readonly line: number | null;
  readonly text: string;
}

interface Connection {
  write(data: string | Buffer): boolean;
  onDrain(listener: () => void): void;
  /** Half-closes, then resolves with the daemon's error answers once it has read everything and closed. */
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
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const lines = (tail + chunk).split('\n');
        tail = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') replies.push(parseReply(line));
      });
      socket.on('error', (error) => (lost = error));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      resolve({
        write: (data) => socket.write(data),
        onDrain: (listener) => socket.on('drain', listener),
        async finish() {
          socket.end();
          const timer = setTimeout(() => socket.destroy(new Error(`the daemon did not finish reading within ${ACK_TIMEOUT_MS / 1000} s`)), ACK_TIMEOUT_MS);
          await closed;
          clearTimeout(timer);
          if (lost && replies.length === 0) throw new ExitError(1, `lost the connection to the daemon on ${path}: ${(lost as Error).message}`);
          return replies;
        },
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
  return { error, line: m ? Number(m[1]) : null, text: m ? m[2]! : error };
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
