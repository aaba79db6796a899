/**
 * A newcomer's first minutes: `npm test` on a machine without the optional system tools skips what needs them and
 * says so in one last line (and fails under CI=true); a second `npm start` says in one line what is taken and what to
 * pass instead.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { ROOT, cleanEnv, runCli, startDaemon, tempDir } from './helpers/daemon.ts';

/** A PATH holding every command of this one except `hidden` (symlinks in a folder of the test's own). */
function pathWithout(hidden: RegExp): string {
  const dir = join(tempDir(), 'bin');
  mkdirSync(dir);
  const seen = new Set<string>();
  for (const folder of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) {
      if (hidden.test(name) || seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(folder, name), join(dir, name));
    }
  }
  return dir;
}

function nodeTest(file: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  const args = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout'];
  args.push('--test-reporter=./test/helpers/skip-summary.mjs', '--test-reporter-destination=stdout', file);
  return new Promise((resolve, reject) => {
    // Not as a child of this test run (node:test would report to it instead of printing): a run of its own.
    const { NODE_TEST_CONTEXT: _, ...own } = cleanEnv(env);
    const proc = spawn(process.execPath, args, { cwd: ROOT, env: own, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.resume();
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout }));
  });
}

test('without python3 its tests are skipped, and the run ends with one line naming the Debian package', { timeout: 120_000 }, async () => {
  const PATH = pathWithout(/^python3/);
  const run = await nodeTest('test/emitter-python.test.ts', { PATH, CI: '' });
  assert.equal(run.code, 0, run.stdout);
  assert.match(run.stdout, /# needs python3: apt-get install python3/, 'the spec output gives the reason');
  const last = run.stdout.trimEnd().split('\n').at(-1)!;
  assert.match(last, /^skipped 1 \(1 without python3\); to run them: apt-get install python3$/);

  const ci = await nodeTest('test/emitter-python.test.ts', { PATH, CI: 'true' });
  assert.notEqual(ci.code, 0, 'under CI=true a missing tool is a failure');
  assert.match(ci.stdout, /CI=true: \.ci\/run must install it/);
});

test('with every tool present, the last line says nothing was skipped', { timeout: 60_000 }, async () => {
  const run = await nodeTest('daemon/state/fold.test.ts', { CI: '' });
  assert.equal(run.code, 0, run.stdout);
  assert.equal(run.stdout.trimEnd().split('\n').at(-1), 'skipped: nothing');
});

test('a second start on a taken socket or port: one line saying which, and what to pass instead; exit 1', { timeout: 60_000 }, async () => {
  const first = await startDaemon();
  try {
    const port = new URL(first.url).port;
    // `npm start` twice: the same socket (and port).
    const twice = await runCli(['serve', '--socket', first.socket, '--port', port]);
    assert.equal(twice.code, 1);
    const lines = twice.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, twice.stderr);
    assert.match(lines[0]!, new RegExp(`another daemon is listening on ${first.socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(lines[0]!, /pass --socket PATH and --port N/);
    assert.equal(twice.stdout, '');

    // A service holding the port only.
    const port2 = await runCli(['serve', '--socket', join(tempDir(), 'other.sock'), '--port', port]);
    assert.equal(port2.code, 1);
    const lines2 = port2.stderr.trimEnd().split('\n');
    assert.equal(lines2.length, 1, port2.stderr);
    assert.match(lines2[0]!, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*pass --port N \\(0 picks a free one\\)`));
  } finally {
    await first.stop();
  }
});

test('a second daemon on the same state folder: one line naming the first one\'s pid and what to pass instead; its state untouched', { timeout: 60_000 }, async () => {
  const stateDir = join(tempDir(), 'state');
  const first = await startDaemon({ args: ['--state-dir', stateDir] });
  try {
    // A newcomer's second `npm start` with another socket and port, but the default (shared) state folder.
    const second = await runCli(['serve', '--socket', join(tempDir(), 'other.sock'), '--port', '0', '--state-dir', stateDir]);
    assert.equal(second.code, 1);
    const lines = second.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, second.stderr);
    assert.match(lines[0]!, new RegExp(`another daemon \\(pid ${first.proc.pid}\\) keeps its state in `));
    assert.match(lines[0]!, /pass --state-dir DIR \(or none\)/);
    assert.equal(readFileSync(join(stateDir, 'daemon.pid'), 'utf8').trim(), String(first.proc.pid), 'the lock is still the first daemon\'s');
  } finally {
    await first.stop();
  }
  assert.equal(existsSync(join(stateDir, 'daemon.pid')), false, 'a clean stop gives the folder back');
  // A daemon killed outright leaves its lock behind: the next start takes it over.
  const killed = await startDaemon({ args: ['--state-dir', stateDir] });
  await killed.stop('SIGKILL');
  const next = await startDaemon({ args: ['--state-dir', stateDir] });
  await next.stop();
});
