/**
 * Safe exposure (issue 4) against the real daemon: no open listener on an address other machines can reach unless
 * asked for on purpose, and the headers every response carries (`nosniff`; `Cache-Control: no-store`, the stream's
 * `no-cache`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, CLI, ROOT, runCli, startDaemon, type TestDaemon } from './helpers/daemon.ts';
import { headerCount, request, type RawResponse } from './helpers/http.ts';
import { RawSse } from './helpers/sse.ts';

const STATUS = '/api/v1/agent/status';
const STREAM = '/api/v1/agent/status/stream';
const KEY = 'exposure-key-N2b4V6c8X0z1';

const dir = mkdtempSync(join(tmpdir(), 'pps-exposure-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const keyPath = join(dir, 'key');
writeFileSync(keyPath, `${KEY}\n`);
chmodSync(keyPath, 0o600);

/** The daemon listens on every interface: reach it through loopback. */
function local(url: string): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  return u.origin;
}

describe('no open listener beyond loopback', { concurrency: 4 }, () => {
  const refusals: [string[], Record<string, string>][] = [
    [['--host', '0.0.0.0'], {}],
    [['--host', '::'], {}],
    [['--host', '192.168.77.77'], {}],
    [['--host', 'my-laptop.local'], {}],
    [[], { POCKETPAW_STATUS_HOST: '0.0.0.0' }],
    [['--host', '0.0.0.0'], { POCKETPAW_STATUS_API_KEY: '' }],
    [['--host', '0.0.0.0'], { POCKETPAW_STATUS_ALLOW_OPEN: '0' }],
  ];
  for (const [args, env] of refusals) {
    test(`refused: ${[...args, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')}`, async () => {
      const socket = join(mkdtempSync(join(dir, 'refused-')), 'ingest.sock');
      const result = await runCli(['serve', '--port', '0', '--socket', socket, ...args], { env });
      assert.equal(result.code, 2, result.stderr);
      const message = result.stderr.split('\n')[0]!;
      assert.match(message, /refusing to serve the status without an API key/);
      for (const hint of ['--api-key-file', 'POCKETPAW_STATUS_API_KEY', '--allow-open', 'POCKETPAW_STATUS_ALLOW_OPEN=1']) {
        assert.ok(message.includes(hint), `the message names ${hint}: ${message}`);
      }
      assert.doesNotMatch(result.stderr, /ready/);
      assert.equal(existsSync(socket), false, 'nothing was bound');
    });
  }

  test('an empty POCKETPAW_STATUS_ALLOW_OPEN is a configuration error, not "on"', async () => {
    const result = await runCli(['serve', '--port', '0', '--socket', join(dir, 'never.sock'), '--host', '0.0.0.0'], { env: { POCKETPAW_STATUS_ALLOW_OPEN: '' } });
    assert.equal(result.code, 2);
    assert.match(result.stderr.split('\n')[0]!, /POCKETPAW_STATUS_ALLOW_OPEN/);
  });
});

describe('an HTTP socket passed by systemd is checked where it is bound', () => {
  /** Plays systemd: a listening socket as descriptor 3, named http, LISTEN_PID set through the exec trick. */
  async function activated(host: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const socket = join(mkdtempSync(join(dir, 'activated-')), 'ingest.sock');
    const command = `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=http exec "$0" --import tsx "$1" serve --socket "$2" --state-dir none`;
    const child = spawn('sh', ['-c', command, process.execPath, CLI, socket], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'ignore', 'pipe', fd] });
    // The child has its own copy now; ours must not accept the daemon's connections.
    server.close();
    let stderr = '';
    let stopping = false;
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const url = /"http":"([^"]+)".*"msg":"ready/.exec(stderr)?.[1];
      if (url === undefined || stopping) return;
      stopping = true;
      // One answered request first: the daemon installs its SIGTERM handler just after the ready line.
      void fetch(`${local(url)}/livez`, { signal: AbortSignal.timeout(10_000) })
        .catch(() => {})
        .finally(() => child.kill('SIGTERM'));
    });
    // A daemon that neither starts nor exits must not hang the run: the test then fails on the missing ready line.
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(guard);
    return { code, stderr };
  }

  test('0.0.0.0 from systemd without a key: refused (exit 2) before serving', async () => {
    const result = await activated('0.0.0.0', {});
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /refusing to serve the status without an API key on 0\.0\.0\.0/);
    assert.doesNotMatch(result.stderr, /ready/);
  });

  test('loopback from systemd, or 0.0.0.0 with --allow-open: served', async () => {
    for (const [host, env] of [
      ['127.0.0.1', {}],
      ['0.0.0.0', { POCKETPAW_STATUS_ALLOW_OPEN: '1' }],
    ] as const) {
      const result = await activated(host, env);
      assert.match(result.stderr, /ready/, `${host}: ${result.stderr}`);
      assert.equal(result.code, 0);
    }
  });
});

describe('what may listen beyond loopback', () => {
  async function serves(args: string[], env: Record<string, string>, open: boolean): Promise<void> {
    const d = await startDaemon({ args, env });
    try {
      const base = local(d.url);
      assert.equal((await request(`${base}${STATUS}`)).status, open ? 200 : 403);
      assert.equal((await request(`${base}${STATUS}`, { headers: { 'X-Status-Key': KEY } })).status, 200);
    } finally {
      await d.stop();
    }
  }

  test('--allow-open serves 0.0.0.0 without a key', () => serves(['--host', '0.0.0.0', '--allow-open'], {}, true));
  test('POCKETPAW_STATUS_ALLOW_OPEN=1 does the same', () => serves(['--host', '0.0.0.0'], { POCKETPAW_STATUS_ALLOW_OPEN: '1' }, true));
  test('a key makes 0.0.0.0 fine, and then the key is required', () => serves(['--host', '0.0.0.0', '--api-key-file', keyPath], {}, false));
  test('loopback needs neither: localhost', () => serves(['--host', 'localhost'], {}, true));
});

describe('headers on every response', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--api-key-file', keyPath] });
  });
  after(() => d.stop());

  function assertHeaders(res: RawResponse, cacheControl: string, what: string): void {
    assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
    assert.equal(headerCount(res, 'cache-control'), 1, `${what}: one Cache-Control header`);
    assert.equal(res.headers['cache-control'], cacheControl, `${what}: Cache-Control`);
    assert.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  }

  test('JSON and text responses: nosniff and no-store, errors included', async () => {
    const key = { 'X-Status-Key': KEY };
    const cases: [string, { method?: string; headers?: Record<string, string> }, number][] = [
      [STATUS, { headers: key }, 200],
      [STATUS, {}, 403],
      [STREAM, {}, 403],
      ['/nope', { headers: key }, 404],
      [STATUS, { method: 'POST', headers: key }, 405],
      ['/livez', {}, 200],
      ['/readyz', {}, 200],
      ['/metrics', { headers: key }, 200],
      [STATUS, { method: 'HEAD', headers: key }, 200],
    ];
    for (const [path, options, status] of cases) {
      const res = await request(`${d.url}${path}`, { ...options, localAddress: '127.0.0.3' });
      assert.equal(res.status, status, `${options.method ?? 'GET'} ${path}`);
      assertHeaders(res, 'no-store', `${options.method ?? 'GET'} ${path}`);
    }
  });

  test('the SSE stream: nosniff and Cache-Control: no-cache, sent once', async () => {
    const sse = await RawSse.open(`${d.url}${STREAM}`, { 'X-Status-Key': KEY });
    try {
      assert.equal(sse.status, 200);
      assert.equal(sse.headers['x-content-type-options'], 'nosniff');
      assert.equal(sse.headers['cache-control'], 'no-cache', 'the stream\'s own value, not joined with no-store');
      assert.equal(sse.headers['referrer-policy'], 'no-referrer');
      await sse.waitFor((s) => s.of('status').length >= 1, 'a status event');
    } finally {
      sse.close();
    }
    const head = await request(`${d.url}${STREAM}`, { method: 'HEAD', headers: { 'X-Status-Key': KEY } });
    assert.equal(head.status, 200);
    assertHeaders(head, 'no-cache', 'HEAD stream');
  });
});
