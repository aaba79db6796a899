/**
 * `pocketpaw-status status`: upstream's layout, the JSON output, `--watch` over SSE (NDJSON, plain tables, in-place
 * redraw on a terminal, reconnection across a daemon restart), and an exit code for each kind of failure.
 *
 * A rejected key is tested against the real daemon configured with a key, and against a stub HTTP server for what the
 * daemon cannot be made to do on cue (rejecting a key only on reconnection) and for answers no daemon gives (HTML, 500).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CLI, cleanEnv, getStatus, ROOT, runCli, sendOnce, startDaemon, waitFor, waitForStatus, type TestDaemon } from './helpers/daemon.ts';

const ESC = '\x1b';

/** A long-running CLI process whose output is collected as it comes. */
class Running {
  stdout = '';
  stderr = '';
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  }
  static start(args: string[], env: Record<string, string> = {}): Running {
    const r = new Running(spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] }));
    running.push(r);
    return r;
  }
  lines(): string[] {
    return this.stdout.split('\n').filter(Boolean);
  }
  stop(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
const running: Running[] = [];

/**
 * Runs a command line under a pseudo-terminal, so that stdout is a TTY: util-linux `script` (Debian's essential
 * bsdutils package, so present wherever CI runs).
 */
function underTty(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000) {
  const command = [process.execPath, '--import', 'tsx', CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cleanEnv({ TERM: 'xterm', ...env }), encoding: 'utf8', timeout: timeoutMs });
}

interface Stub {
  readonly url: string;
  readonly requests: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

async function stub(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Stub> {
  const requests: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.headers);
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const FORBIDDEN = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"detail":"Invalid or missing status API key"}');
};

async function freePort(): Promise<number> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const status = (args: string[], env: Record<string, string> = {}) => runCli(['status', ...args], { env });

after(() => {
  for (const r of running) r.stop();
});

describe('status: the human table', () => {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startDaemon({ args: ['--error-ttl', '600'] });
  });
  after(async () => {
    await daemon.stop();
  });

  test('with no session: the header block only, as upstream', async () => {
    const r = await status(['--url', daemon.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\nPocketPaw Status\n {2}State: {4}IDLE\n {2}Sessions: 0 \/ 5\n {2}Uptime: {3}\d+s\n\n$/);
    assert.equal(r.stderr, '');
  });

  test('the session table keeps upstream\'s columns, cuts long values so they stay aligned, and has no escape codes off a terminal', async () => {
    await sendOnce(
      daemon.socket,
      { type: 'agent_start', session_key: 'websocket:abc123', title: 'Fix the authentication bug in login' },
      { type: 'tool_start', session_key: 'websocket:abc123', name: 'bash' },
      { type: 'agent_start', session_key: 'discord:9' },
      { type: 'error', session_key: 'discord:9', message: 'Rate limit exceeded' },
      { type: 'agent_start', session_key: 'averyveryverylongchannelname:42', title: '修复登录错误并且更新测试用例' },
      { type: 'ask_user_question', session_key: 'averyveryverylongchannelname:42' },
      { type: 'agent_start', session_key: 'telegram:7', title: '\x1b[2Jevil\ntitle' },
      { type: 'tool_start', session_key: 'telegram:7', name: 'mcp__github__create_pull_request' },
    );
    await waitForStatus(daemon.url, (s) => s.sessions.length === 4, 'four sessions');
    const r = await status(['--url', daemon.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(!r.stdout.includes(ESC), 'no escape code when stdout is not a terminal');
    const lines = r.stdout.replace(/\d+s$/gm, 'Ns').split('\n');
    assert.deepEqual(lines, [
      '',
      'PocketPaw Status',
      '  State:    DEGRADED',
      '  Sessions: 4 / 5',
      '  Uptime:   Ns',
      '',
      'Active Sessions',
      '  SESSION              CHANNEL      STATE              TOOL         DURATION',
      '  Fix the authentica   websocket    tool_running       bash         Ns',
      '  9                    discord      error: Rate limit  -            Ns',
      // Nine wide characters fill the 18 cells upstream keeps; the channel is cut to its column.
      '  修复登录错误并且更   averyveryver waiting_for_user   -            Ns',
      // Control characters in a title cannot move the cursor or break the row.
      '  ?[2Jevil title       telegram     tool_running       mcp__github_ Ns',
      '',
      '',
    ]);
  });

  test('--json prints the REST body, pretty-printed, and nothing else', async () => {
    const r = await status(['--url', daemon.url, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const body = JSON.parse(r.stdout) as { sessions: { session_key: string; duration_seconds: number }[]; global: { uptime_seconds: number } };
    assert.equal(r.stdout, `${JSON.stringify(body, null, 2)}\n`);
    const rest = await getStatus(daemon.url);
    const untimed = (s: typeof rest | typeof body) => JSON.stringify({ ...s, global: { ...s.global, uptime_seconds: 0 }, sessions: s.sessions.map((x) => ({ ...x, duration_seconds: 0 })) });
    assert.equal(untimed(body), untimed(rest));
  });

  test('the URL comes from --url, else POCKETPAW_STATUS_URL', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const fromEnv = await status(['--json'], { POCKETPAW_STATUS_URL: daemon.url });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);
    const flagWins = await status(['--json', '--url', dead], { POCKETPAW_STATUS_URL: daemon.url });
    assert.equal(flagWins.code, 1);
    assert.match(flagWins.stderr, new RegExp(`not running at ${dead}`));
    const trailingSlash = await status(['--json', '--url', `${daemon.url}/`]);
    assert.equal(trailingSlash.code, 0, trailingSlash.stderr);
  });

  test('on a terminal the states are coloured; NO_COLOR turns colour off', () => {
    const tty = underTty(['status', '--url', daemon.url]);
    assert.equal(tty.status, 0, tty.stderr);
    assert.match(tty.stdout, /\x1b\[1;31mDEGRADED\x1b\[0m/);
    assert.match(tty.stdout, /\x1b\[36mtool_running\x1b\[0m {7}bash/, 'padding outside the colour keeps the columns');
    assert.match(tty.stdout, /\x1b\[31merror: Rate limit\x1b\[0m/);
    const noColor = underTty(['status', '--url', daemon.url], { NO_COLOR: '1' });
    assert.equal(noColor.status, 0, noColor.stderr);
    assert.match(noColor.stdout, /DEGRADED/);
    assert.ok(!noColor.stdout.includes(ESC), 'NO_COLOR: no escape code at all');
    const json = underTty(['status', '--url', daemon.url, '--json']);
    assert.ok(!json.stdout.includes(ESC), '--json: no colour even on a terminal');
  });
});

describe('status: exit codes', () => {
  test('nothing listening: "not running at URL", exit 1, nothing on stdout', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    for (const args of [[], ['--json'], ['--watch'], ['--watch', '--json']]) {
      const r = await status(['--url', url, ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
      assert.equal(r.stderr, `pocketpaw-status: not running at ${url} (connection refused)\n`);
    }
  });

  test('a rejected key: "the daemon rejected the status API key", exit 2 (never "not running"), also in --watch', async () => {
    const s = await stub(FORBIDDEN);
    try {
      for (const args of [[], ['--json'], ['--watch'], ['--watch', '--json']]) {
        const r = await status(['--url', s.url, ...args]);
        assert.equal(r.code, 2, args.join(' '));
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /^pocketpaw-status: the daemon rejected the status API key \(HTTP 403 from .*no key was given: pass --key KEY or set POCKETPAW_STATUS_API_KEY\)\n$/);
        assert.doesNotMatch(r.stderr, /not running/);
      }
    } finally {
      await s.close();
    }
  });

  test('against the real daemon with a key: the right key reads, a missing or wrong one exits 2', async () => {
    const daemon = await startDaemon({ env: { POCKETPAW_STATUS_API_KEY: 'right-key' } });
    try {
      const ok = await status(['--url', daemon.url, '--json'], { POCKETPAW_STATUS_API_KEY: 'right-key' });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { global: { state: string } }).global.state, 'idle');
      for (const args of [[], ['--key', 'wrong-key'], ['--watch', '--key', 'wrong-key'], ['--watch', '--json']]) {
        const r = await status(['--url', daemon.url, ...args]);
        assert.equal(r.code, 2, args.join(' '));
        assert.equal(r.stdout, '', args.join(' '));
        assert.match(r.stderr, /the daemon rejected the status API key/);
      }
    } finally {
      await daemon.stop();
    }
  });

  test('--watch: a key rejected on reconnection (rotated while watching) exits 2', async () => {
    let served = 0;
    const snapshot = { global: { state: 'idle', active_sessions: 0, max_concurrent: 5, uptime_seconds: 1 }, sessions: [] };
    const s = await stub((_req, res) => {
      if (served++ > 0) return FORBIDDEN(_req, res);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(`retry: 100\nid: 1\nevent: status\ndata: ${JSON.stringify(snapshot)}\n\n`);
    });
    try {
      const r = await status(['--url', s.url, '--watch', '--json', '--key', 'old-key']);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, `${JSON.stringify(snapshot)}\n`);
      assert.match(r.stderr, /lost the connection .*\n.*the daemon rejected the status API key/);
      assert.equal(served, 2);
    } finally {
      await s.close();
    }
  });

  test('the key is sent as X-Status-Key, from --key, else POCKETPAW_STATUS_API_KEY', async () => {
    const s = await stub(FORBIDDEN);
    try {
      const flag = await status(['--url', s.url, '--key', 'from-flag'], { POCKETPAW_STATUS_API_KEY: 'from-env' });
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /check --key or POCKETPAW_STATUS_API_KEY/);
      await status(['--url', s.url], { POCKETPAW_STATUS_API_KEY: 'from-env' });
      await status(['--url', s.url, '--watch', '--key', 'watching']);
      await status(['--url', s.url]);
      assert.deepEqual(s.requests.map((h) => h['x-status-key']), ['from-flag', 'from-env', 'watching', undefined]);
      assert.equal(s.requests[2]!.accept, 'text/event-stream');
    } finally {
      await s.close();
    }
  });

  test('any other answer: exit 3, saying what came back', async () => {
    const cases: [string, (req: http.IncomingMessage, res: http.ServerResponse) => void, RegExp][] = [
      ['500', (_q, res) => res.writeHead(500).end('boom'), /unexpected answer from .*: HTTP 500: boom/],
      ['404', (_q, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"detail":"Not Found"}'), /HTTP 404/],
      ['html', (_q, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>router login</html>'), /the answer is not JSON: <html>/],
      ['other json', (_q, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}'), /not an agent status snapshot/],
    ];
    for (const [name, handler, message] of cases) {
      const s = await stub(handler);
      try {
        const r = await status(['--url', s.url]);
        assert.equal(r.code, 3, name);
        assert.equal(r.stdout, '', name);
        assert.match(r.stderr, message, name);
        const w = await status(['--url', s.url, '--watch', '--json']);
        assert.equal(w.code, 3, `--watch: ${name}`);
        assert.equal(w.stdout, '', `--watch: ${name}`);
      } finally {
        await s.close();
      }
    }
    const bad = await status(['--url', 'ftp://example.org']);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /invalid URL "ftp:\/\/example.org"/);
  });

  test('--help documents every option and the exit codes', async () => {
    const r = await status(['--help']);
    assert.equal(r.code, 0);
    for (const option of ['--url URL', '--key KEY', '--json', '--watch', 'POCKETPAW_STATUS_URL', 'POCKETPAW_STATUS_API_KEY', 'NO_COLOR']) {
      assert.ok(r.stdout.includes(option), option);
    }
    assert.match(r.stdout, /Exit codes:\n {2}0 {2}success.*\n {2}1 {2}the daemon is not reachable \("not running at URL"\)\n {2}2 {2}the daemon rejected the status API key.*\n {2}3 {2}any other unexpected answer/);
  });
});

describe('status --watch', () => {
  test('--json: one compact snapshot per line as changes arrive, no escape codes; reconnects across a restart; Ctrl+C exits 0', async () => {
    const port = await freePort();
    let daemon = await startDaemon({ args: ['--port', String(port)] });
    const url = `http://127.0.0.1:${port}`;
    const watch = Running.start(['status', '--watch', '--json', '--url', url]);
    try {
      await waitFor(() => watch.lines().length >= 1, { what: 'the first snapshot' });
      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'websocket:w1', title: 'Watched' });
      await waitFor(() => watch.lines().some((l) => l.includes('websocket:w1')), { what: 'the change' });

      await daemon.stop('SIGTERM');
      await waitFor(() => /lost the connection to http:\/\/127\.0\.0\.1:\d+; reconnecting/.test(watch.stderr), { what: 'the notice on stderr' });
      daemon = await startDaemon({ args: ['--port', String(port)] });
      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'discord:after' });
      await waitFor(() => watch.lines().some((l) => l.includes('discord:after')), { what: 'a snapshot from the restarted daemon', timeoutMs: 15_000 });
      assert.match(watch.stderr, new RegExp(`reconnected to ${url}`));

      assert.ok(!watch.stdout.includes(ESC), 'no escape codes');
      for (const line of watch.lines()) {
        const parsed = JSON.parse(line) as object;
        assert.equal(line, JSON.stringify(parsed), 'compact, one per line');
        assert.deepEqual(Object.keys(parsed), ['global', 'sessions']);
      }
      watch.proc.kill('SIGINT');
      const [code] = await watch.exited;
      assert.equal(code, 0);
    } finally {
      watch.stop();
      await daemon.stop();
    }
  });

  test('off a terminal, without --json: one plain table per change', async () => {
    const daemon = await startDaemon();
    const watch = Running.start(['status', '--watch', '--url', daemon.url]);
    try {
      await waitFor(() => watch.stdout.includes('PocketPaw Status'), { what: 'the first table' });
      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'slack:plain', title: 'Plain table' });
      await waitFor(() => watch.stdout.includes('Plain table'), { what: 'the second table' });
      assert.equal(watch.stdout.split('PocketPaw Status').length - 1, 2);
      assert.ok(!watch.stdout.includes(ESC));
    } finally {
      watch.stop();
      await daemon.stop();
    }
  });

  test('on a terminal: redraws in place', async () => {
    const daemon = await startDaemon();
    const command = [process.execPath, '--import', 'tsx', CLI, 'status', '--watch', '--url', daemon.url].map((a) => `'${a}'`).join(' ');
    const proc = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: cleanEnv({ TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    try {
      await waitFor(() => out.includes('PocketPaw Status'), { what: 'the first frame' });
      await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'cli:tty', title: 'Redrawn' });
      await waitFor(() => out.includes('Redrawn'), { what: 'the redraw' });
      assert.ok(out.startsWith(`${ESC}[2J${ESC}[H`), 'the first frame clears the screen');
      const frames = out.split(`${ESC}[H`).length - 1;
      assert.ok(frames >= 2, `each frame starts at the top-left corner (${frames} frames)`);
      assert.ok(out.includes(`${ESC}[J`), 'each frame clears what the previous one left below it');
      assert.equal(out.split(`${ESC}[2J`).length - 1, 1, 'later frames overwrite in place instead of clearing the screen');
      assert.match(out, /\[Live from http:\/\/127\.0\.0\.1:\d+ \| Ctrl\+C to stop\]/);
    } finally {
      process.kill(-proc.pid!, 'SIGKILL');
      await daemon.stop();
    }
  });
});
