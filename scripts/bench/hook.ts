/**
 * Hook benchmark: time from spawn() to exit of `node dist/cli.js hook claude-code` (the command the README's
 * settings.json runs before every tool call of Claude Code), next to `node -e 0` measured in the same run (what Node
 * itself costs to start). Goal: within 2x of `node -e 0`.
 *
 * Run alone, the bundle is built fresh into a temporary directory with the real build (scripts/build.ts), so the
 * figure is for the current sources and dist/ is left alone; `npm run bench` passes the bundle it built. The hook
 * gets a recorded PreToolUse payload on stdin and a listening socket (a plain server that only reads, so that the
 * daemon's own cost is not in the figure); a second figure has no daemon at all. One measurement is the median of
 * `runs` spawns; the pair (hook, `node -e 0`) is measured `repetitions` times, alternating (see repeat.ts).
 *
 * Usage: node --import tsx scripts/bench/hook.ts [--runs N] [--repetitions 3] [--json]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildDist, ROOT } from '../build.ts';
import { printFigures, type Figure } from './figure.ts';
import { median, repeatPairs } from './repeat.ts';

const PAYLOAD = readFileSync(join(ROOT, 'test/fixtures/claude-code/pre-tool-use.json'));
const GOAL = '<= 2' as const;

/** Milliseconds from spawn to exit; rejects if the process fails. */
async function timed(args: string[], stdin: Buffer | null): Promise<number> {
  const started = performance.now();
  const proc = spawn(process.execPath, args, { stdio: [stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  if (stdin) proc.stdin!.end(stdin);
  const [code] = (await once(proc, 'exit')) as [number | null];
  const elapsed = performance.now() - started;
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited with ${code}: ${stderr}`);
  return elapsed;
}

/** `bundle`: an already built dist/cli.js (npm run bench builds once for every benchmark); else one is built here. */
export interface HookOptions {
  /** Spawns of each kind per measurement: the median of these is one run's value. */
  readonly runs?: number;
  /** How many times the pair (hook, `node -e 0`) is measured, alternating (see repeat.ts); default 3. */
  readonly repetitions?: number;
  readonly bundle?: string;
}

export async function benchHook(options: HookOptions = {}): Promise<Figure[]> {
  const runs = options.runs ?? 10;
  const repetitions = options.repetitions ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-hook-'));
  try {
    const file = options.bundle ?? (await buildDist(join(dir, 'dist'))).file;
    const socket = join(dir, 'ingest.sock');
    let received = 0;
    const server = net.createServer((c) => {
      c.setEncoding('utf8');
      c.on('data', (d: string) => (received += d.split('\n').length - 1));
      c.on('error', () => {});
    });
    server.listen(socket);
    await once(server, 'listening');
    const missing = join(dir, 'nobody.sock');

    // One warm-up of each, so that the first run does not pay for the page cache.
    await timed(['-e', '0'], null);
    await timed([file, 'hook', 'claude-code', '--socket', socket], PAYLOAD);
    received = 0;
    const figures = await repeatPairs({
      name: 'hook',
      repetitions,
      value: async () => {
        const up: number[] = [];
        const down: number[] = [];
        for (let i = 0; i < runs; i++) {
          up.push(await timed([file, 'hook', 'claude-code', '--socket', socket], PAYLOAD));
          down.push(await timed([file, 'hook', 'claude-code', '--socket', missing], PAYLOAD));
        }
        return { up: median(up), down: median(down) };
      },
      baseline: async () => {
        const base: number[] = [];
        for (let i = 0; i < runs; i++) base.push(await timed(['-e', '0'], null));
        return { base: median(base) };
      },
      figures: [
        { name: 'hook claude-code, spawn to exit (daemon listening)', unit: 'ms', value: 'up', baseline: 'base', goal: GOAL },
        { name: 'hook claude-code, spawn to exit (no daemon)', unit: 'ms', value: 'down', baseline: 'base', goal: GOAL },
      ],
    });
    await new Promise<void>((r) => server.close(() => r()));
    // A fast hook that delivers nothing would be a meaningless figure.
    if (received !== runs * repetitions) throw new Error(`the hook delivered ${received} of ${runs * repetitions} events`);
    return figures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, repetitions: { type: 'string' }, json: { type: 'boolean' } } });
  const figures = await benchHook({ runs: values.runs ? Number(values.runs) : undefined, repetitions: values.repetitions ? Number(values.repetitions) : undefined });
  printFigures(figures, values.json ?? false);
}
