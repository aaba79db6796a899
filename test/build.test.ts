/**
 * The production start path: `npm run build` makes a bundle that plain `node` runs, with no tsx and no node_modules.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildDist, SEPARATE } from '../scripts/build.ts';
import { Producer, cleanEnv, tempDir, waitFor, waitForStatus, session, type LogLine } from './helpers/daemon.ts';

let dir: string;
let bundle: string;

before(async () => {
  // A temporary directory with no node_modules anywhere above it: the bundle must carry everything it imports.
  dir = tempDir();
  bundle = (await buildDist(join(dir, 'dist'))).file;
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the build is CommonJS files that import nothing but Node built-ins and each other', () => {
  assert.equal(bundle, join(dir, 'dist', 'cli.js'));
  // CommonJS: Node starts it without setting up its ES module loader (scripts/build.ts, COMMONJS).
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dist', 'package.json'), 'utf8')), { type: 'commonjs', private: true });
  for (const file of ['cli.js', ...Object.values(SEPARATE).map((s) => s.file)]) {
    const source = readFileSync(join(dir, 'dist', file), 'utf8');
    const imports = [...source.matchAll(/^import .* from ["']([^"']+)["'];?$/gm), ...source.matchAll(/\b(?:__)?require\(["']([^"']+)["']\)/g)].map((m) => m[1]!);
    const external = imports.filter((spec) => !builtinModules.includes(spec.replace(/^node:/, '')));
    assert.deepEqual([...new Set(external)], [], `${file}: no import of a package left for node_modules to resolve`);
    assert.doesNotMatch(source, /node_modules\/tsx\//, `${file}: tsx is not part of the production start`);
    // Files loaded on demand are imported by a path next to the importer, and are there.
    for (const [, spec] of source.matchAll(/\bimport\(["'](\.\/[^"']+)["']\)/g)) assert.ok(existsSync(join(dir, 'dist', spec!)), `${file} imports ${spec}, which the build wrote`);
  }
});

test('cli.js holds what serve runs and nothing it does not: prom-client, the other commands and pino transports are not in it', () => {
  const source = readFileSync(bundle, 'utf8');
  for (const [pattern, what] of [
    [/node_modules\/prom-client\//, 'prom-client (its own file, loaded on the first /metrics scrape)'],
    [/daemon\/cli\/(status|emit|hook-claude-code)\.ts/, 'the status, emit and hook commands (files of their own)'],
    [/node_modules\/thread-stream\//, "pino's transports (never used: the daemon logs through pino.destination)"],
  ] as const) {
    assert.doesNotMatch(source, pattern, `cli.js does not carry ${what}`);
  }
  for (const { file } of Object.values(SEPARATE)) assert.ok(source.includes(`import("./${file}")`), `cli.js loads ${file} when it is needed`);
});

test('the other commands run from their own files under plain node', async () => {
  for (const command of ['status', 'emit', 'hook']) {
    const proc = spawn(process.execPath, [bundle, command, '--help'], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0, `${command} --help: ${out}`);
    assert.match(out, new RegExp(`^Usage: pocketpaw-status ${command}\\b`), `${command} --help prints its usage`);
  }
});

test('the bundle runs under plain node: ready, ingests, serves the snapshot, metrics and health, stops on SIGTERM', async () => {
  const socket = join(dir, 'ingest.sock');
  const proc = spawn(process.execPath, [bundle, 'serve', '--port', '0', '--socket', socket, '--state-dir', 'none'], {
    cwd: dir,
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    const ready = (await waitFor(
      (): LogLine | null => {
        for (const line of stderr.split('\n')) {
          try {
            const log = JSON.parse(line) as LogLine;
            if (log.msg.startsWith('ready')) return log;
          } catch {
            // a partial line
          }
        }
        if (proc.exitCode !== null) throw new Error(`the bundle exited with ${proc.exitCode}:\n${stderr}`);
        return null;
      },
      { timeoutMs: 20_000, what: 'the ready log line' },
    )) as LogLine;
    const url = ready.http as string;

    const p = await Producer.connect(socket);
    p.send({ type: 'hello', agent: 'build-test' }, { type: 'agent_start', session_key: 'websocket:built', title: 'from the bundle' }, '{"type":"tool_start"\n');
    const [reply] = await p.waitReplies(1);
    assert.match(reply!, /^\{"error":"line 3: /, 'bad lines are answered (zod and the framing are in the bundle)');
    const status = await waitForStatus(url, (s) => session(s, 'websocket:built') !== undefined);
    assert.equal(session(status, 'websocket:built')!.title, 'from the bundle');
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    // The status page is embedded at build time: no page sources or esbuild next to the bundle.
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200, await page.clone().text());
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    // prom-client is a file of its own, loaded on the first scrape: while it is missing (an install that left it out)
    // /metrics answers 500, and once it is back the next scrape works (a failed load is not kept).
    const promClient = join(dir, 'dist', 'prom-client.js');
    renameSync(promClient, `${promClient}.away`);
    assert.equal((await fetch(`${url}/metrics`)).status, 500);
    renameSync(`${promClient}.away`, promClient);
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^pocketpaw_status_events_ingested_total\{type="agent_start"\} 1$/m);
    await p.end();

    proc.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.equal(existsSync(socket), false);
    assert.match(stderr, /"msg":"stopped"/);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
});
