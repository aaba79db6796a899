/**
 * `serve`'s configuration: flag, else environment variable, else default; invalid values stop the daemon with exit 2
 * and one message naming the flag or variable; `--help` documents every option; the socket path's default rules.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { defaultSocketPath, envName, parseServeConfig, SERVE_OPTIONS, type ServeConfig } from '../daemon/config.ts';
import { cleanEnv, CLI, getStatus, Producer, ROOT, runCli, startDaemon, tempDir, waitFor } from './helpers/daemon.ts';

/** Exit 2, nothing on stdout, and on stderr one message naming `name` (plus the pointer to --help); never started. */
function assertConfigError(result: { code: number | null; stdout: string; stderr: string }, name: string, value: string): void {
  assert.equal(result.code, 2, `exit code; stderr: ${result.stderr}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 2, `one message and the --help pointer, got:\n${result.stderr}`);
  assert.ok(lines[0]!.includes(name), `the message names ${name}: ${lines[0]}`);
  assert.ok(lines[0]!.includes(value), `the message quotes the value ${value}: ${lines[0]}`);
  assert.match(lines[1]!, /serve --help/);
  assert.doesNotMatch(result.stderr, /ready|^\s+at /m);
}

describe('invalid values exit 2 with one message naming the flag', { concurrency: 4 }, () => {
  const cases: [string[], string, string][] = [
    [['--port', '70000'], '--port', '70000'],
    [['--port=-1'], '--port', '-1'],
    [['--socket-mode', '9999'], '--socket-mode', '9999'],
    [['--error-ttl', '-1'], '--error-ttl', '-1'],
    [['--error-ttl', 'soon'], '--error-ttl', 'soon'],
    [['--max-line-bytes', 'abc'], '--max-line-bytes', 'abc'],
    [['--max-concurrent', '0'], '--max-concurrent', '0'],
    [['--nope'], '--nope', '--nope'],
    [['--port'], '--port', '--port'],
  ];
  for (const [args, name, value] of cases) {
    test(args.join(' '), async () => assertConfigError(await runCli(['serve', ...args]), name, value));
  }
});

describe('invalid values in the environment name the variable', { concurrency: 4 }, () => {
  const cases: [string, string][] = [
    ['port', '70000'],
    ['socket-mode', '9999'],
    ['error-ttl', '-1'],
    ['max-line-bytes', 'abc'],
  ];
  for (const [flag, value] of cases) {
    const name = envName(flag);
    test(`${name}=${value}`, async () => {
      const result = await runCli(['serve'], { env: { [name]: value } });
      assertConfigError(result, name, value);
      assert.ok(!result.stderr.includes(`--${flag} `), 'it names the variable, not the flag');
    });
  }
});

describe('flag, else environment, else default', () => {
  test('envName: POCKETPAW_STATUS_ plus the flag in capitals with - as _', () => {
    assert.equal(envName('socket-mode'), 'POCKETPAW_STATUS_SOCKET_MODE');
    assert.equal(envName('max-line-bytes'), 'POCKETPAW_STATUS_MAX_LINE_BYTES');
    assert.equal(envName('port'), 'POCKETPAW_STATUS_PORT');
  });

  test('parseServeConfig: the documented defaults', () => {
    const c = parseServeConfig([], { XDG_RUNTIME_DIR: '/run/user/1000' }) as ServeConfig;
    assert.equal(c.socket, '/run/user/1000/pocketpaw-status/ingest.sock');
    assert.equal(c.socketMode, 0o660);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8780);
    assert.equal(c.maxConcurrent, 5);
    assert.equal(c.errorTtl, 30);
    assert.equal(c.maxLineBytes, 65536);
  });

  test('parseServeConfig: a flag wins over its variable, a variable over the default', () => {
    const env = { POCKETPAW_STATUS_PORT: '9001', POCKETPAW_STATUS_ERROR_TTL: '7', POCKETPAW_STATUS_SOCKET: '/env/s.sock' };
    const c = parseServeConfig(['--port', '9002', '--socket-mode=0600'], env) as ServeConfig;
    assert.equal(c.port, 9002);
    assert.equal(c.errorTtl, 7);
    assert.equal(c.socket, '/env/s.sock');
    assert.equal(c.socketMode, 0o600);
    // A valid flag hides an invalid variable: the variable is never read.
    assert.equal((parseServeConfig(['--port', '1'], { POCKETPAW_STATUS_PORT: '70000' }) as ServeConfig).port, 1);
  });

  test('through the real daemon: flags beat invalid variables, a variable beats the default', async () => {
    const d = await startDaemon({
      // The harness passes --port 0; --max-line-bytes 100 is ours.
      args: ['--max-line-bytes', '100'],
      env: { POCKETPAW_STATUS_PORT: '70000', POCKETPAW_STATUS_MAX_LINE_BYTES: 'abc', POCKETPAW_STATUS_MAX_CONCURRENT: '9' },
    });
    try {
      assert.equal((await getStatus(d.url)).global.max_concurrent, 9);
      const p = await Producer.connect(d.socket);
      p.send(`${JSON.stringify({ type: 'agent_start', session_key: 'cfg:1', pad: 'x'.repeat(100) })}\n`);
      assert.deepEqual(await p.waitReplies(1, 20_000), ['{"error":"line 1: line longer than 100 bytes"}']);
      await p.end();
    } finally {
      await d.stop();
    }
  });
});

describe('serve --help', () => {
  test('exits 0 and lists every flag with its variable', async () => {
    const { code, stdout, stderr } = await runCli(['serve', '--help']);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
    for (const o of Object.values(SERVE_OPTIONS)) {
      assert.ok(stdout.includes(`--${o.flag}`), `--${o.flag} is listed`);
      assert.ok(stdout.includes(envName(o.flag)), `${envName(o.flag)} is listed`);
    }
    for (const doc of ['RUNTIME_DIRECTORY', 'XDG_RUNTIME_DIR', '0660', '8780', '65536']) assert.ok(stdout.includes(doc), `${doc} is documented`);
  });

  test('-h is the same', async () => {
    const [long, short] = await Promise.all([runCli(['serve', '--help']), runCli(['serve', '-h'])]);
    assert.equal(short.code, 0);
    assert.equal(short.stdout, long.stdout);
  });
});

describe('the default socket path', () => {
  test('RUNTIME_DIRECTORY first (its first entry), else XDG_RUNTIME_DIR, else /tmp/pocketpaw-status-<uid>', () => {
    assert.equal(defaultSocketPath({ RUNTIME_DIRECTORY: '/run/pocketpaw-status', XDG_RUNTIME_DIR: '/run/user/1' }), '/run/pocketpaw-status/ingest.sock');
    assert.equal(defaultSocketPath({ RUNTIME_DIRECTORY: '/run/a:/run/b' }), '/run/a/ingest.sock');
    assert.equal(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/pocketpaw-status/ingest.sock');
    assert.equal(defaultSocketPath({ RUNTIME_DIRECTORY: '', XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/pocketpaw-status/ingest.sock');
    assert.equal(defaultSocketPath({}), `/tmp/pocketpaw-status-${process.getuid!()}/ingest.sock`);
  });

  /** Starts `serve` without --socket (the harness always passes one) and returns the socket its ready line names. */
  async function readySocket(env: Record<string, string>): Promise<string> {
    const base = cleanEnv(env);
    for (const name of ['RUNTIME_DIRECTORY', 'XDG_RUNTIME_DIR']) if (!(name in env)) delete base[name];
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--port', '0', '--state-dir', 'none'], { cwd: ROOT, env: base, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = once(proc, 'exit');
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    try {
      const ready = await waitFor(
        () => {
          if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}:\n${stderr}`);
          return stderr
            .split('\n')
            .map((l) => {
              try {
                return JSON.parse(l) as { msg?: string; socket?: string; http?: string };
              } catch {
                return null;
              }
            })
            .find((l) => l?.msg?.startsWith('ready'));
        },
        { timeoutMs: 20_000, what: 'the ready line' },
      );
      const socket = ready!.socket!;
      assert.ok(lstatSync(socket).isSocket(), `${socket} is a socket`);
      // Also what makes the SIGTERM below safe: cli.ts installs its signal handlers only after the ready line is
      // written, and an answered request means that has happened.
      assert.equal((await getStatus(ready!.http!)).global.state, 'idle');
      return socket;
    } finally {
      proc.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
    }
  }

  test('without --socket: $XDG_RUNTIME_DIR/pocketpaw-status/ingest.sock, its folder created', async () => {
    const dir = tempDir();
    try {
      assert.equal(await readySocket({ XDG_RUNTIME_DIR: dir }), join(dir, 'pocketpaw-status', 'ingest.sock'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without --socket: $RUNTIME_DIRECTORY/ingest.sock, before XDG_RUNTIME_DIR', async () => {
    const [runtime, xdg] = [tempDir(), tempDir()];
    try {
      assert.equal(await readySocket({ RUNTIME_DIRECTORY: runtime, XDG_RUNTIME_DIR: xdg }), join(runtime, 'ingest.sock'));
    } finally {
      rmSync(runtime, { recursive: true, force: true });
      rmSync(xdg, { recursive: true, force: true });
    }
  });
});
