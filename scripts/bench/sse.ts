/**
 * SSE fan-out benchmark: 100, 1,000 and 5,000 subscribers on loopback.
 *
 * For each count, against the real daemon and, in the same run, a bare node:http SSE server that reads the same
 * ingest lines and writes one pre-encoded buffer to every response:
 * - latency from an event written to the ingest socket to its arrival at every client (p50, p99, max over
 *   event x client deliveries), measured in this process with one clock;
 * - server CPU per delivered event (utime + stime from /proc during the event phase / deliveries);
 * - server memory per connected client (RSS with the clients connected minus RSS before, / clients).
 *
 * Each client count's pair (daemon, bare server) is measured `repetitions` times, alternating, each run in fresh
 * processes (see repeat.ts).
 *
 * Run: node --import tsx scripts/bench/sse.ts [--json] [--quick] [--clients 100,1000,5000] [--events 40] [--repetitions 3]
 * (--events is a minimum: each count gets enough events for 20,000 deliveries, see MIN_DELIVERIES)
 *   SSE_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" passes Node options to the daemon (to profile it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { StatusEvent } from '../../protocol/events.ts';
import { fold, initialState } from '../../daemon/state/fold.ts';
import { renderSnapshot } from '../../daemon/state/snapshot.ts';
import { printFigures, type Figure } from './figure.ts';
import { cpuSeconds, readyUrl, rssBytes } from './proc.ts';
import { repeatPairs } from './repeat.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const STREAM = '/api/v1/agent/status/stream';
const SESSION = 'bench:1';

/**
 * The baseline: reads ingest lines from a Unix socket and writes every response the frame the daemon would send for
 * it (same size, same shape): the snapshot of the bench's one session, rendered by the daemon's own code once
 * (argv[2], a template whose title is filled in from each line), under an id as long as the daemon's. Delivery cost
 * grows with the bytes written, so a baseline writing shorter frames would not be comparing like with like.
 */
const BARE_SERVER = `
const http = require('node:http'), net = require('node:net');
const [socketPath, template] = process.argv.slice(1);
const clients = new Set();
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
  res.write('retry: 2000\\n\\n');
  clients.add(res);
  res.on('close', () => clients.delete(res));
});
const run = String(Date.now());
let seq = 0;
const ingest = net.createServer((sock) => {
  let tail = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    const lines = (tail + d).split('\\n');
    tail = lines.pop();
    for (const line of lines) {
      if (!line) continue;
      const data = template.replace('"title":"m0"', '"title":' + JSON.stringify(JSON.parse(line).title));
      const buf = Buffer.from('id: ' + run + '-' + (++seq) + '\\nevent: status\\ndata: ' + data + '\\n\\n');
      for (const res of clients) res.write(buf);
    }
  });
});
ingest.listen(socketPath, () => server.listen(0, '127.0.0.1', () => {
  process.stderr.write(JSON.stringify({ msg: 'ready', http: 'http://127.0.0.1:' + server.address().port }) + '\\n');
}));
process.on('SIGTERM', () => process.exit(0));
`;

/** The daemon's snapshot while the bench session is live with title "m0", rendered by the daemon's own code. */
function snapshotTemplate(): string {
  const event = StatusEvent.parse({ type: 'agent_start', session_key: SESSION, title: 'm0' });
  const state = fold(initialState({ maxConcurrent: 5, errorTtlMs: 30_000 }), { kind: 'event', event, producer: { id: 1, agent: false } }, 0);
  return renderSnapshot(state, 1_500, 0).json;
}

interface Target {
  readonly name: 'daemon' | 'bare';
  readonly proc: ChildProcess;
  readonly url: string;
  readonly socket: string;
  readonly dir: string;
}

async function startTarget(name: Target['name']): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-sse-'));
  const socket = join(dir, 'ingest.sock');
  const args =
    name === 'daemon'
      ? [...(process.env.SSE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'serve', '--port', '0', '--socket', socket, '--state-dir', 'none', '--sse-min-interval', '0', '--max-sse-clients', '20000']
      : ['-e', BARE_SERVER, socket, snapshotTemplate()];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('POCKETPAW_STATUS_')));
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await readyUrl(proc, name === 'daemon' ? 'the daemon' : 'the bare SSE server');
  return { name, proc, url, socket, dir };
}

async function stopTarget(t: Target): Promise<void> {
  const exited = new Promise((r) => t.proc.once('exit', r));
  t.proc.kill('SIGTERM');
  await exited;
  rmSync(t.dir, { recursive: true, force: true });
}

interface Subscriber {
  req: http.ClientRequest;
  arrivals: Map<number, number>;
}

/** Opens `n` raw SSE connections; each records when it saw marker k (`"title":"m<k>"`). */
async function subscribe(url: string, n: number): Promise<Subscriber[]> {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const subs: Subscriber[] = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const sub: Subscriber = { req: null as unknown as http.ClientRequest, arrivals: new Map() };
          sub.req = http.get(`${url}${STREAM}`, { agent }, (res) => {
            if (res.statusCode !== 200) return reject(new Error(`subscriber got ${res.statusCode}`));
            res.setEncoding('latin1');
            res.on('data', (chunk: string) => {
              const now = performance.now();
              let at = chunk.indexOf('"title":"m');
              while (at >= 0) {
                const end = chunk.indexOf('"', at + 10);
                const k = Number(chunk.slice(at + 10, end));
                if (!sub.arrivals.has(k)) sub.arrivals.set(k, now);
                at = chunk.indexOf('"title":"m', end);
              }
            });
            resolve();
          });
          sub.req.on('error', reject);
          subs.push(sub);
        }),
      ),
    );
  }
  return subs;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Run {
  p50: number;
  p99: number;
  max: number;
  cpuPerDelivery: number;
  memoryPerClient: number;
  lost: number;
}

async function measure(target: Target, clients: number, events: number, settleMs: number): Promise<Run> {
  const producer = net.connect(target.socket);
  await new Promise((r) => producer.once('connect', r));
  const line = (o: object) => `${JSON.stringify(o)}\n`;
  producer.write(line({ type: 'agent_start', session_key: SESSION, title: 'm0' }));
  await new Promise((r) => setTimeout(r, 300));

  const rssBefore = rssBytes(target.proc.pid!);
  const subs = await subscribe(target.url, clients);
  await new Promise((r) => setTimeout(r, settleMs));
  const rssConnected = rssBytes(target.proc.pid!);

  const sentAt = new Map<number, number>();
  const cpuStart = cpuSeconds(target.proc.pid!);
  for (let k = 1; k <= events; k++) {
    sentAt.set(k, performance.now());
    producer.write(line({ type: 'title', session_key: SESSION, title: `m${k}` }));
    // Wait for every client (or a bound) before the next event: latencies are per isolated event.
    const deadline = performance.now() + 5000;
    while (subs.some((s) => !s.arrivals.has(k)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
  }
  const cpuEnd = cpuSeconds(target.proc.pid!);

  const latencies: number[] = [];
  let lost = 0;
  for (const s of subs) {
    for (let k = 1; k <= events; k++) {
      const at = s.arrivals.get(k);
      if (at === undefined) lost++;
      else latencies.push(at - sentAt.get(k)!);
    }
  }
  latencies.sort((a, b) => a - b);
  subs.forEach((s) => s.req.destroy());
  producer.destroy();
  const deliveries = latencies.length || 1;
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? NaN,
    cpuPerDelivery: ((cpuEnd - cpuStart) * 1e6) / deliveries,
    memoryPerClient: (rssConnected - rssBefore) / clients,
    lost,
  };
}

/**
 * CPU time comes from /proc in 10 ms ticks: with 40 events to 100 clients the whole figure was a dozen ticks, and one
 * tick more or less moved the ratio by 0.1 either way. Every count therefore gets at least this many deliveries.
 */
const MIN_DELIVERIES = 20_000;

export interface SseOptions {
  readonly clients?: number[];
  readonly events?: number;
  readonly minDeliveries?: number;
  /** The wait between the last client connected and the RSS read (default 1,500 ms; the quick run's is shorter). */
  readonly settleMs?: number;
  /** How many times each pair (daemon, bare server) is measured, alternating, in fresh processes (see repeat.ts). */
  readonly repetitions?: number;
}

export async function benchSse(options: SseOptions = {}): Promise<Figure[]> {
  const counts = options.clients ?? [100, 1000, 5000];
  const figures: Figure[] = [];
  for (const n of counts) {
    const events = Math.max(options.events ?? 40, Math.ceil((options.minDeliveries ?? MIN_DELIVERIES) / n));
    // A fresh server each run: its memory per client is the growth of its RSS as the clients connect.
    const measureOnce = (name: Target['name']) => async () => {
      const target = await startTarget(name);
      let run: Run;
      try {
        run = await measure(target, n, events, options.settleMs ?? 1500);
      } finally {
        await stopTarget(target);
      }
      if (run.lost > 0) process.stderr.write(`warning: ${n} clients: ${run.lost} deliveries missing (${name})\n`);
      return { p50: run.p50, p99: run.p99, max: run.max, cpu: run.cpuPerDelivery, memory: run.memoryPerClient / 1024 };
    };
    figures.push(
      ...(await repeatPairs({
        name: `SSE fan-out, ${n} clients`,
        repetitions: options.repetitions ?? 3,
        value: measureOnce('daemon'),
        baseline: measureOnce('bare'),
        figures: [
          { name: `SSE p50 latency, ${n} clients`, unit: 'ms', value: 'p50', baseline: 'p50', goal: null },
          { name: `SSE p99 latency, ${n} clients`, unit: 'ms', value: 'p99', baseline: 'p99', goal: n === 1000 ? '<= 1.25' : null },
          { name: `SSE max latency, ${n} clients`, unit: 'ms', value: 'max', baseline: 'max', goal: null },
          { name: `SSE CPU per delivered event, ${n} clients`, unit: 'µs', value: 'cpu', baseline: 'cpu', goal: '<= 1.25' },
          { name: `SSE memory per client, ${n} clients`, unit: 'KiB', value: 'memory', baseline: 'memory', goal: '<= 1.25' },
        ],
      })),
    );
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const quick = args.includes('--quick');
  const clients = arg('--clients')?.split(',').map(Number) ?? (quick ? [100, 1000] : undefined);
  const events = arg('--events') ? Number(arg('--events')) : quick ? 15 : undefined;
  const repetitions = arg('--repetitions') ? Number(arg('--repetitions')) : undefined;
  printFigures(await benchSse({ clients, events, minDeliveries: quick ? 5_000 : undefined, repetitions }), args.includes('--json'));
}
