/**
 * `pocketpaw-status emit`: events from flags and from stdin reach the real daemon; a clear message and exit 1 when no
 * daemon listens; exit 2, with the reason, for an event the protocol rejects.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanEnv, CLI, ROOT, runCli, session, startDaemon, tempDir, waitForStatus, type TestDaemon } from './helpers/daemon.ts';

describe('emit', () => {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--max-line-bytes', '256'] });
  });
  after(async () => {
    await daemon.stop();
  });
  const emit = (args: string[], input?: string, env?: Record<string, string>) =>
    runCli(['emit', ...args], { input, env: env ?? { POCKETPAW_STATUS_SOCKET: daemon.socket } });

  test('sends one event built from the flags, for each flag the command offers', async () => {
    const ok = async (...args: string[]) => {
      const r = await emit(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, '');
    };
    await ok('agent_start', '--session', 'cli:flags', '--title', 'Deploy the site');
    await ok('tool_start', '--session', 'cli:flags', '--name', 'rsync');
    await ok('token_usage', '--session', 'cli:flags', '--input', '1200', '--output', '340');
    let s = await waitForStatus(daemon.url, (s) => session(s, 'cli:flags')?.token_usage?.input === 1200, 'flags events');
    assert.deepEqual(
      (({ title, state, tool_name, token_usage }) => ({ title, state, tool_name, token_usage }))(session(s, 'cli:flags')!),
      { title: 'Deploy the site', state: 'tool_running', tool_name: 'rsync', token_usage: { input: 1200, output: 340 } },
    );
    await ok('error', '--session', 'cli:flags', '--message', 'rsync: connection refused');
    s = await waitForStatus(daemon.url, (s) => session(s, 'cli:flags')?.state === 'error', 'the error');
    assert.equal(session(s, 'cli:flags')?.error_message, 'rsync: connection refused');
    await ok('agent_end', '--session', 'cli:flags');
    await waitForStatus(daemon.url, (s) => session(s, 'cli:flags') === undefined, 'the end');
  });

  test('sends NDJSON lines from stdin', async () => {
    const lines = [
      { type: 'agent_start', session_key: 'cli:stdin', title: 'From a pipe' },
      { type: 'tool_start', session_key: 'cli:stdin', name: 'grep' },
      { type: 'tool_result', session_key: 'cli:stdin', name: 'grep', status: 'success' },
    ];
    const r = await emit([], `${lines.map((l) => JSON.stringify(l)).join('\r\n')}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    const s = await waitForStatus(daemon.url, (s) => session(s, 'cli:stdin')?.state === 'streaming', 'stdin events');
    assert.equal(session(s, 'cli:stdin')?.title, 'From a pipe');
  });

  test('stdin lines the protocol rejects are reported with their line number and reason, not sent; the rest is; exit 2', async () => {
    const input = [
      JSON.stringify({ type: 'agent_start', session_key: 'cli:mixed' }),
      'not json',
      JSON.stringify({ type: 'tool_start', session_key: 'cli:mixed', name: 7 }),
      JSON.stringify({ type: 'thinking', v: 2, session_key: 'cli:mixed' }),
      JSON.stringify({ type: 'title', session_key: 'cli:mixed', title: 'Still sent' }),
    ].join('\n');
    const r = await emit([], input);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /stdin line 2: invalid JSON \(not sent\)/);
    assert.match(r.stderr, /stdin line 3: tool_start: field "name": .*\(not sent\)/);
    assert.match(r.stderr, /stdin line 4: unsupported protocol version 2 .*\(not sent\)/);
    await waitForStatus(daemon.url, (s) => session(s, 'cli:mixed')?.title === 'Still sent', 'the valid lines');
  });

  test('a line the daemon itself rejects (longer than its --max-line-bytes) exits 2 with the daemon\'s reason', async () => {
    const r = await emit(['title', '--session', 'cli:long', '--title', 'x'.repeat(400)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the daemon rejected line 1: line longer than 256 bytes/);
    const piped = await emit([], `${JSON.stringify({ type: 'agent_start', session_key: 'cli:long' })}\nbroken\n${JSON.stringify({ type: 'title', session_key: 'cli:long', title: 'y'.repeat(400) })}\n`);
    assert.equal(piped.code, 2);
    // Line numbers are stdin's, even though the skipped line 2 made the daemon count differently.
    assert.match(piped.stderr, /the daemon rejected stdin line 3: line longer than 256 bytes/);
  });

  test('an unknown type, a missing --session or a bad token count exits 2 with the reason, before connecting', async () => {
    const nowhere = { POCKETPAW_STATUS_SOCKET: join(tempDir(), 'nobody.sock') };
    const typo = await emit(['tool_strat', '--session', 'cli:x'], undefined, nowhere);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown event type "tool_strat"; known types: hello, agent_start, /);
    const keyless = await emit(['thinking'], undefined, nowhere);
    assert.equal(keyless.code, 2);
    assert.match(keyless.stderr, /thinking needs --session KEY/);
    const tokens = await emit(['token_usage', '--session', 'cli:x', '--input', '1.5'], undefined, nowhere);
    assert.equal(tokens.code, 2);
    assert.match(tokens.stderr, /--input expects a whole number of tokens/);
    const flag = await emit(['thinking', '--sesion', 'cli:x'], undefined, nowhere);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--sesion/);
  });

  test('with no daemon listening: a clear message and exit 1', async () => {
    const path = join(tempDir(), 'nobody.sock');
    for (const [args, input] of [[['agent_start', '--session', 'cli:x', '--socket', path]], [['--socket', path], '{"type":"thinking"}\n']] as const) {
      const r = await emit([...args], input);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`no daemon is listening on ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; start one with 'pocketpaw-status serve'`));
    }
  });

  test('the socket defaults as for serve: --socket, else POCKETPAW_STATUS_SOCKET, else the runtime directory', async () => {
    const runtime = tempDir();
    const inRuntime = join(runtime, 'pocketpaw-status', 'ingest.sock');
    mkdirSync(join(runtime, 'pocketpaw-status'));
    const other = await startDaemon({ socket: inRuntime });
    try {
      const r = await emit(['agent_start', '--session', 'cli:default'], undefined, { XDG_RUNTIME_DIR: runtime, RUNTIME_DIRECTORY: '' });
      assert.equal(r.code, 0, r.stderr);
      await waitForStatus(other.url, (s) => session(s, 'cli:default') !== undefined, 'the default socket');
      // --socket wins over the environment.
      const flag = await emit(['agent_start', '--session', 'cli:flag', '--socket', inRuntime], undefined, { POCKETPAW_STATUS_SOCKET: daemon.socket });
      assert.equal(flag.code, 0, flag.stderr);
      await waitForStatus(other.url, (s) => session(s, 'cli:flag') !== undefined, 'the --socket daemon');
    } finally {
      await other.stop();
    }
  });

  test('--help documents the usage and the exit codes', async () => {
    const r = await runCli(['emit', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: pocketpaw-status emit TYPE --session KEY/);
    assert.match(r.stdout, /Exit codes: 0 sent; 1 no daemon listens on the socket; 2 an event the protocol rejects/);
  });
});

/**
 * `emit` reading a slow stdin (a person typing, a pipe from a slow process) against a daemon that closes producers
 * idle for --producer-idle-timeout or without a complete line for --line-timeout: it connects only once a line is
 * ready, and reconnects for the next line after the daemon closed an idle connection.
 */
describe('emit from a slow stdin', () => {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--line-timeout', '1', '--producer-idle-timeout', '1', '--max-line-bytes', '256'] });
  });
  after(async () => {
    await daemon.stop();
  });

  /** Runs `emit` with stdin a pipe that writes each chunk after its pause, then ends after `endAfterMs`. */
  async function slowEmit(
    chunks: readonly { readonly afterMs: number; readonly text: string }[],
    endAfterMs = 0,
    socket = daemon.socket,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'emit'], { cwd: ROOT, env: cleanEnv({ POCKETPAW_STATUS_SOCKET: socket }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.stdin.on('error', () => {}); // emit may already have exited: its exit code says why.
    const exited = once(proc, 'exit');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    for (const chunk of chunks) {
      await sleep(chunk.afterMs);
      proc.stdin.write(chunk.text);
    }
    await sleep(endAfterMs);
    proc.stdin.end();
    const [code] = (await exited) as [number | null];
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  const line = (event: object) => `${JSON.stringify(event)}\n`;

  test('a line, 2.5 s of nothing (past both timeouts), another line: both reach the daemon, exit 0', async () => {
    // The first line comes after --line-timeout too (a connection opened at start would be closed by then), and
    // stdin ends 2.5 s after the last line, once the daemon has closed that connection as well.
    const r = await slowEmit(
      [
        { afterMs: 1500, text: line({ type: 'agent_start', session_key: 'cli:slow', title: 'Typed by hand' }) },
        { afterMs: 2500, text: line({ type: 'tool_start', session_key: 'cli:slow', name: 'vim' }) },
      ],
      2500,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
    const s = await waitForStatus(daemon.url, (s) => session(s, 'cli:slow')?.state === 'tool_running', 'the second event');
    assert.equal(session(s, 'cli:slow')?.title, 'Typed by hand');
    assert.equal(session(s, 'cli:slow')?.tool_name, 'vim');
  });

  test('lines written after the daemon decided to close an idle connection go again on the next one', async () => {
    // The real daemon's race (a line in flight while it closes) cannot be timed from a test: a peer speaking its part
    // plays it. It reads nothing on the first connection that carries lines and, 300 ms in, closes it the way the
    // daemon closes an idle one; a line written less than the notice's 1 s before the notice cannot have been read.
    const path = join(tempDir(), 'peer.sock');
    const received: string[][] = [];
    const peer = net.createServer((c) => {
      const lines: string[] = [];
      received.push(lines);
      const deaf = received.length === 2; // the first connection is emit's check that someone listens
      c.setEncoding('utf8');
      c.on('error', () => {});
      c.on('data', (d: string) => void (deaf || lines.push(...d.split('\n').filter((l) => l !== ''))));
      c.on('end', () => c.end());
      if (deaf) setTimeout(() => c.end(`${JSON.stringify({ error: 'connection closed: nothing sent for 1 s (--producer-idle-timeout); reconnect' })}\n`), 300);
    });
    peer.listen(path);
    await once(peer, 'listening');
    try {
      const r = await slowEmit(
        [
          { afterMs: 0, text: line({ type: 'agent_start', session_key: 'cli:race' }) },
          { afterMs: 1000, text: line({ type: 'thinking', session_key: 'cli:race' }) },
        ],
        0,
        path,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.deepEqual(
        received.map((lines) => lines.map((l) => (JSON.parse(l) as { type: string }).type)),
        [[], [], ['agent_start', 'thinking']],
      );
    } finally {
      peer.close();
    }
  });

  test("after a reconnect, the daemon's rejection still names the stdin line", async () => {
    const r = await slowEmit([
      { afterMs: 0, text: line({ type: 'agent_start', session_key: 'cli:slow-bad' }) },
      { afterMs: 2500, text: line({ type: 'thinking', session_key: 'cli:slow-bad' }) + line({ type: 'title', session_key: 'cli:slow-bad', title: 'z'.repeat(400) }) },
    ]);
    assert.equal(r.code, 2);
    // The daemon counts the new connection's lines from 1; emit reports stdin's numbering.
    assert.match(r.stderr, /the daemon rejected stdin line 3: line longer than 256 bytes/);
    assert.doesNotMatch(r.stderr, /connection closed/);
    await waitForStatus(daemon.url, (s) => session(s, 'cli:slow-bad')?.state === 'thinking', 'the second line');
  });
});
