/**
 * State benchmark (issue 17): ingest throughput with the state file kept against the same daemon with
 * `--state-dir none`, in the same run. Goal: keeping state costs at most 5% (ratio >= 0.95): the state is written
 * at most once a second from a timer, never on the ingest path.
 *
 * Both daemons get the same pre-generated events as the ingest benchmark (ingest.ts), through one producer on a real
 * Unix socket, warmed up first; each is timed from the first write until it rejects a fence line sent after the last
 * event. Each run starts a fresh daemon with state kept (on an empty state directory), then one with
 * `--state-dir none`, `repetitions` times (repeat.ts): the goal is decided on the median of the per-run ratios.
 * After each run with state kept the state file must hold the last event: a run that never wrote cannot pass for a
 * cheap one.
 *
 * Usage: node --import tsx scripts/bench/state.ts [--events N] [--warmup W] [--repetitions 3] [--quick] [--json]
 *   --quick: 100,000 events after 50,000 of warm-up, the sizes `npm run bench -- --quick` uses
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { startDaemon, tempDir, waitFor } from '../../test/helpers/daemon.ts';
import { plain, printFigures, type Figure } from './figure.ts';
import { generateEvents } from './ingest.ts';
import { cpuSeconds } from './proc.ts';
import { repeatPairs, type Metrics } from './repeat.ts';

const GOAL = 0.95;
/** The sizes of `npm run bench -- --quick` (run.ts) and of --quick here. */
export const QUICK = { events: 100_000, warmup: 50_000 } as const;
const FENCE = Buffer.from('{"v":99,"type":"fence"}\n');

interface Timed {
  readonly seconds: number;
  /** The daemon's CPU time (user + system) over the same span: steadier than wall time on a shared machine. */
  readonly cpuSeconds: number;
}

/** Writes the chunks with backpressure, then the fence; measures until the daemon answered it. */
async function timed(path: string, pid: number, chunks: readonly Buffer[]): Promise<Timed> {
  const socket = net.connect({ path });
  await once(socket, 'connect');
  const answered = new Promise<void>((resolve, reject) => {
    let replies = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      replies += text;
      if (!replies.includes('\n')) return;
      if (replies.includes('unsupported protocol version 99')) resolve();
      else reject(new Error(`the daemon rejected a benchmark event: ${replies.slice(0, replies.indexOf('\n'))}`));
    });
    socket.once('close', () => reject(new Error('the daemon closed the producer connection')));
  });
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  for (const chunk of chunks) if (!socket.write(chunk)) await once(socket, 'drain');
  socket.write(FENCE);
  await answered;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  socket.destroy();
  return { seconds, cpuSeconds: cpu };
}

async function run(stateDir: string | null, warmup: readonly Buffer[], events: readonly Buffer[], nonce: string): Promise<Timed> {
  const d = await startDaemon({ args: stateDir === null ? [] : ['--state-dir', stateDir] });
  try {
    await timed(d.socket, d.proc.pid!, warmup);
    const result = await timed(d.socket, d.proc.pid!, events);
    process.stderr.write(`state bench: state ${stateDir === null ? 'off' : 'on '}: ${result.seconds.toFixed(3)} s, CPU ${result.cpuSeconds.toFixed(3)} s\n`);
    if (stateDir !== null) {
      // The last event reaches the file within about a second: the writer kept up.
      await waitFor(() => readFileSync(join(stateDir, 'state.json'), 'utf8').includes(`done ${nonce}`), { timeoutMs: 10_000, what: 'the state file to hold the last event' });
    }
    return result;
  } finally {
    await d.stop();
  }
}

export interface StateOptions {
  /** Timed events per run; at least 100. */
  readonly events: number;
  /** Events sent to each daemon before its timed run, not counted; default 200,000. */
  readonly warmup?: number;
  /** How many times the pair (state kept, --state-dir none) is measured, alternating (see repeat.ts); default 3. */
  readonly repetitions?: number;
}

export async function benchState(opts: StateOptions): Promise<Figure[]> {
  const events = Math.max(100, Math.floor(opts.events));
  const warmupEvents = Math.max(100, Math.floor(opts.warmup ?? 200_000));
  const repetitions = opts.repetitions ?? 3;
  const nonce = `${process.pid}-${Date.now()}`;
  const main = generateEvents(events, nonce);
  const warm = generateEvents(warmupEvents, `warm-up ${nonce}`);
  const measure = (state: boolean) => async (): Promise<Metrics> => {
    const t = await run(state ? tempDir() : null, warm.chunks, main.chunks, nonce);
    return { rate: events / t.seconds, cpuPerEvent: (t.cpuSeconds / events) * 1e6 };
  };
  const figures = await repeatPairs({
    name: 'state',
    repetitions,
    value: measure(true),
    baseline: measure(false),
    figures: [
      { name: 'state: ingest events/s with state kept (vs --state-dir none)', unit: 'events/s', value: 'rate', baseline: 'rate', goal: `>= ${GOAL}` },
      { name: 'state: ingest CPU per event with state kept (vs --state-dir none)', unit: 'µs', value: 'cpuPerEvent', baseline: 'cpuPerEvent', goal: null },
    ],
  });
  return [
    ...figures,
    plain('state: ingest events/s, --state-dir none', figures[0]!.baseline!, 'events/s'),
    plain('state: events per timed run (after warm-up)', events, 'events'),
    plain('state: warm-up events per daemon', warmupEvents, 'events'),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      warmup: { type: 'string' },
      repetitions: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const events = Number(values.events ?? (values.quick ? QUICK.events : 1_000_000));
  const warmup = Number(values.warmup ?? (values.quick ? QUICK.warmup : 200_000));
  const repetitions = Number(values.repetitions);
  if (!Number.isInteger(events) || events < 100 || !Number.isInteger(warmup) || warmup < 100 || !Number.isInteger(repetitions) || repetitions < 1) {
    process.stderr.write('--events and --warmup: whole numbers of at least 100; --repetitions: a whole number of at least 1\n');
    process.exit(2);
  }
  printFigures(await benchState({ events, warmup, repetitions }), values.json ?? false);
}
