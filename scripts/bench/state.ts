/**
 * State benchmark (issue 17): ingest throughput with the state file kept against the same daemon with
 * `--state-dir none`, in the same run. Goal: keeping state costs at most 5% (ratio >= 0.95): the state is written
 * at most once a second from a timer, never on the ingest path.
 *
 * Both daemons get the same pre-generated events as the ingest benchmark (ingest.ts), through one producer on a real
 * Unix socket, warmed up first; each is timed from the first write until it rejects a fence line sent after the last
 * event. The runs alternate (off, on, off, on...) and each side's best run counts, which evens out a shared machine.
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

const GOAL = 0.95;
const FENCE = Buffer.from('{"v":99,"type":"fence"}\n');

/** Writes the chunks with backpressure, then the fence; resolves with the seconds until the daemon answered it. */
async function timed(path: string, chunks: readonly Buffer[]): Promise<number> {
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
  const t0 = performance.now();
  for (const chunk of chunks) if (!socket.write(chunk)) await once(socket, 'drain');
  socket.write(FENCE);
  await answered;
  const seconds = (performance.now() - t0) / 1000;
  socket.destroy();
  return seconds;
}

async function run(stateDir: string | null, warmup: readonly Buffer[], events: readonly Buffer[], nonce: string): Promise<number> {
  const d = await startDaemon({ args: stateDir === null ? [] : ['--state-dir', stateDir] });
  try {
    await timed(d.socket, warmup);
    const seconds = await timed(d.socket, events);
    if (stateDir !== null) {
      // The last event reaches the file within about a second: the writer kept up.
      await waitFor(() => readFileSync(join(stateDir, 'state.json'), 'utf8').includes(`done ${nonce}`), { timeoutMs: 10_000, what: 'the state file to hold the last event' });
    }
    return seconds;
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
  let off = Infinity;
  let on = Infinity;
  for (let r = 0; r < rounds; r++) {
    off = Math.min(off, await run(null, warm.chunks, main.chunks, nonce));
    on = Math.min(on, await run(tempDir(), warm.chunks, main.chunks, nonce));
  }
  return [
    compared('state: ingest events/s with state kept (vs --state-dir none)', events / on, 'events/s', events / off, GOAL),
    plain('state: ingest events/s, --state-dir none', events / off, 'events/s'),
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
