/**
 * The production start path: `npm run build` makes a bundle that plain `node` runs, with no tsx and no node_modules.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildDist } from '../scripts/build.ts';
import { Producer, cleanEnv, tempDir, waitFor, waitForStatus, session, type LogLine } from './helpers/daemon.ts';

let dir: string;
let bundle: string;

before(async () => {
  // A temporary directory with no node_modules anywhere above it: the bundle must carry everything it imports.
  dir = tempDir();
  bundle = (await buildDist(join(dir, 'dist'))).file;
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('the build is one ESM file that imports nothing but Node built-ins', () => {
  assert.equal(bundle, join(dir, 'dist', 'cli.js'));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dist', 'package.json'), 'utf8')), { type: 'module', private: true });
  const source = readFileSync(bundle, 'utf8');
  const imports = [...source.matchAll(/^import .* from ["']([^"']+)["'];?$/gm), ...source.matchAll(/\b(?:__)?require\(["']([^"']+)["']\)/g)].map((m) => m[1]!);
  const external = imports.filter((spec) => !builtinModules.includes(spec.replace(/^node:/, '')));
  assert.deepEqual([...new Set(external)], [], 'no import of a package left for node_modules to resolve');
  assert.doesNotMatch(source, /node_modules\/tsx\//, 'tsx is not part of the production start');
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
