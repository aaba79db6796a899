/**
 * REST benchmark: `GET /api/v1/agent/status` with 100 live sessions, 50 connections, 10 seconds (autocannon), against
 *   - the compiled daemon (`node dist/cli.js serve`, what the systemd unit runs), its sessions created through the
 *     real ingest socket,
 *   - a bare `node:http` server that answers every request with the same bytes: the daemon's body, fetched once,
 *     with the same `Content-Type`.
 * Both servers are child processes and autocannon runs in this process, so the client never shares the event loop
 * of the server it measures. Each server gets a short warm-up (JIT), then the pair is measured `repetitions` times,
 * alternating, on the same two servers (see repeat.ts). Goal: the daemon's requests/s at least 0.9 of the bare
 * server's (issue 7). Latency p99 is reported without a goal.
 *
 * Usage: node --import tsx scripts/bench/rest.ts [--bundle dist/cli.js] [--seconds 10] [--json]
 */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildDist, ROOT } from '../build.ts';
import { cleanEnv, Producer } from '../../test/helpers/daemon.ts';
import { plain, printFigures, type Figure } from './figure.ts';
import { repeatPairs } from './repeat.ts';
import { readyUrl } from './proc.ts';

const STATUS = '/api/v1/agent/status';
const SESSIONS = 100;
const CONNECTIONS = 50;

/** A server under test, started as a child process. */
export interface ServerProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  stop(): Promise<void>;
}

function stopper(proc: ChildProcess, dir: string | null): () => Promise<void> {
  return async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  };
}

/** The compiled daemon on a free port and a socket in a fresh temporary folder. */
export async function startCompiledDaemon(bundle: string, args: readonly string[] = []): Promise<ServerProcess & { readonly socket: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-daemon-'));
  const socket = join(dir, 'ingest.sock');
  // stdout ignored: a pipe nobody reads could fill up and block the daemon.
  const proc = spawn(process.execPath, [bundle, 'serve', '--port', '0', '--socket', socket, '--state-dir', 'none', ...args], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    const url = await readyUrl(proc, 'the compiled daemon');
    return { proc, url, socket, stop: stopper(proc, dir) };
  } catch (error) {
    await stopper(proc, dir)();
    throw error;
  }
}

/** A `node -e` program that prints the same kind of `ready` line as the daemon once it listens. */
export async function startNodeScript(script: string, args: readonly string[] = []): Promise<ServerProcess> {
  const proc = spawn(process.execPath, ['-e', script, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const url = await readyUrl(proc, 'the bare node server');
    return { proc, url, stop: stopper(proc, null) };
  } catch (error) {
    await stopper(proc, null)();
    throw error;
  }
}

/**
 * Writes `lines` on one producer connection, then a line the daemon must reject: lines are handled in order, so its
 * answer means every line before it has been folded. Any other answer means a benchmark event was refused.
 */
export async function sendAndFence(socket: string, lines: readonly string[]): Promise<void> {
  const producer = await Producer.connect(socket);
  try {
    const chunk = 4096;
    for (let i = 0; i < lines.length; i += chunk) {
      if (!producer.socket.write(lines.slice(i, i + chunk).join(''))) await once(producer.socket, 'drain');
    }
    producer.send({ v: 99, type: 'fence' });
    const [first] = await producer.waitReplies(1, 60_000);
    if (!first?.includes('unsupported protocol version 99')) throw new Error(`the daemon rejected a benchmark event: ${first}`);
  } finally {
    await producer.end();
  }
}

/** Sessions as a busy PocketPaw would list them: titled, in every live state, most with token counts. */
export function sessionEvents(count: number, prefix: string): string[] {
  const lines: string[] = [];
  const line = (o: object) => `${JSON.stringify(o)}\n`;
  const tools = ['bash', 'read_file', 'grep', 'edit_file', 'web_search'];
  for (let i = 0; i < count; i++) {
    const key = `websocket:${prefix}-${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}-${i}`;
    lines.push(line({ type: 'agent_start', session_key: key, title: `Fix the flaky reconnect test #${i}` }));
    lines.push(line({ type: 'token_usage', session_key: key, input_tokens: 1200 + i, output_tokens: 90 + i }));
    switch (i % 4) {
      case 0:
        lines.push(line({ type: 'tool_start', session_key: key, name: tools[i % tools.length] }));
        break;
      case 1:
        lines.push(line({ type: 'stream_start', session_key: key }));
        break;
      case 2:
        lines.push(line({ type: 'ask_user_question', session_key: key }));
        break;
      default:
        break; // stays thinking
    }
  }
  return lines;
}

const BARE_SERVER = `
const body = require('node:fs').readFileSync(process.argv[1]);
const type = process.argv[2];
const server = require('node:http').createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  process.stderr.write(JSON.stringify({ msg: 'ready', http: 'http://127.0.0.1:' + server.address().port }) + '\\n');
});
process.on('SIGTERM', () => process.exit(0));
`;

interface Load {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
}

async function load(url: string, seconds: number): Promise<Load> {
  const result = await autocannon({ url: `${url}${STATUS}`, connections: CONNECTIONS, duration: seconds });
  const failed = result.errors + result.timeouts + result.non2xx;
  if (failed > 0) {
    throw new Error(`${url}${STATUS}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers under load`);
  }
  if (result['2xx'] === 0) throw new Error(`${url}${STATUS}: no request was answered in ${seconds} s`);
  // Completed requests over the measured span: autocannon's per-second average would drop a partial last second.
  return { requestsPerSecond: result['2xx'] / result.duration, p99Ms: result.latency.p99 };
}

export async function benchRest(options: { bundle: string; seconds?: number; warmupSeconds?: number; repetitions?: number }): Promise<Figure[]> {
  const seconds = options.seconds ?? 10;
  const warmup = options.warmupSeconds ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-rest-'));
  const daemon = await startCompiledDaemon(options.bundle);
  let bare: ServerProcess | null = null;
  try {
    await sendAndFence(daemon.socket, sessionEvents(SESSIONS, 'rest'));
    const res = await fetch(`${daemon.url}${STATUS}`);
    const body = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type');
    if (res.status !== 200 || type === null) throw new Error(`the daemon answered ${res.status} (${type}) to ${STATUS}`);
    const sessions = (JSON.parse(body.toString('utf8')) as { sessions: unknown[] }).sessions.length;
    if (sessions !== SESSIONS) throw new Error(`expected ${SESSIONS} sessions in the snapshot, got ${sessions}`);
    const bodyFile = join(dir, 'body.json');
    writeFileSync(bodyFile, body);
    bare = await startNodeScript(BARE_SERVER, [bodyFile, type]);
    const bareUrl = bare.url;

    // The daemon's own SSE hub and timers stay idle: nobody subscribes, so only the REST path is measured. Both
    // servers are warmed up once (JIT) and then kept for every run: each run is one timed load on each, alternating.
    await load(bareUrl, warmup);
    await load(daemon.url, warmup);
    const measure = (url: string) => async () => {
      const r = await load(url, seconds);
      return { rps: r.requestsPerSecond, p99: r.p99Ms };
    };
    const figures = await repeatPairs({
      name: 'REST',
      repetitions: options.repetitions ?? 3,
      value: measure(daemon.url),
      baseline: measure(bareUrl),
      figures: [
        { name: `REST requests/s, ${SESSIONS} sessions, ${CONNECTIONS} connections (compiled)`, unit: 'req/s', value: 'rps', baseline: 'rps', goal: '>= 0.9' },
        { name: `REST latency p99, ${SESSIONS} sessions, ${CONNECTIONS} connections`, unit: 'ms', value: 'p99', baseline: 'p99', goal: null },
      ],
    });
    return [...figures, plain(`REST snapshot body, ${SESSIONS} sessions`, body.length, 'bytes')];
  } finally {
    await bare?.stop();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' } } });
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-rest-build-'));
  try {
    const bundle = values.bundle ? resolve(values.bundle) : (await buildDist(join(dir, 'dist'))).file;
    printFigures(await benchRest({ bundle, seconds: values.seconds ? Number(values.seconds) : undefined }), values.json ?? false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
