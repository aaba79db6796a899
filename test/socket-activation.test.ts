/**
 * Socket activation without systemd: the test plays systemd's part. It opens the listening sockets, hands them to
 * the daemon as descriptors 3 and 4 with LISTEN_FDS/LISTEN_FDNAMES, and sets LISTEN_PID with the usual exec trick
 * (`sh -c 'LISTEN_PID=$$ ... exec node ...'`: the shell's pid becomes node's, as systemd's fork+exec does).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, renameSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, ROOT, Producer, cleanEnv, eachLine, sendOnce, session, tempDir, waitFor, waitForStatus, type LogLine } from './helpers/daemon.ts';

/** The descriptor behind a listening server: Node has no public accessor, and spawn() needs the number. */
function fdOf(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('cannot read the listening descriptor of a net.Server on this Node version');
  return fd;
}

function parseLogs(lines: readonly string[]): LogLine[] {
  return lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** Polls for the daemon's ready log line; fails at once if it exited instead. */
function readyLine(proc: ChildProcess, stderr: () => string[]): Promise<LogLine> {
  return waitFor(
    (): LogLine | null => {
      const ready = parseLogs(stderr()).find((l) => l.msg.startsWith('ready'));
      if (ready) return ready;
      if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode} before ready:\n${stderr().join('\n')}`);
      return null;
    },
    { timeoutMs: 20_000, what: 'the ready log line' },
  ) as Promise<LogLine>;
}

function listen(server: net.Server, target: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => resolve());
  });
}

interface Activated {
  readonly dir: string;
  readonly socket: string;
  readonly port: number;
  readonly proc: ChildProcess;
  readonly stderr: string[];
  /** Lets the shell exec the daemon (until then the sockets exist, held by the shell, and nobody accepts). */
  release(): void;
  logs(): LogLine[];
  readyLine(): Promise<LogLine>;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/**
 * Opens the sockets as systemd would and starts a shell holding them as fds 3 and 4, which waits for a line on its
 * stdin before it execs the daemon: the test can show that connections made before the daemon runs are kept.
 */
async function activate(names = 'ingest:http'): Promise<Activated> {
  const dir = tempDir();
  const socket = join(dir, 'ingest.sock');
  const unix = net.createServer();
  await listen(unix, { path: socket });
  const tcp = net.createServer();
  await listen(tcp, { port: 0, host: '127.0.0.1' });
  const port = (tcp.address() as AddressInfo).port;

  const script = 'LISTEN_PID=$$; export LISTEN_PID; read -r _; exec "$0" "$@"';
  const args = ['--import', 'tsx', CLI, 'serve', '--socket', join(dir, 'not-used.sock'), '--port', '0', '--state-dir', 'none'];
  const proc = spawn('/bin/sh', ['-c', script, process.execPath, ...args], {
    cwd: ROOT,
    env: cleanEnv({ LISTEN_FDS: String(names.split(':').length), LISTEN_FDNAMES: names }),
    stdio: ['pipe', 'ignore', 'pipe', fdOf(unix), fdOf(tcp)],
  });
  // The child has its own copies now. Ours must go, or this process would race the daemon to accept(); but closing a
  // Unix server unlinks its path (libuv), so the file steps aside while ours closes and comes back: systemd never
  // unlinks it either.
  renameSync(socket, `${socket}.aside`);
  await new Promise<void>((resolve) => unix.close(() => resolve()));
  renameSync(`${socket}.aside`, socket);
  await new Promise<void>((resolve) => tcp.close(() => resolve()));

  const stderr: string[] = [];
  eachLine(proc.stderr!, (line) => stderr.push(line));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const logs = () => parseLogs(stderr);
  return {
    dir,
    socket,
    port,
    proc,
    stderr,
    exited,
    logs,
    release: () => proc.stdin!.end('go\n'),
    readyLine: () => readyLine(proc, () => stderr),
  };
}

async function stop(a: Activated): Promise<[number | null, NodeJS.Signals | null]> {
  if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGTERM');
  return a.exited;
}

test('sockets passed by systemd are used: events written to the socket appear over HTTP', async () => {
  const a = await activate();
  try {
    a.release();
    const ready = await a.readyLine();
    const url = `http://127.0.0.1:${a.port}`;
    assert.equal(ready.http, url, 'HTTP is served on the passed port, not on --port 0');
    assert.equal(ready.socket, a.socket, 'the log names the passed socket path');
    assert.equal(existsSync(join(a.dir, 'not-used.sock')), false, '--socket is not bound when systemd passed the socket');

    await sendOnce(a.socket, { type: 'agent_start', session_key: 'websocket:act1', title: 'activated' });
    const status = await waitForStatus(url, (s) => session(s, 'websocket:act1') !== undefined, 'the session over HTTP');
    assert.equal(session(status, 'websocket:act1')!.title, 'activated');
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
  } finally {
    await stop(a);
    rmSync(a.dir, { recursive: true, force: true });
  }
});

test('connections made before the daemon runs are queued by the kernel and served once it starts', async () => {
  const a = await activate();
  try {
    // Nobody accepts yet: the connect succeeds into the listen backlog, and the bytes wait in the socket buffer.
    const early = await Producer.connect(a.socket);
    early.send({ type: 'hello', agent: 'early' }, { type: 'agent_start', session_key: 'websocket:early' });
    // So does an HTTP request (bounded, so that a daemon not serving the passed port fails the test instead of hanging).
    const earlyRequest = fetch(`http://127.0.0.1:${a.port}/readyz`, { signal: AbortSignal.timeout(20_000) });
    a.release();
    assert.equal((await earlyRequest).status, 200);
    await waitForStatus(`http://127.0.0.1:${a.port}`, (s) => session(s, 'websocket:early')?.state === 'thinking', 'the queued event');
    await early.end();
  } finally {
    await stop(a);
    rmSync(a.dir, { recursive: true, force: true });
  }
});

test('an inherited socket file is never removed: it survives SIGTERM (systemd keeps listening on it)', async () => {
  const a = await activate();
  try {
    a.release();
    await a.readyLine();
    const [code] = await stop(a);
    assert.equal(code, 0);
    assert.ok(existsSync(a.socket), 'the socket file is still there after the daemon exited');
    assert.ok(lstatSync(a.socket).isSocket());
  } finally {
    await stop(a);
    rmSync(a.dir, { recursive: true, force: true });
  }
});

test('sockets named neither ingest nor http stop the daemon with a message naming FileDescriptorName=', async () => {
  const a = await activate('unknown:unknown');
  try {
    a.release();
    const [code] = await a.exited;
    assert.equal(code, 1);
    assert.match(a.stderr.join('\n'), /FileDescriptorName=ingest/);
    assert.ok(existsSync(a.socket), 'a refused inherited socket is not removed either');
  } finally {
    await stop(a);
    rmSync(a.dir, { recursive: true, force: true });
  }
});

test('LISTEN_PID naming another process is ignored: the daemon binds --socket and --port itself', async () => {
  const dir = tempDir();
  const socket = join(dir, 'ingest.sock');
  // Descriptors 3 and 4 are not even open: using them would fail, so binding normally is the only way to start.
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--socket', socket, '--port', '0', '--state-dir', 'none'], {
    cwd: ROOT,
    env: cleanEnv({ LISTEN_PID: '1', LISTEN_FDS: '2', LISTEN_FDNAMES: 'ingest:http' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(proc, 'exit');
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  try {
    const ready = await readyLine(proc, () => stderr.split('\n'));
    assert.equal(ready.socket, socket);
    await sendOnce(socket, { type: 'agent_start', session_key: 'websocket:own' });
    await waitForStatus(ready.http as string, (s) => session(s, 'websocket:own') !== undefined, 'the session');
    proc.kill('SIGTERM');
    await exited;
    assert.equal(existsSync(socket), false, 'a socket the daemon bound itself is still removed at exit');
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
