/**
 * `pocketpaw-status hook claude-code`: turns one Claude Code hook payload (JSON on stdin) into protocol events on the
 * ingest socket (docs/claude-code.md has the mapping and why).
 *
 * Claude Code waits for its hooks before every tool call, so this must never disturb the agent: it always exits 0,
 * never writes to stdout (Claude Code reads a hook's stdout as instructions), and gives up quietly when no daemon
 * listens. It must also be fast: its imports are Node built-ins, protocol/socket-path.ts and hook-transcript.ts only
 * (no schema library, no HTTP server, no logger), daemon/cli.ts imports this module only for this subcommand, and
 * the build gives it a bundle of its own (dist/hook.js). Nothing is validated
 * here beyond shape: the daemon validates every line anyway.
 */
import { appendFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { resolveSocketPath, untrustedSocketReason } from '../../protocol/socket-path.ts';
import { turnTokens } from './hook-transcript.ts';

/** The hook's own log never grows past about this: past it, it starts afresh. */
const HOOK_LOG_BYTES = 64 * 1024;

/** A socket the hook will not write to; the reason goes to the hook's log, never to Claude Code. */
class RefusedSocket extends Error {}

/** Whatever happens (a stdin that never closes, a daemon that never reads), the hook is gone after this long. */
export const HOOK_DEADLINE_MS = 2000;
/** Larger payloads (a huge Write) are not parsed; none of our fields needs them. */
const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;
const TITLE_CHARS = 80;
const MESSAGE_CHARS = 500;
/** Tools whose call is a question to the person: the session waits on them until the call ends. */
const ASKING_TOOLS = new Set(['AskUserQuestion', 'ExitPlanMode']);
/** The call id of an MCP elicitation dialog (one at a time per session). */
const ELICITATION = 'elicitation';
/** The shells Claude Code runs hooks through (`sh -c`): the pid to watch is the nearest ancestor that is none of them. */
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish', 'busybox', 'tcsh', 'csh']);

/** Human words for StopFailure's `error` type, when Claude Code gives no text of its own. */
const STOP_FAILURES: Readonly<Record<string, string>> = {
  rate_limit: 'Rate limited',
  authentication_failed: 'Not logged in',
  billing_error: 'Billing problem: check the account\'s plan or credits',
  invalid_request: 'The API rejected the request',
  server_error: 'The API had a server error',
  max_output_tokens: 'The answer hit the output token limit',
  unknown: 'The API request failed',
};

export const HOOK_USAGE = `Usage: pocketpaw-status hook claude-code [--socket PATH]
       pocketpaw-status hook claude-code --install [--settings PATH | --project] [--socket PATH] [--print]
       pocketpaw-status hook claude-code --uninstall [--settings PATH | --project] [--print]

Reads one Claude Code hook payload on stdin and sends the matching events to the ingest socket (--socket, else
POCKETPAW_STATUS_SOCKET, else the same default as serve). Session key: claude-code:<session_id>. Tool calls are
tracked by tool_use_id, so parallel calls and subagents show right; events that mean work goes on recreate the
session if it is gone (create_session), and the Claude Code process is watched (pid). See docs/claude-code.md.

  UserPromptSubmit                      -> agent_start (title: the prompt's first line, cut to 80 characters)
  PreToolUse                            -> tool_start (AskUserQuestion, ExitPlanMode: ask_user_question)
  PostToolUse, PostToolUseFailure       -> tool_result for that call, and the turn's token_usage
  PostToolUseFailure with is_interrupt  -> agent_end (the person pressed Esc)
  PermissionRequest                     -> ask_user_question
  PermissionDenied                      -> tool_result for that call (back to thinking)
  Notification permission_prompt        -> ask_user_question
  Notification elicitation_dialog       -> ask_user_question, ended by elicitation_complete / elicitation_response
  SubagentStart / SubagentStop          -> tool_start Agent / tool_result for that subagent (and token_usage)
  Stop                                  -> agent_end; with background_tasks: stays busy with those tasks
  StopFailure                           -> error (error_details, else last_assistant_message, else the error type in words)
  SessionEnd                            -> agent_end
  anything else                         -> ignored

The hook always exits 0 and prints nothing on stdout, whether or not the daemon runs.

--install adds this hook to Claude Code's settings for every event above (default ~/.claude/settings.json;
--project: .claude/settings.json here; --settings PATH), keeping everything else and a backup (PATH.bak).
--uninstall removes only this hook's entries. --print shows the resulting settings instead of writing them.
`;

type Payload = Readonly<Record<string, unknown>>;
type HookEvent = Record<string, unknown>;

/** What the hook learns besides the payload: the Claude Code process and the turn's token counts. */
export interface HookContext {
  readonly pid?: number | null;
  readonly tokens?: { readonly input: number; readonly output: number } | null;
}

/** Whether a payload's events carry the turn's token counts (read from the transcript, so only where they grow). */
export function wantsTokens(payload: unknown): boolean {
  const p = asObject(payload);
  if (!p) return false;
  switch (p.hook_event_name) {
    case 'PostToolUse':
    case 'SubagentStop':
      return true;
    case 'PostToolUseFailure':
      return p.is_interrupt !== true;
    case 'Stop':
      return backgroundTasks(p).length > 0;
    default:
      return false;
  }
}

/** The protocol events for one hook payload, in order; none when the hook is not one we report. */
export function mapClaudeCodeHook(payload: unknown, context: HookContext = {}): HookEvent[] {
  const p = asObject(payload);
  if (!p) return [];
  const id = p.session_id;
  if (typeof id !== 'string' || id === '') return [];
  const session_key = `claude-code:${id}`;
  const pid = context.pid ?? null;
  // Events that mean the work goes on: they bring the session back if it is not live (a Stop another hook blocked).
  const going = (type: string, fields: HookEvent = {}): HookEvent =>
    pid === null ? { type, session_key, ...fields, create_session: true } : { type, session_key, ...fields, create_session: true, pid };
  const plain = (type: string, fields: HookEvent = {}): HookEvent => (pid === null ? { type, session_key, ...fields } : { type, session_key, ...fields, pid });
  const withTokens = (events: HookEvent[]): HookEvent[] => {
    const t = context.tokens;
    if (t) events.push({ type: 'token_usage', session_key, input: t.input, output: t.output });
    return events;
  };
  const callId = text(p.tool_use_id);
  const agentId = text(p.agent_id);
  switch (p.hook_event_name) {
    case 'UserPromptSubmit': {
      const title = promptTitle(p.prompt);
      return [plain('agent_start', title ? { title } : {})];
    }
    case 'PreToolUse': {
      const name = text(p.tool_name);
      const call = callId ? { call_id: callId } : {};
      if (name !== null && ASKING_TOOLS.has(name)) return [going('ask_user_question', call)];
      return [going('tool_start', name ? { name, ...call } : call)];
    }
    case 'PostToolUse':
    case 'PostToolUseFailure':
      if (p.is_interrupt === true) return [{ type: 'agent_end', session_key }];
      if (callId) return withTokens([plain('tool_result', { call_id: callId })]);
      // Without a call id a subagent's call cannot be told from the parent's: better no news than a wrong one.
      return agentId ? [] : withTokens([plain('thinking')]);
    case 'PermissionRequest':
      return [going('ask_user_question')];
    case 'PermissionDenied':
      return [callId ? plain('tool_result', { call_id: callId }) : plain('thinking')];
    case 'Notification':
      switch (p.notification_type) {
        case 'permission_prompt':
          return [going('ask_user_question')];
        case 'elicitation_dialog':
          return [going('ask_user_question', { call_id: ELICITATION })];
        case 'elicitation_complete':
        case 'elicitation_response':
          return [plain('tool_result', { call_id: ELICITATION })];
        default:
          return []; // idle_prompt, auth_success and anything new wait on nobody
      }
    case 'SubagentStart':
      return agentId ? [going('tool_start', { name: 'Agent', call_id: `agent:${agentId}` })] : [];
    case 'SubagentStop':
      return agentId ? withTokens([plain('tool_result', { call_id: `agent:${agentId}` })]) : [];
    case 'Stop': {
      const tasks = backgroundTasks(p);
      if (tasks.length === 0) return [{ type: 'agent_end', session_key }];
      // The answer is done but background work goes on: busy with it until a Stop without any.
      return withTokens(tasks.map((t) => going('tool_start', { name: t.name, call_id: t.callId })));
    }
    case 'StopFailure':
      return [going('error', { message: cut(stopFailureMessage(p), MESSAGE_CHARS) })];
    case 'SessionEnd':
      return [{ type: 'agent_end', session_key }];
    default:
      return [];
  }
}

/**
 * Stop's `background_tasks` (Claude Code 2.1.145+): `{id, type, ...}` per running task. A subagent's call id is the
 * one SubagentStart opened (`agent:<id>`), so its SubagentStop closes it when the ids agree; a shell task shows Bash.
 */
function backgroundTasks(p: Payload): { callId: string; name: string }[] {
  const list = p.background_tasks;
  if (!Array.isArray(list)) return [];
  const tasks: { callId: string; name: string }[] = [];
  list.forEach((item: unknown, index) => {
    const t = asObject(item);
    const status = t ? text(t.status) : null;
    if (status !== null && status !== 'running' && status !== 'pending') return;
    const id = (t ? (text(t.id) ?? text(t.task_id) ?? text(t.agent_id)) : null) ?? String(index);
    const type = (t ? text(t.type) : null) ?? '';
    const shell = type === 'shell' || type === 'bash' || type === 'local_bash';
    tasks.push({ callId: shell ? `task:${id}` : `agent:${id}`, name: shell ? 'Bash' : 'Agent' });
  });
  return tasks;
}

/** Human text, never a bare code: error_details, else what the person saw, else the error type in words. */
function stopFailureMessage(p: Payload): string {
  const given = firstText(p.error_details, p.last_assistant_message);
  if (given) return given;
  const type = text(p.error);
  if (type === null) return STOP_FAILURES.unknown!;
  return STOP_FAILURES[type] ?? `The API request failed (${type.replace(/_/g, ' ')})`;
}

function asObject(value: unknown): Payload | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Payload) : null;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
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
  if (argv.some((a) => a === '--install' || a === '--uninstall' || a === '--print')) {
    // Run by a person, not by Claude Code: it may print, and fail with exit 1.
    return (await import('./hook-install.ts')).installCommand(argv);
  }
  // Exit 0 whatever happens: a failing hook shows up in Claude Code, and this one is only an observer.
  const quit = () => process.exit(0);
  setTimeout(quit, HOOK_DEADLINE_MS).unref();
  process.on('uncaughtException', quit);
  process.on('unhandledRejection', quit);
  try {
    const payload = parse(await readStdin());
    if (mapClaudeCodeHook(payload).length > 0) {
      const path = resolveSocketPath(socketFlag(argv));
      // A default-path socket another user owns is not the daemon: nothing is sent (see protocol/socket-path.ts).
      const untrusted = untrustedSocketReason(path);
      if (untrusted !== null) throw new RefusedSocket(untrusted);
      const tokens = wantsTokens(payload) ? turnTokens(asObject(payload)?.transcript_path) : null;
      const events = mapClaudeCodeHook(payload, { pid: claudeCodePid(), tokens });
      await send(path, events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    }
  } catch (error) {
    // stdout belongs to Claude Code, and a hook's stderr only clutters its transcript: a refused socket (somebody
    // else's) is said in the hook's own log; a daemon that is not running is no news worth a line per tool call.
    if (error instanceof RefusedSocket) writeHookLog(error.message);
  }
  quit();
}

/** `$XDG_STATE_HOME/pocketpaw-status/hook.log` (else under ~/.local/state): private to the user, and bounded. */
export function hookLogPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'pocketpaw-status', 'hook.log');
}

function writeHookLog(message: string): void {
  const file = hookLogPath();
  const line = `${new Date().toISOString()} hook claude-code: ${message}\n`;
  try {
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    if (size + line.length > HOOK_LOG_BYTES) writeFileSync(file, line, { mode: 0o600 });
    else appendFileSync(file, line, { mode: 0o600 });
  } catch {
    // No log to be had (a read-only home): the hook still stays silent.
  }
}

/**
 * The Claude Code process: the nearest ancestor that is not a shell (Claude Code runs hooks through `sh -c`). Linux
 * only (/proc); elsewhere, or when anything is unclear, null: no pid is better than a shell's, which dies at once.
 */
export function claudeCodePid(start: number = process.ppid): number | null {
  let pid = start;
  for (let depth = 0; depth < 8 && pid > 1; depth++) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return null;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    if (!SHELLS.has(comm)) return pid;
    pid = Number(stat.slice(close + 2).split(' ')[1]);
    if (!Number.isInteger(pid)) return null;
  }
  return null;
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
