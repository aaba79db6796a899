/**
 * The npm package as a user gets it: `npm pack` (whose `prepack` builds dist/), installed into an empty folder, and
 * `npx pocketpaw-status serve`, `status`, `emit` and `hook claude-code` run from there on the compiled build, as does
 * the library (`pocketpaw-status/emitter`) under plain node: tsx and esbuild are removed from the install first, so
 * nothing can fall back on the TypeScript sources.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, cleanEnv, tempDir, waitFor, waitForStatus } from './helpers/daemon.ts';

/** The environment of a user's shell: none of the variables `npm test` sets for its own scripts. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = cleanEnv(extra);
  for (const name of Object.keys(env)) if (/^npm_/i.test(name) || name === 'NODE_TEST_CONTEXT') delete env[name];
  return env;
}

function sh(command: string, args: string[], cwd: string, input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { cwd, env: userEnv(), encoding: 'utf8', input, timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir: string;
let tarball: string;
let app: string;
let server: ChildProcess | null = null;

before(() => {
  dir = tempDir();
  const packed = sh('npm', ['pack', '--pack-destination', dir], ROOT);
  assert.equal(packed.status, 0, packed.stderr);
  const name = readdirSync(dir).find((f) => /^pocketpaw-status-.*\.tgz$/.test(f));
  assert.ok(name, `npm pack wrote no tarball: ${packed.stdout}`);
  tarball = join(dir, name);
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "name": "an-empty-folder", "private": true }\n');
});

after(() => {
  if (server?.pid) process.kill(-server.pid, 'SIGKILL');
});

test('the tarball: the compiled build, the sources it needs, systemd units, README and LICENSE; no tests, fixtures or benchmarks', () => {
  const list = sh('tar', ['-tzf', tarball], dir);
  assert.equal(list.status, 0, list.stderr);
  const files = list.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of ['dist/cli.js', 'dist/package.json', 'dist/protocol/index.js', 'dist/protocol/emitter.js', 'scripts/pocketpaw-status.js', 'protocol/emitter.ts', 'protocol/README.md', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  for (const unit of ['pocketpaw-status.service', 'pocketpaw-status.socket', 'pocketpaw-status-http.socket']) assert.ok(files.includes(`systemd/${unit}`), unit);
  const unwanted = files.filter((f) => /(^|\/)test\/|\.test\.ts$|fixtures|(^|\/)bench\/|^daemon\/|\.map$/.test(f));
  assert.deepEqual(unwanted, [], 'no tests, fixtures, benchmarks or daemon sources');
});

test('installed into an empty folder, npx pocketpaw-status serve, emit, hook claude-code and status run the compiled build', { timeout: 300_000 }, async () => {
  const install = sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
  assert.equal(install.status, 0, install.stderr);
  // No TypeScript at run time: without tsx (and its esbuild) only the compiled build can run.
  for (const pkg of ['tsx', 'esbuild', '@esbuild']) rmSync(join(app, 'node_modules', pkg), { recursive: true, force: true });
  assert.equal(existsSync(join(app, 'node_modules/pocketpaw-status/daemon')), false);

  const socket = join(app, 'ingest.sock');
  let stderr = '';
  // Its own state folder (the default path under a fresh XDG_STATE_HOME): nothing of another run comes back.
  server = spawn('npx', ['pocketpaw-status', 'serve', '--port', '0', '--socket', socket], { cwd: app, env: { ...userEnv(), XDG_STATE_HOME: join(app, 'state') }, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  server.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const url = (await waitFor(() => /"http":"(http:[^"]+)".*"msg":"ready/.exec(stderr)?.[1], { timeoutMs: 60_000, what: `serve's ready line; stderr: ${stderr}` }))!;

  const emit = sh('npx', ['pocketpaw-status', 'emit', 'agent_start', '--session', 'cli:deploy', '--title', 'Deploy the site', '--socket', socket], app);
  assert.equal(emit.status, 0, emit.stderr);
  const payload = JSON.stringify({ hook_event_name: 'UserPromptSubmit', session_id: 'pkg1', prompt: 'Fix the tests\nplease', cwd: app });
  const hook = sh('npx', ['pocketpaw-status', 'hook', 'claude-code', '--socket', socket], app, payload);
  assert.equal(hook.status, 0, hook.stderr);
  assert.equal(hook.stdout, '', 'a hook prints nothing on stdout');
  // The library, as an agent running plain node imports it.
  const agent = [
    "import { StatusEmitter } from 'pocketpaw-status/emitter';",
    "import { AgentStatusResponse } from 'pocketpaw-status';",
    `const status = new StatusEmitter({ agent: 'pkg-agent', socket: ${JSON.stringify(socket)} });`,
    "status.emit({ type: 'agent_start', session_key: 'websocket:lib', title: 'From the library' });",
    "if (typeof AgentStatusResponse.parse !== 'function') process.exit(3);",
    'await status.close();',
  ].join('\n');
  const lib = sh(process.execPath, ['--input-type=module', '-e', agent], app);
  assert.equal(lib.status, 0, lib.stderr);
  await waitForStatus(url, (s) => s.sessions.length === 3, 'the three sessions');

  const status = sh('npx', ['pocketpaw-status', 'status', '--json', '--url', url], app);
  assert.equal(status.status, 0, status.stderr);
  const body = JSON.parse(status.stdout) as { sessions: { session_key: string; title: string | null }[] };
  assert.deepEqual(body.sessions.map((s) => [s.session_key, s.title]), [['cli:deploy', 'Deploy the site'], ['claude-code:pkg1', 'Fix the tests'], ['websocket:lib', 'From the library']]);

  process.kill(-server.pid!, 'SIGTERM');
  // npx may be gone before the daemon it started (both got the signal): the daemon's own last line says it stopped.
  await waitFor(() => /"msg":"stopped"/.test(stderr), { timeoutMs: 10_000, what: `the daemon's "stopped" line; stderr: ${stderr}` });
  await waitFor(() => server!.exitCode !== null || server!.signalCode !== null, { timeoutMs: 10_000, what: 'serve to stop' });
  server = null;
});
