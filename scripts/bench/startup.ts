/**
 * Start-up benchmark: time from spawn() to the first answered HTTP request, and resident memory at that moment, for
 *   - a bare `node -e` HTTP server (the baseline: what Node itself costs),
 *   - the compiled bundle (`node dist/cli.js serve`, what the systemd unit runs),
 *   - `node --import tsx daemon/cli.ts serve` (what `npm start` runs),
 *   - the `tsx` command (`tsx daemon/cli.ts serve`: two processes, a supervisor and the daemon).
 * One measurement starts each daemon variant `runs` times, one at a time, interleaved, and takes the medians; the bare
 * server's measurement does the same. The pair is measured `repetitions` times, alternating (see repeat.ts). Goal:
 * the compiled start within 2x of bare Node.
 *
 * Usage: node --import tsx scripts/bench/startup.ts [--runs N] [--repetitions 3] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildDist, ROOT } from '../build.ts';
import { formatTable, type Figure } from './figure.ts';
import { median, repeatPairs } from './repeat.ts';

interface Variant {
  readonly name: string;
  /** argv after `node`; PORT and SOCKET are substituted. */
  readonly args: (port: number, socket: string) => string[];
  readonly command?: string;
}

interface Sample {
  readonly readyMs: number;
  readonly rssBytes: number;
  /** CPU time the process tree used until ready: unlike wall time, hardly moved by other load on the machine. */
  readonly cpuMs: number;
}

const BARE_SERVER = "require('node:http').createServer((q, s) => s.end('ok')).listen(Number(process.argv[1]), '127.0.0.1')";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/livez', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

/** A process and all its descendants (the tsx command runs the daemon in a child). */
function processTree(pid: number): number[] {
  const all: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    all.push(p);
    try {
      for (const child of readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/)) if (child) stack.push(Number(child));
    } catch {
      // The process ended meanwhile.
    }
  }
  return all;
}

/** Resident memory of the tree, in bytes. */
function treeRss(pids: readonly number[]): number {
  let total = 0;
  for (const p of pids) {
    try {
      total += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // ended
    }
  }
  return total;
}

/** CPU time of every thread of the tree (V8's compiler and GC threads included), in ms, from schedstat (ns). */
function treeCpuMs(pids: readonly number[]): number {
  let ns = 0;
  for (const p of pids) {
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) ns += Number(readFileSync(`/proc/${p}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // ended
    }
  }
  return ns / 1e6;
}

async function startOnce(variant: Variant, dir: string): Promise<Sample> {
  const port = await freePort();
  const socket = join(dir, `ingest-${port}.sock`);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POCKETPAW_STATUS_') && !k.startsWith('LISTEN_')) env[k] = v;
  const started = performance.now();
  const proc: ChildProcess = spawn(variant.command ?? process.execPath, variant.args(port, socket), { cwd: ROOT, env, stdio: 'ignore' });
  const exited = once(proc, 'exit');
  try {
    for (;;) {
      if (await answers(port)) break;
      if (proc.exitCode !== null) throw new Error(`${variant.name} exited with ${proc.exitCode} before answering`);
      if (performance.now() - started > 30_000) throw new Error(`${variant.name} did not answer within 30 s`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const readyMs = performance.now() - started;
    const tree = processTree(proc.pid!);
    return { readyMs, rssBytes: treeRss(tree), cpuMs: treeCpuMs(tree) };
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
}

export interface StartupResult {
  readonly figures: Figure[];
  /** Medians per variant, for the docs' table. */
  readonly variants: { name: string; readyMs: number; cpuMs: number; rssMiB: number }[];
}

/** `bundle`: an already built dist/cli.js (npm run bench builds once for every benchmark); else one is built here. */
export interface StartupOptions {
  /** Starts of each variant per measurement: the median of these is one run's value. */
  readonly runs?: number;
  /** How many times the pair (daemon variants, bare node) is measured, alternating (see repeat.ts); default 3. */
  readonly repetitions?: number;
  readonly bundle?: string;
  /**
   * One unmeasured start of each variant first, so the first measured start does not read the files from disk
   * (default true). `npm run bench -- --quick` skips it: by then its earlier benchmarks have started the daemon both
   * ways and the build has just written the bundle, so every file is in the page cache already.
   */
  readonly warmup?: boolean;
}

export async function benchStartup(options: StartupOptions = {}): Promise<Figure[]> {
  return (await measureStartup(options)).figures;
}

/** The median of each of a sample's quantities, as the metrics of one run: `<prefix>Ready`, `<prefix>Cpu`, `<prefix>Rss`. */
function medians(prefix: string, samples: readonly Sample[]): Record<string, number> {
  return {
    [`${prefix}Ready`]: median(samples.map((s) => s.readyMs)),
    [`${prefix}Cpu`]: median(samples.map((s) => s.cpuMs)),
    [`${prefix}Rss`]: median(samples.map((s) => s.rssBytes)) / 1024 / 1024,
  };
}

export async function measureStartup(options: StartupOptions = {}): Promise<StartupResult> {
  const runs = options.runs ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-startup-'));
  try {
    const file = options.bundle ?? (await buildDist(join(dir, 'dist'))).file;
    const tsxCli = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
    const bare: Variant = { name: 'bare node', args: (port) => ['-e', BARE_SERVER, String(port)] };
    const variants: (Variant & { readonly key: string })[] = [
      { key: 'compiled', name: 'compiled', args: (port, socket) => [file, 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
      { key: 'tsx', name: 'node --import tsx', args: (port, socket) => ['--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
      { key: 'command', name: 'tsx command', args: (port, socket) => [tsxCli, join(ROOT, 'daemon/cli.ts'), 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
    ];
    // One warm-up start each (file cache), then the variants interleaved so that drift on a busy machine hits all alike.
    if (options.warmup ?? true) for (const v of [bare, ...variants]) await startOnce(v, dir);
    const figures = await repeatPairs({
      name: 'start-up',
      repetitions: options.repetitions ?? 3,
      value: async () => {
        const samples = new Map<string, Sample[]>(variants.map((v) => [v.key, []]));
        for (let i = 0; i < runs; i++) for (const v of variants) samples.get(v.key)!.push(await startOnce(v, dir));
        return Object.assign({}, ...variants.map((v) => medians(v.key, samples.get(v.key)!))) as Record<string, number>;
      },
      baseline: async () => {
        const samples: Sample[] = [];
        for (let i = 0; i < runs; i++) samples.push(await startOnce(bare, dir));
        return medians('bare', samples);
      },
      // Each figure compares with the bare node server started in the same run; only the compiled start has a goal.
      figures: [
        { name: 'start-up to first answer, compiled (node dist/cli.js)', unit: 'ms', value: 'compiledReady', baseline: 'bareReady', goal: '<= 2' },
        { name: 'CPU time to first answer, compiled (all threads)', unit: 'ms', value: 'compiledCpu', baseline: 'bareCpu', goal: null },
        { name: 'resident memory at ready, compiled', unit: 'MiB', value: 'compiledRss', baseline: 'bareRss', goal: null },
        { name: 'start-up to first answer, node --import tsx (npm start)', unit: 'ms', value: 'tsxReady', baseline: 'bareReady', goal: null },
        { name: 'resident memory at ready, node --import tsx', unit: 'MiB', value: 'tsxRss', baseline: 'bareRss', goal: null },
        { name: 'start-up to first answer, tsx command (two processes)', unit: 'ms', value: 'commandReady', baseline: 'bareReady', goal: null },
        { name: 'resident memory at ready, tsx command (both processes)', unit: 'MiB', value: 'commandRss', baseline: 'bareRss', goal: null },
      ],
    });
    const [ready, cpu, rss] = [figures[0]!, figures[1]!, figures[2]!];
    const round = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;
    const pick = (name: string) => figures.find((f) => f.name === name)!.value;
    return {
      figures,
      variants: [
        { name: 'bare node', readyMs: round(ready.baseline!), cpuMs: round(cpu.baseline!), rssMiB: round(rss.baseline!, 1) },
        { name: 'compiled', readyMs: round(ready.value), cpuMs: round(cpu.value), rssMiB: round(rss.value, 1) },
        { name: 'node --import tsx', readyMs: round(pick('start-up to first answer, node --import tsx (npm start)')), cpuMs: NaN, rssMiB: round(pick('resident memory at ready, node --import tsx'), 1) },
        { name: 'tsx command', readyMs: round(pick('start-up to first answer, tsx command (two processes)')), cpuMs: NaN, rssMiB: round(pick('resident memory at ready, tsx command (both processes)'), 1) },
      ],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, repetitions: { type: 'string' }, json: { type: 'boolean' } } });
  const result = await measureStartup({ runs: values.runs ? Number(values.runs) : undefined, repetitions: values.repetitions ? Number(values.repetitions) : undefined });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(formatTable(result.figures));
    process.stdout.write('\n| start | time to first answer | CPU time until then | resident memory |\n|---|---|---|---|\n');
    for (const v of result.variants) process.stdout.write(`| ${v.name} | ${v.readyMs} ms | ${Number.isNaN(v.cpuMs) ? "-" : `${v.cpuMs} ms`} | ${v.rssMiB} MiB |\n`);
  }
}
