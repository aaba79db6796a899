/**
 * Start-up benchmark: time from spawn() to the first answered HTTP request, and resident memory at that moment, for
 *   - a bare `node -e` HTTP server (the baseline: what Node itself costs),
 *   - the compiled bundle (`node dist/cli.js serve`, what the systemd unit runs),
 *   - `node --import tsx daemon/cli.ts serve` (what `npm start` runs),
 *   - the `tsx` command (`tsx daemon/cli.ts serve`: two processes, a supervisor and the daemon).
 * Each is started `runs` times, one at a time; the medians are reported. Goal: the compiled start within 2x of bare
 * Node.
 *
 * Usage: node --import tsx scripts/bench/startup.ts [--runs N] [--json]
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

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface StartupResult {
  readonly figures: Figure[];
  /** Medians per variant, for the README table. */
  readonly variants: { name: string; readyMs: number; cpuMs: number; rssMiB: number }[];
}

/** `bundle`: an already built dist/cli.js (npm run bench builds once for every benchmark); else one is built here. */
export interface StartupOptions {
  readonly runs?: number;
  readonly bundle?: string;
}

export async function benchStartup(options: StartupOptions = {}): Promise<Figure[]> {
  return (await measureStartup(options)).figures;
}

export async function measureStartup(options: StartupOptions = {}): Promise<StartupResult> {
  const runs = options.runs ?? 7;
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-startup-'));
  try {
    const file = options.bundle ?? (await buildDist(join(dir, 'dist'))).file;
    const tsxCli = join(ROOT, 'node_modules/tsx/dist/cli.mjs');
    const variants: Variant[] = [
      { name: 'bare node', args: (port) => ['-e', BARE_SERVER, String(port)] },
      { name: 'compiled', args: (port, socket) => [file, 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
      { name: 'node --import tsx', args: (port, socket) => ['--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
      { name: 'tsx command', args: (port, socket) => [tsxCli, join(ROOT, 'daemon/cli.ts'), 'serve', '--port', String(port), '--socket', socket, '--state-dir', 'none'] },
    ];
    // One warm-up start each (file cache), then the runs interleaved so that drift on a busy machine hits all alike.
    for (const v of variants) await startOnce(v, dir);
    const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
    for (let i = 0; i < runs; i++) for (const v of variants) samples.get(v.name)!.push(await startOnce(v, dir));

    const med = (name: string) => ({
      readyMs: median(samples.get(name)!.map((s) => s.readyMs)),
      rssBytes: median(samples.get(name)!.map((s) => s.rssBytes)),
      cpuMs: median(samples.get(name)!.map((s) => s.cpuMs)),
    });
    const bare = med('bare node');
    const compiled = med('compiled');
    const withTsx = med('node --import tsx');
    const tsxCommand = med('tsx command');
    const ratio = (v: number, b: number) => Math.round((v / b) * 100) / 100;
    const ms = (v: number) => Math.round(v);
    const mib = (v: number) => Math.round((v / 1024 / 1024) * 10) / 10;
    // Each figure compares with the bare node server started in the same run; only the compiled start has a goal.
    const figures: Figure[] = [
      {
        name: 'start-up to first answer, compiled (node dist/cli.js)',
        value: ms(compiled.readyMs),
        unit: 'ms',
        baseline: ms(bare.readyMs),
        ratio: ratio(compiled.readyMs, bare.readyMs),
        goal: '<= 2',
        met: compiled.readyMs <= 2 * bare.readyMs,
      },
      {
        name: 'CPU time to first answer, compiled (all threads)',
        value: ms(compiled.cpuMs),
        unit: 'ms',
        baseline: ms(bare.cpuMs),
        ratio: ratio(compiled.cpuMs, bare.cpuMs),
        goal: null,
        met: null,
      },
      {
        name: 'resident memory at ready, compiled',
        value: mib(compiled.rssBytes),
        unit: 'MiB',
        baseline: mib(bare.rssBytes),
        ratio: ratio(compiled.rssBytes, bare.rssBytes),
        goal: null,
        met: null,
      },
      {
        name: 'start-up to first answer, node --import tsx (npm start)',
        value: ms(withTsx.readyMs),
        unit: 'ms',
        baseline: ms(bare.readyMs),
        ratio: ratio(withTsx.readyMs, bare.readyMs),
        goal: null,
        met: null,
      },
      {
        name: 'resident memory at ready, node --import tsx',
        value: mib(withTsx.rssBytes),
        unit: 'MiB',
        baseline: mib(bare.rssBytes),
        ratio: ratio(withTsx.rssBytes, bare.rssBytes),
        goal: null,
        met: null,
      },
      {
        name: 'start-up to first answer, tsx command (two processes)',
        value: ms(tsxCommand.readyMs),
        unit: 'ms',
        baseline: ms(bare.readyMs),
        ratio: ratio(tsxCommand.readyMs, bare.readyMs),
        goal: null,
        met: null,
      },
      {
        name: 'resident memory at ready, tsx command (both processes)',
        value: mib(tsxCommand.rssBytes),
        unit: 'MiB',
        baseline: mib(bare.rssBytes),
        ratio: ratio(tsxCommand.rssBytes, bare.rssBytes),
        goal: null,
        met: null,
      },
    ];
    return {
      figures,
      variants: [...samples.keys()].map((name) => {
        const m = med(name);
        return { name, readyMs: ms(m.readyMs), cpuMs: ms(m.cpuMs), rssMiB: mib(m.rssBytes) };
      }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, json: { type: 'boolean' } } });
  const result = await measureStartup({ runs: values.runs ? Number(values.runs) : undefined });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(formatTable(result.figures));
    process.stdout.write('\n| start | time to first answer | CPU time until then | resident memory |\n|---|---|---|---|\n');
    for (const v of result.variants) process.stdout.write(`| ${v.name} | ${v.readyMs} ms | ${v.cpuMs} ms | ${v.rssMiB} MiB |\n`);
  }
}
