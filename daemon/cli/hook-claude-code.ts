/**
 * `pocketpaw-status hook claude-code`: turns one Claude Code hook payload (JSON on stdin) into one protocol event on
 * the ingest socket.
 *
 * Claude Code waits for its hooks before every tool call, so this must never disturb the agent: it always exits 0,
 * never writes to stdout (Claude Code reads a hook's stdout as instructions), and gives up quietly when no daemon
 * listens. It must also be fast: its imports are Node built-ins and protocol/socket-path.ts only (no schema library,
 * no HTTP server, no logger), and daemon/cli.ts imports this module only for this subcommand. Nothing is validated
 * here beyond shape: the daemon validates every line anyway.
 */
import net from 'node:net';
import { resolveSocketPath, untrustedSocketReason } from '../../protocol/socket-path.ts';

/** Whatever happens (a stdin that never closes, a daemon that never reads), the hook is gone after this long. */
export const HOOK_DEADLINE_MS = 2000;
/** Larger payloads (a huge Write) are not parsed; none of our fields needs them. */
const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
const TITLE_CHARS = 80;
const MESSAGE_CHARS = 500;

export const HOOK_USAGE = `Usage: pocketpaw-status hook claude-code [--socket PATH]

Reads one Claude Code hook payload on stdin and sends the matching event to the ingest socket (--socket, else
POCKETPAW_STATUS_SOCKET, else the same default as serve). Session key: claude-code:<session_id>.

  UserPromptSubmit                   -> agent_start (title: the prompt's first line, cut to 80 characters)
  PreToolUse                         -> tool_start (name: tool_name)
  PostToolUse, PostToolUseFailure    -> thinking
  Notification, PermissionRequest    -> ask_user_question
  Stop, SessionEnd                   -> agent_end
  StopFailure                        -> error (message: error_details, else error)
  anything else                      -> ignored

It always exits 0 and prints nothing on stdout, whether or not the daemon runs.
`;

type Payload = Readonly<Record<string, unknown>>;

/** The protocol event for one hook payload, or null when the hook is not one we report. */
export function mapClaudeCodeHook(payload: unknown): Record<string, unknown> | null {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const p = payload as Payload;
  const id = p.session_id;
  if (typeof id !== 'string' || id === '') return null;
  const session_key = `claude-code:${id}`;
  switch (p.hook_event_name) {
    case 'UserPromptSubmit': {
      const title = promptTitle(p.prompt);
      return title ? { type: 'agent_start', session_key, title } : { type: 'agent_start', session_key };
    }
    case 'PreToolUse':
      return typeof p.tool_name === 'string' && p.tool_name !== ''
        ? { type: 'tool_start', session_key, name: p.tool_name }
        : { type: 'tool_start', session_key };
    case 'PostToolUse':
    case 'PostToolUseFailure':
      return { type: 'thinking', session_key };
    case 'Notification':
    case 'PermissionRequest':
      return { type: 'ask_user_question', session_key };
    case 'Stop':
    case 'SessionEnd':
      return { type: 'agent_end', session_key };
    case 'StopFailure': {
      const message = firstText(p.error_details, p.error);
      return message ? { type: 'error', session_key, message: cut(message, MESSAGE_CHARS) } : { type: 'error', session_key };
    }
    default:
      return null;
  }
}

/** The prompt's first non-blank line, cut to 80 characters (code points, so no emoji is split in half). */
function promptTitle(prompt: unknown): string | null {
  if (typeof prompt !== 'string') return null;
  const line = prompt.trim().split(/\r\n|\r|\n/, 1)[0]?.trim() ?? '';
  return line === '' ? null : cut(line, TITLE_CHARS);
}

function firstText(...values: unknown[]): string | null {
  for (const v of values) if (typeof v === 'string' && v.trim() !== '') return v.trim();
  return null;
}

function cut(text: string, chars: number): string {
  const points = Array.from(text);
  return points.length <= chars ? text : points.slice(0, chars).join('');
}

/** `hook <kind> [--socket PATH]`. */
export async function hookCommand(argv: readonly string[]): Promise<void> {
  const [kind, ...rest] = argv;
  if (kind === 'claude-code') return runClaudeCodeHook(rest);
  if (kind === undefined || kind === '--help' || kind === '-h') {
    process.stdout.write(HOOK_USAGE);
    return;
  }
  process.stderr.write(`pocketpaw-status hook: unknown hook kind ${JSON.stringify(kind)} (known: claude-code)\n\n${HOOK_USAGE}`);
  process.exit(2);
}

async function runClaudeCodeHook(argv: readonly string[]): Promise<void> {
  // Exit 0 whatever happens: a failing hook shows up in Claude Code, and this one is only an observer.
  const quit = () => process.exit(0);
  setTimeout(quit, HOOK_DEADLINE_MS).unref();
  process.on('uncaughtException', quit);
  process.on('unhandledRejection', quit);
  try {
    const event = mapClaudeCodeHook(parse(await readStdin()));
    const path = resolveSocketPath(socketFlag(argv));
    // A default-path socket another user owns is not the daemon: nothing is sent (see protocol/socket-path.ts).
    const untrusted = untrustedSocketReason(path);
    if (untrusted !== null) throw new Error(untrusted);
    if (event) await send(path, `${JSON.stringify(event)}\n`);
  } catch {
    // Nothing to tell anyone: stdout belongs to Claude Code, and a hook's stderr only clutters its transcript.
  }
  quit();
}

function socketFlag(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--socket') return argv[i + 1] ?? null;
    if (arg.startsWith('--socket=')) return arg.slice('--socket='.length);
  }
  return null;
}

function readStdin(): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_PAYLOAD_BYTES) chunks.push(chunk);
    });
    process.stdin.on('end', () => resolve(size <= MAX_PAYLOAD_BYTES ? Buffer.concat(chunks) : null));
    process.stdin.on('error', () => resolve(null));
  });
}

function parse(bytes: Buffer | null): unknown {
  if (bytes === null) return null;
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

/** Resolves once the line is handed to the kernel (the daemon reads it even after we exit), or on any failure. */
function send(path: string, line: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ path });
    socket.on('error', () => resolve());
    socket.on('connect', () => socket.end(line, () => resolve()));
  });
}
