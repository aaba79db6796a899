/**
 * Test harness: spawns the real daemon (through tsx, as `npm start` does) on a temporary socket and a free port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
export const CLI = join(ROOT, 'daemon/cli.ts');

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface TestDaemon {
  readonly url: string;
  readonly socket: string;
  readonly dir: string;
  readonly proc: ChildProcess;
  /** Every stderr line so far. */
  readonly stderr: string[];
  logs(): LogLine[];
  /** Heap and RSS after full garbage collections (only with `instrumented: true`). */
  memory(): Promise<MemoryUsage>;
  /** Sends SIGTERM (or another signal) and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; socketLeft: boolean }>;
}

/** Environment without any POCKETPAW_STATUS_* variable of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POCKETPAW_STATUS_')) env[k] = v;
  // Whatever a test starts keeps its state (and the hook its log) in a folder of this test file, never in the
  // user's ~/.local/state, where one run's sessions would come back in another.
  return { ...env, XDG_STATE_HOME: testStateHome(), ...extra };
}

let stateHome: string | null = null;
function testStateHome(): string {
  return (stateHome ??= tempDir());
}

const tempDirs: string[] = [];
// Each test file runs in its own process: whatever it made under /tmp goes when it ends, pass or fail.
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pps-test-'));
  tempDirs.push(dir);
  return dir;
}

/**
 * Every daemon a test or benchmark starts keeps no state unless it asks for a folder (`--state-dir` or its variable):
 * sessions must never carry over from one test to the next, nor from the user's own daemon.
 */
export function stateArgs(args: readonly string[], env: Record<string, string> = {}): string[] {
  const asked = args.some((a) => a === '--state-dir' || a.startsWith('--state-dir=')) || 'POCKETPAW_STATUS_STATE_DIR' in env;
  return asked || args.includes('--help') || args.includes('-h') ? [] : ['--state-dir', 'none'];
}

export interface StartOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Use this socket path instead of a fresh one. */
  socket?: string;
  /** Run with the memory probe (test/helpers/instrumented.ts): enables `memory()`. */
  instrumented?: boolean;
}

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export async function startDaemon(options: StartOptions = {}): Promise<TestDaemon> {
  const dir = tempDir();
  const socket = options.socket ?? join(dir, 'ingest.sock');
  const entry = options.instrumented ? ['--expose-gc', '--import', 'tsx', join(ROOT, 'test/helpers/instrumented.ts')] : ['--import', 'tsx', CLI];
  const proc = spawn(process.execPath, [...entry, 'serve', '--port', '0', '--socket', socket, ...stateArgs(options.args ?? [], options.env), ...(options.args ?? [])], {
    cwd: ROOT,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  let onLine: ((line: string) => void) | null = null;
  eachLine(proc.stderr!, (line) => {
    stderr.push(line);
    onLine?.(line);
  });
  const stdoutLines: string[] = [];
  eachLine(proc.stdout!, (line) => stdoutLines.push(line));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready after 20 s; stderr:\n${stderr.join('\n')}`)), 20_000);
    const check = (line: string) => {
      const parsed = parseLog(line);
      if (parsed && parsed.msg.startsWith('ready') && typeof parsed.http === 'string') {
        clearTimeout(timer);
        resolveUrl(parsed.http);
      }
    };
    onLine = check;
    stderr.forEach(check);
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before ready; stderr:\n${stderr.join('\n')}`));
    });
  });
  onLine = null;

  const daemon: TestDaemon = {
    url,
    socket,
    dir,
    proc,
    stderr,
    logs: () => stderr.map(parseLog).filter((l): l is LogLine => l !== null),
    async memory() {
      if (!options.instrumented) throw new Error('memory() needs startDaemon({ instrumented: true })');
      const seen = stdoutLines.length;
      proc.kill('SIGUSR2');
      await waitFor(() => stdoutLines.length > seen, { what: 'the memory probe' });
      return JSON.parse(stdoutLines[seen]!) as MemoryUsage;
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code, sig] = await exited;
      // Looked at before the temporary folder goes: did the daemon remove its socket file itself?
      const socketLeft = existsSync(socket);
      rmSync(dir, { recursive: true, force: true });
      return { code, signal: sig, socketLeft };
    },
  };
  return daemon;
}

function parseLog(line: string): LogLine | null {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && 'msg' in value ? (value as LogLine) : null;
  } catch {
    return null;
  }
}

/** Runs the CLI to completion (for start-up failures, --help and the like). */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `serve` started here keeps no state unless the test gives it a folder (see stateArgs).
  const cliArgs = args[0] === 'serve' ? ['serve', ...stateArgs(args, options.env), ...args.slice(1)] : args;
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...cliArgs], {
    cwd: ROOT,
    env: cleanEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  proc.stdin.end(options.input ?? '');
  const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const [code] = (await once(proc, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A producer connection to the ingest socket that collects the daemon's answers. */
export class Producer {
  readonly socket: net.Socket;
  readonly replies: string[] = [];
  private buffered = '';
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      const lines = (this.buffered + d).split('\n');
      this.buffered = lines.pop()!;
      this.replies.push(...lines);
    });
    socket.on('error', () => {});
    this.closed = new Promise((r) => socket.once('close', () => r()));
  }

  static async connect(path: string): Promise<Producer> {
    const socket = net.connect({ path });
    await once(socket, 'connect');
    return new Producer(socket);
  }

  /** Writes objects as JSON lines, strings and buffers as they are. */
  send(...items: (object | string | Buffer)[]): void {
    for (const item of items) {
      if (typeof item === 'string' || Buffer.isBuffer(item)) this.socket.write(item);
      else this.socket.write(`${JSON.stringify(item)}\n`);
    }
  }

  /** Waits until at least `n` answers arrived. */
  async waitReplies(n: number, timeoutMs = 5000): Promise<string[]> {
    await waitFor(() => this.replies.length >= n, { timeoutMs, what: `${n} replies (got ${JSON.stringify(this.replies)})` });
    return this.replies;
  }

  end(): Promise<void> {
    this.socket.end();
    return this.closed;
  }
}

/** Sends lines on a fresh connection and closes it, as a one-shot producer (`nc -U`) does. */
export async function sendOnce(path: string, ...items: (object | string | Buffer)[]): Promise<string[]> {
  const p = await Producer.connect(path);
  p.send(...items);
  await p.end();
  return p.replies;
}

/** Polls until `check` returns a truthy value; fails after a generous bound (not a timing assertion). */
export async function waitFor<T>(check: () => T | Promise<T>, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface StatusBody {
  global: { state: string; active_sessions: number; max_concurrent: number; uptime_seconds: number };
  sessions: {
    session_key: string;
    session_id: string;
    channel: string;
    title: string | null;
    state: string;
    tool_name: string | null;
    duration_seconds: number;
    token_usage: { input: number; output: number } | null;
    error_message: string | null;
  }[];
}

export async function getStatus(url: string, query = ''): Promise<StatusBody> {
  const res = await fetch(`${url}/api/v1/agent/status${query}`);
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  return (await res.json()) as StatusBody;
}

/** Polls the snapshot until `check` holds. */
export function waitForStatus(url: string, check: (s: StatusBody) => boolean, what = 'snapshot', query = ''): Promise<StatusBody> {
  return waitFor(async (): Promise<StatusBody | null> => {
    const s = await getStatus(url, query);
    return check(s) ? s : null;
  }, { what }) as Promise<StatusBody>;
}

export function session(s: StatusBody, key: string): StatusBody['sessions'][number] | undefined {
  return s.sessions.find((x) => x.session_key === key);
}

/** A session as a client believes it: everything but the timing fields, which no two reads agree on. */
export interface SessionView {
  key: string;
  title: string | null;
  state: string;
  tool: string | null;
  tokens: { input: number; output: number } | null;
  error: string | null;
}

/** The snapshot's sessions, in its order, without their timing fields. */
export function sessionViews(s: StatusBody): SessionView[] {
  return s.sessions.map((x) => ({ key: x.session_key, title: x.title, state: x.state, tool: x.tool_name, tokens: x.token_usage, error: x.error_message }));
}

/** Calls `onLine` with each line a child's output stream writes, as it arrives (node:readline does the framing). */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}
