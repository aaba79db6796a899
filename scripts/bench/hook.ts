/**
 * Hook benchmark: time from spawn() to exit of `node dist/hook.js hook claude-code` (the command `hook claude-code
 * --install` writes into Claude Code's settings, run twice per tool call), next to `node -e 0` measured in the same run
 * (what Node itself costs to start). Goals: within 2x of `node -e 0` with a PreToolUse payload (issue 5), and within
 * 1.3x with a PostToolUse payload whose transcript is a generated 50 MB file (issue 12: the hook reads the turn's
 * token counts from it). The same PreToolUse through the daemon's bundle (`node dist/cli.js hook claude-code`) is
 * shown for reference.
 *
 * Run alone, the bundles are built fresh into a temporary directory with the real build (scripts/build.ts), so the
 * figures are for the current sources and dist/ is left alone; `npm run bench` passes the bundle it built (hook.js is
 * built next to it). The hook gets a recorded payload on stdin and a listening socket (a plain server that only
 * reads, so that the daemon's own cost is not in the figure); one figure has no daemon at all. One measurement is the
 * median of `runs` spawns of each variant; the pair (hook variants, `node -e 0`) is measured `repetitions` times,
 * alternating (see repeat.ts).
 *
 * Usage: node --import tsx scripts/bench/hook.ts [--runs N] [--repetitions 3] [--json]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { assistant, prompt, toolResult, usage, writeBigTranscript } from '../../test/helpers/claude-transcript.ts';
import { buildDist, buildHook, ROOT } from '../build.ts';
import { printFigures, type Figure } from './figure.ts';
import { median, repeatPairs } from './repeat.ts';

const PAYLOAD = readFileSync(join(ROOT, 'test/fixtures/claude-code/pre-tool-use.json'));
const POST_PAYLOAD = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/claude-code/post-tool-use.json'), 'utf8')) as Record<string, unknown>;
const GOAL = '<= 2' as const;
const TRANSCRIPT_GOAL = '<= 1.3' as const;
const TRANSCRIPT_BYTES = 50 * 1024 * 1024;

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

/** The last turn of the generated transcript: a prompt and ten tool calls with their results (about 200 KB). */
function lastTurn(): string[] {
  const lines = [prompt('Fix the failing checkout tests')];
  for (let i = 0; i < 10; i++) lines.push(...assistant(`msg_bench_${i}`, usage(3000, 150, 500, 60_000), 3), toolResult(`toolu_bench_${i}`, 16 * 1024));
  return lines;
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
    const beside = join(dirname(file), 'hook.js');
    const hookFile = existsSync(beside) ? beside : await buildHook(join(dir, 'hook'));
    const transcript = join(dir, 'transcript.jsonl');
    writeBigTranscript(transcript, TRANSCRIPT_BYTES, lastTurn());
    const post = Buffer.from(JSON.stringify({ ...POST_PAYLOAD, transcript_path: transcript }));
    const socket = join(dir, 'ingest.sock');
    let received = 0;
    let tokens = 0;
    const server = net.createServer((c) => {
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        for (const line of d.split('\n').slice(0, -1)) {
          if (line.includes('"token_usage"')) tokens++;
          else received++;
        }
      });
      c.on('error', () => {});
    });
    server.listen(socket);
    await once(server, 'listening');
    const missing = join(dir, 'nobody.sock');

    const hook = (bundle: string, sock: string) => [bundle, 'hook', 'claude-code', '--socket', sock];
    // One warm-up of each, so that the first run does not pay for the page cache.
    await timed(['-e', '0'], null);
    await timed(hook(hookFile, socket), PAYLOAD);
    await timed(hook(hookFile, socket), post);
    await timed(hook(file, socket), PAYLOAD);
    received = 0;
    tokens = 0;
    const figures = await repeatPairs({
      name: 'hook',
      repetitions,
      value: async () => {
        const up: number[] = [];
        const down: number[] = [];
        const big: number[] = [];
        const viaCli: number[] = [];
        for (let i = 0; i < runs; i++) {
          up.push(await timed(hook(hookFile, socket), PAYLOAD));
          down.push(await timed(hook(hookFile, missing), PAYLOAD));
          big.push(await timed(hook(hookFile, socket), post));
          viaCli.push(await timed(hook(file, socket), PAYLOAD));
        }
        return { up: median(up), down: median(down), big: median(big), viaCli: median(viaCli) };
      },
      baseline: async () => {
        const base: number[] = [];
        for (let i = 0; i < runs; i++) base.push(await timed(['-e', '0'], null));
        return { base: median(base) };
      },
      figures: [
        { name: 'hook claude-code, spawn to exit (daemon listening)', unit: 'ms', value: 'up', baseline: 'base', goal: GOAL },
        { name: 'hook claude-code, spawn to exit (no daemon)', unit: 'ms', value: 'down', baseline: 'base', goal: GOAL },
        { name: 'hook claude-code, spawn to exit (PostToolUse, 50 MB transcript)', unit: 'ms', value: 'big', baseline: 'base', goal: TRANSCRIPT_GOAL },
        { name: 'hook claude-code through dist/cli.js, spawn to exit (reference)', unit: 'ms', value: 'viaCli', baseline: 'base', goal: null },
      ],
    });
    await new Promise<void>((r) => server.close(() => r()));
    // A fast hook that delivers nothing would be a meaningless figure: one event per run, and token counts read from
    // the 50 MB transcript for most PostToolUse runs (a run that blows the hook's 30 ms reading budget on a loaded
    // machine sends its event without them, as designed: said on stderr).
    const total = runs * repetitions;
    if (received !== total * 3) throw new Error(`the hook delivered ${received} of ${total * 3} events`);
    if (tokens * 2 < total) throw new Error(`token counts came with only ${tokens} of ${total} PostToolUse runs`);
    if (tokens < total) process.stderr.write(`hook: ${total - tokens} of ${total} PostToolUse runs gave up reading the transcript (30 ms budget)\n`);
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
