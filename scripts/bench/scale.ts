/**
 * Cost per event against the number of live sessions (issue 14, goal 1): the daemon's CPU time per event with
 * 10,000 live sessions, next to the same with 10 live sessions. Goal: at most 1.1x, i.e. what an event costs does not
 * grow with the sessions that are merely alive.
 *
 * Two compiled daemons (`node dist/cli.js serve`, what the systemd unit runs) are started and filled through the real
 * ingest socket, one with 10,000 sessions and one with 10 (titled, with token counts, in every live state: the same
 * events as the memory benchmark). Then both get the same events, on the same 10 sessions, from one producer that
 * writes each event on its own, as real agents do: write one line, wait until the kernel has it, then pause. The
 * pause is at least 1 ms and at least three times the CPU time an event took in the warm-up (a warning says when a
 * measurement used more than half of it), so the daemon is idle when each
 * line arrives and every socket read holds exactly one event (a producer writing back-to-back would let the kernel
 * pack many lines into one read, and the cost per read would be spread over them, hiding exactly what this measures).
 *
 * CPU time is every thread of the daemon (garbage collection included), from /proc/<pid>/task/<tid>/schedstat in
 * nanoseconds, over the measured events. Nobody subscribes to SSE and nobody asks for the snapshot meanwhile, so what
 * is measured is the ingest path: read, frame, validate, fold, change feed. The last event sets a title that is
 * checked over REST afterwards: events that were silently dropped cannot pass for cheap ones.
 *
 * The pair (10,000, 10) is measured `repetitions` times, alternating (see repeat.ts).
 *
 * Usage: node --import tsx scripts/bench/scale.ts [--bundle dist/cli.js] [--events 1000] [--runs 3] [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildDist } from '../build.ts';
import { plain, printFigures, type Figure } from './figure.ts';
import { threadCpuSeconds } from './proc.ts';
import { repeatPairs } from './repeat.ts';
import { sendAndFence, sessionEvents, startCompiledDaemon, type ServerProcess } from './rest.ts';

export const MANY = 10_000;
export const FEW = 10;
const PREFIX = 'scale';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Daemon = ServerProcess & { readonly socket: string };

/**
 * Flags for a daemon that must hold `sessions` live sessions: when the daemon has a session cap (`--max-sessions`)
 * it is raised above the count, so the figure measures the cost of live sessions and not the cap's refusals.
 */
export function sessionCapArgs(bundle: string, sessions: number): string[] {
  const help = spawnSync(process.execPath, [bundle, 'serve', '--help'], { encoding: 'utf8' });
  return help.stdout.includes('--max-sessions') ? ['--max-sessions', String(sessions * 2)] : [];
}

/** The keys of the first sessions `sessionEvents(count, PREFIX)` creates: the same on both daemons. */
function keyOf(i: number): string {
  return `websocket:${PREFIX}-${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}-${i}`;
}

/** Event `k` of the measured stream: on session k % 10, cycling through thinking, a tool and a token report. */
function eventLine(k: number): string {
  const session_key = keyOf(k % FEW);
  switch (Math.floor(k / FEW) % 3) {
    case 0:
      return `${JSON.stringify({ type: 'thinking', session_key })}\n`;
    case 1:
      return `${JSON.stringify({ type: 'tool_start', session_key, name: 'bash' })}\n`;
    default:
      return `${JSON.stringify({ type: 'token_usage', session_key, input_tokens: 1000 + k, output_tokens: k })}\n`;
  }
}

interface Paced {
  readonly cpuPerEvent: number;
  readonly seconds: number;
}

/** Writes `events` lines one at a time, each after the previous has reached the kernel and `gapMs` have passed. */
async function paced(daemon: Daemon, events: number, gapMs: number, nonce: string): Promise<Paced> {
  const socket = net.connect(daemon.socket);
  await new Promise<void>((ok, fail) => socket.once('connect', ok).once('error', fail));
  let replies = '';
  socket.setEncoding('utf8').on('data', (d: string) => (replies += d));
  const write = (line: string) => new Promise<void>((ok, fail) => socket.write(line, (e) => (e ? fail(e) : ok())));
  const pid = daemon.proc.pid!;
  await sleep(gapMs);
  const cpu0 = threadCpuSeconds(pid);
  const t0 = performance.now();
  for (let k = 0; k < events - 1; k++) {
    await write(eventLine(k));
    await sleep(gapMs);
  }
  await write(`${JSON.stringify({ type: 'title', session_key: keyOf(0), title: nonce })}\n`);
  await sleep(gapMs);
  const cpu = threadCpuSeconds(pid) - cpu0;
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  if (replies !== '') throw new Error(`the daemon rejected a benchmark event: ${replies.split('\n')[0]}`);
  const status = (await (await fetch(`${daemon.url}/api/v1/agent/status`)).json()) as { sessions: { session_key: string; title: string | null }[] };
  if (status.sessions.find((s) => s.session_key === keyOf(0))?.title !== nonce) throw new Error('the last benchmark event was not applied');
  return { cpuPerEvent: cpu / events, seconds };
}

async function filled(bundle: string, sessions: number): Promise<Daemon> {
  const daemon = await startCompiledDaemon(bundle, sessionCapArgs(bundle, sessions));
  try {
    await sendAndFence(daemon.socket, sessionEvents(sessions, PREFIX));
    const body = (await (await fetch(`${daemon.url}/api/v1/agent/status`)).json()) as { global?: { active_sessions?: unknown } };
    if (body.global?.active_sessions !== sessions) {
      throw new Error(`expected ${sessions} live sessions, the daemon reports ${JSON.stringify(body.global?.active_sessions)}`);
    }
    return daemon;
  } catch (error) {
    await daemon.stop();
    throw error;
  }
}

export interface ScaleOptions {
  readonly bundle: string;
  /** Events per measurement (default 1,000); the warm-up sends half as many. */
  readonly events?: number;
  readonly repetitions?: number;
}

export async function benchScale(options: ScaleOptions): Promise<Figure[]> {
  const events = options.events ?? 1000;
  const many = await filled(options.bundle, MANY);
  let few: Daemon | null = null;
  try {
    few = await filled(options.bundle, FEW);
    // Warm-up (JIT, and the pause each daemon needs): the same paced stream, not measured.
    const gaps = new Map<Daemon, number>();
    for (const d of [many, few]) {
      const warm = await paced(d, Math.max(50, events >> 1), 1, `warm-up ${d.proc.pid}`);
      gaps.set(d, Math.max(1, Math.ceil(3 * warm.cpuPerEvent * 1000)));
    }
    const gapMs = Math.max(...gaps.values());
    const measure = (d: Daemon) => async (run: number) => {
      const r = await paced(d, events, gapMs, `run ${run} ${d.proc.pid}`);
      // Busy for more than half of each pause, the daemon could still be reading one line when the next arrives.
      if (r.cpuPerEvent * 1000 > gapMs / 2) {
        process.stderr.write(`warning: CPU per event: ${(r.cpuPerEvent * 1e6).toFixed(0)} µs an event against a ${gapMs} ms pause: some reads may have held two events\n`);
      }
      return { cpuPerEvent: r.cpuPerEvent * 1e6 };
    };
    const figures = await repeatPairs({
      name: 'CPU per event',
      repetitions: options.repetitions ?? 3,
      value: measure(many),
      baseline: measure(few!),
      figures: [
        {
          name: `CPU per event, ${MANY.toLocaleString('en-US')} live sessions (one event per read; baseline ${FEW} live sessions)`,
          unit: 'µs',
          value: 'cpuPerEvent',
          baseline: 'cpuPerEvent',
          goal: '<= 1.1',
        },
      ],
    });
    return [...figures, plain('CPU per event: events per measurement', events, 'events'), plain('CPU per event: pause between events', gapMs, 'ms')];
  } finally {
    await few?.stop();
    await many.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, events: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean' } } });
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-scale-build-'));
  try {
    const bundle = values.bundle ? resolve(values.bundle) : (await buildDist(join(dir, 'dist'))).file;
    const events = values.events ? Number(values.events) : undefined;
    printFigures(await benchScale({ bundle, events, repetitions: values.runs ? Number(values.runs) : undefined }), values.json ?? false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
