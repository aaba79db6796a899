/**
 * State benchmark (issue 17): ingest throughput with the state file kept against the same daemon with
 * `--state-dir none`, in the same run. Goal: keeping state costs at most 5% (ratio >= 0.95): the state is written
 * at most once a second from a timer, never on the ingest path.
 *
 * Both daemons get the same pre-generated events as the ingest benchmark (ingest.ts), through one producer on a real
 * Unix socket, warmed up first; each is timed from the first write until it rejects a fence line sent after the last
 * event. The runs alternate (off, on, on, off, ...) and each side's best run counts, which evens out a shared machine.
 * Afterwards the state file must hold the last event: a run that never wrote cannot pass for a cheap one.
 *
 * Usage: node --import tsx scripts/bench/state.ts [--events N] [--rounds R] [--json]
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { startDaemon, tempDir, waitFor } from '../../test/helpers/daemon.ts';
import { compared, plain, printFigures, type Figure } from './figure.ts';
import { generateEvents } from './ingest.ts';
import { cpuSeconds } from './proc.ts';

const GOAL = 0.95;
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

export async function benchState(opts: { events: number; warmup?: number; rounds?: number }): Promise<Figure[]> {
  const events = Math.max(100, Math.floor(opts.events));
  const rounds = Math.max(1, opts.rounds ?? 2);
  const nonce = `${process.pid}-${Date.now()}`;
  const main = generateEvents(events, nonce);
  const warm = generateEvents(Math.max(100, opts.warmup ?? 200_000), `warm-up ${nonce}`);
  const best = (a: Timed, b: Timed): Timed => ({ seconds: Math.min(a.seconds, b.seconds), cpuSeconds: Math.min(a.cpuSeconds, b.cpuSeconds) });
  let off: Timed = { seconds: Infinity, cpuSeconds: Infinity };
  let on: Timed = { seconds: Infinity, cpuSeconds: Infinity };
  for (let r = 0; r < rounds; r++) {
    // Alternating which goes first, so neither side always runs right after the other's daemon stopped.
    if (r % 2 === 0) off = best(off, await run(null, warm.chunks, main.chunks, nonce));
    on = best(on, await run(tempDir(), warm.chunks, main.chunks, nonce));
    if (r % 2 === 1) off = best(off, await run(null, warm.chunks, main.chunks, nonce));
  }
  return [
    compared('state: ingest events/s with state kept (vs --state-dir none)', events / on.seconds, 'events/s', events / off.seconds, GOAL),
    compared('state: ingest CPU per event with state kept (vs --state-dir none)', (on.cpuSeconds / events) * 1e6, 'µs', (off.cpuSeconds / events) * 1e6),
    plain('state: ingest events/s, --state-dir none', events / off.seconds, 'events/s'),
    plain('state: events per timed run (after warm-up)', events, 'events'),
    plain('state: runs per side (the best counts)', rounds, 'runs'),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      rounds: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
    },
  });
  const events = Number(values.events);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(events) || events < 100 || !Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write('--events: a whole number of at least 100; --rounds: at least 1\n');
    process.exit(2);
  }
  printFigures(await benchState({ events, rounds }), values.json ?? false);
}
