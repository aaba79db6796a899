/**
 * Memory benchmark: resident memory (RSS, what the kernel charges the process, read from /proc) of the compiled daemon
 * (`node dist/cli.js serve`, what the systemd unit runs)
 *   - idle: after start and a settle, next to the idle RSS of a bare `node -e` node:http server (reported, no goal);
 *   - with 10,000 live sessions, created through the real ingest socket (titled, with token counts, in every live
 *     state), after a settle. Goal (issue 7): under 50 MB above idle.
 * MB here is 10^6 bytes, the stricter reading of the goal. No garbage collection is forced: RSS is what an operator
 * sees, garbage included. Each RSS is the median of a few samples taken after the settle.
 *
 * Usage: node --import tsx scripts/bench/memory.ts [--bundle dist/cli.js] [--settle-ms 3000] [--json]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { buildDist } from '../build.ts';
import { printFigures, type Figure } from './figure.ts';
import { rssBytes } from './proc.ts';
import { absoluteFigure, ratioFigure } from './goals.ts';
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

/** Waits `settleMs`, then takes the median of five samples 100 ms apart: one sample can catch a GC mid-way. */
async function settledRss(server: ServerProcess, settleMs: number): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(100);
    samples.push(rssBytes(server.proc.pid!));
  }
  return samples.sort((a, b) => a - b)[2]!;
}

export async function benchMemory(options: { bundle: string; settleMs?: number }): Promise<Figure[]> {
  const settleMs = options.settleMs ?? 3000;
  const bare = await startNodeScript(BARE_SERVER);
  let bareIdle: number;
  try {
    bareIdle = await settledRss(bare, settleMs);
  } finally {
    await bare.stop();
  }

  const daemon = await startCompiledDaemon(options.bundle);
  try {
    const idle = await settledRss(daemon, settleMs);
    await sendAndFence(daemon.socket, sessionEvents(SESSIONS, 'mem'));
    const loaded = await settledRss(daemon, settleMs);
    // Checked after the samples: the snapshot of 10,000 sessions is itself a few MB of garbage.
    const res = await fetch(`${daemon.url}/api/v1/agent/status`);
    const body = (await res.json()) as { global?: { active_sessions?: unknown } };
    if (body.global?.active_sessions !== SESSIONS) {
      throw new Error(`expected ${SESSIONS} live sessions, the daemon reports ${JSON.stringify(body.global?.active_sessions)}`);
    }
    return [
      ratioFigure('memory: idle RSS, compiled daemon', idle / MB, 'MB', bareIdle / MB, null),
      ratioFigure(`memory: RSS with ${SESSIONS.toLocaleString('en-US')} live sessions`, loaded / MB, 'MB', bareIdle / MB, null),
      absoluteFigure(`memory: ${SESSIONS.toLocaleString('en-US')} live sessions above idle`, (loaded - idle) / MB, 'MB above idle', '<= 50'),
    ];
  } finally {
    await daemon.stop();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, 'settle-ms': { type: 'string' }, json: { type: 'boolean' } } });
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-memory-build-'));
  try {
    const bundle = values.bundle ? resolve(values.bundle) : (await buildDist(join(dir, 'dist'))).file;
    const settle = values['settle-ms'];
    printFigures(await benchMemory({ bundle, settleMs: settle ? Number(settle) : undefined }), values.json ?? false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
