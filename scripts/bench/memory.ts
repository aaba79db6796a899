/**
 * Memory benchmark: resident memory (RSS, what the kernel charges the process, read from /proc) of the compiled daemon
 * (`node dist/cli.js serve`, what the systemd unit runs)
 *   - idle: after start and a settle, next to the idle RSS of a bare `node -e` node:http server. Goal (issue 14): at
 *     most 1.12x the bare server (about PocketPaw's own idle footprint; where the memory goes: docs/performance.md);
 *   - with 10,000 live sessions, created through the real ingest socket (titled, with token counts, in every live
 *     state), after a settle. Goals: under 50 MB above idle (issue 7), at most 2.6 KiB per session (issue 14).
 * The pair (daemon, bare server) runs `repetitions` times, alternating, each run in fresh processes (see repeat.ts).
 * MB here is 10^6 bytes, the stricter reading of the goal. No garbage collection is forced: RSS is what an operator
 * sees, garbage included. Each RSS is the median of a few samples taken after the settle.
 *
 * The full run also reports the idle RSS 30 s after start, once V8's memory reducer has given back the heap that
 * start-up grew (measured once, daemon and bare server side by side; no goal).
 *
 * Usage: node --import tsx scripts/bench/memory.ts [--bundle dist/cli.js] [--settle-ms 3000] [--long-idle-ms 30000] [--json]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildDist } from '../build.ts';
import { printFigures, type Figure } from './figure.ts';
import { ratioFigure } from './goals.ts';
import { rssBytes } from './proc.ts';
import { repeatPairs } from './repeat.ts';
import { sessionCapArgs } from './scale.ts';
import { sendAndFence, sessionEvents, startCompiledDaemon, startNodeScript, type ServerProcess } from './rest.ts';

const SESSIONS = 10_000;
const MB = 1e6;

const BARE_SERVER = `
const server = require('node:http').createServer((req, res) => res.end('ok'));
server.listen(0, '127.0.0.1', () => {
  process.stderr.write(JSON.stringify({ msg: 'ready', http: 'http://127.0.0.1:' + server.address().port }) + '\\n');
});
process.on('SIGTERM', () => process.exit(0));
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits `settleMs`, then takes the median of five samples `everyMs` apart: one sample can catch a GC mid-way. */
async function settledRss(server: ServerProcess, settleMs: number, everyMs = 100): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(everyMs);
    samples.push(rssBytes(server.proc.pid!));
  }
  return samples.sort((a, b) => a - b)[2]!;
}

export interface MemoryOptions {
  readonly bundle: string;
  /** The wait after the 10,000 sessions arrived, before their RSS is sampled (default 3,000 ms). */
  readonly settleMs?: number;
  /**
   * The wait after start before the idle RSS is sampled, daemon and bare server alike (default: `settleMs`). An idle
   * process's RSS is flat from about half a second after its first answer until V8's memory reducer runs (10 to 20 s),
   * so the quick run waits less here; after the fill, the garbage of 10,000 events is still being collected for
   * over a second (a 1 s settle read 2.27 KiB per session where 1.5 s read 2.00), so that wait is kept longer.
   */
  readonly idleSettleMs?: number;
  /** Time between the five RSS samples of each reading (default 100 ms; the quick run's is shorter). */
  readonly sampleEveryMs?: number;
  /** How many times the pair (daemon, bare server) is measured, alternating (see repeat.ts); default 3. */
  readonly repetitions?: number;
  /** Also the idle RSS this long after start (a reported figure, measured once); 0 or absent: not measured. */
  readonly longIdleMs?: number;
}

/**
 * One run of the daemon's side: a fresh daemon, its idle RSS, then 10,000 sessions and its RSS again. A fresh process
 * each run: RSS seldom goes down once it has gone up, so a second fill of the same process would measure nothing.
 */
async function daemonRun(bundle: string, idleSettleMs: number, settleMs: number, everyMs: number): Promise<Record<string, number>> {
  const daemon = await startCompiledDaemon(bundle, sessionCapArgs(bundle, SESSIONS));
  try {
    const idle = await settledRss(daemon, idleSettleMs, everyMs);
    await sendAndFence(daemon.socket, sessionEvents(SESSIONS, 'mem'));
    const loaded = await settledRss(daemon, settleMs, everyMs);
    // Checked after the samples: the snapshot of 10,000 sessions is itself a few MB of garbage.
    const res = await fetch(`${daemon.url}/api/v1/agent/status`);
    const body = (await res.json()) as { global?: { active_sessions?: unknown } };
    if (body.global?.active_sessions !== SESSIONS) {
      throw new Error(`expected ${SESSIONS} live sessions, the daemon reports ${JSON.stringify(body.global?.active_sessions)}`);
    }
    return { idle: idle / MB, loaded: loaded / MB, above: (loaded - idle) / MB, perSession: (loaded - idle) / SESSIONS / 1024 };
  } finally {
    await daemon.stop();
  }
}

async function bareRun(settleMs: number, everyMs: number): Promise<Record<string, number>> {
  const bare = await startNodeScript(BARE_SERVER);
  try {
    return { idle: (await settledRss(bare, settleMs, everyMs)) / MB };
  } finally {
    await bare.stop();
  }
}

/**
 * Idle RSS once V8's memory reducer has given back the heap start-up grew (it runs some 10 to 20 s after start): the
 * daemon and the bare server side by side, sampled after `ms`. Reported beside the goal figure, which is sampled after
 * the settle like every other figure here.
 */
async function longIdle(bundle: string, ms: number): Promise<Figure> {
  const daemon = await startCompiledDaemon(bundle);
  try {
    const bare = await startNodeScript(BARE_SERVER);
    try {
      const [d, b] = await Promise.all([settledRss(daemon, ms), settledRss(bare, ms)]);
      return ratioFigure(`memory: idle RSS ${ms / 1000} s after start, compiled daemon`, d / MB, 'MB', b / MB, null);
    } finally {
      await bare.stop();
    }
  } finally {
    await daemon.stop();
  }
}

export async function benchMemory(options: MemoryOptions): Promise<Figure[]> {
  const settleMs = options.settleMs ?? 3000;
  const idleSettleMs = options.idleSettleMs ?? settleMs;
  const n = SESSIONS.toLocaleString('en-US');
  const figures = await repeatPairs({
    name: 'memory',
    repetitions: options.repetitions ?? 3,
    value: () => daemonRun(options.bundle, idleSettleMs, settleMs, options.sampleEveryMs ?? 100),
    baseline: () => bareRun(idleSettleMs, options.sampleEveryMs ?? 100),
    figures: [
      { name: 'memory: idle RSS, compiled daemon', unit: 'MB', value: 'idle', baseline: 'idle', goal: '<= 1.12' },
      { name: `memory: RSS with ${n} live sessions`, unit: 'MB', value: 'loaded', baseline: 'idle', goal: null },
      { name: `memory: ${n} live sessions above idle`, unit: 'MB above idle', value: 'above', goal: '<= 50' },
      { name: `memory: per live session, ${n} sessions`, unit: 'KiB', value: 'perSession', goal: '<= 2.6' },
    ],
  });
  if (options.longIdleMs) figures.splice(1, 0, await longIdle(options.bundle, options.longIdleMs));
  return figures;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, 'settle-ms': { type: 'string' }, 'long-idle-ms': { type: 'string' }, json: { type: 'boolean' } } });
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-memory-build-'));
  try {
    const bundle = values.bundle ? resolve(values.bundle) : (await buildDist(join(dir, 'dist'))).file;
    const settle = values['settle-ms'];
    const longIdleMs = values['long-idle-ms'] ? Number(values['long-idle-ms']) : undefined;
    printFigures(await benchMemory({ bundle, settleMs: settle ? Number(settle) : undefined, longIdleMs }), values.json ?? false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
