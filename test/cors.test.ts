/**
 * CORS (issue 4) against the real daemon: `--cors-origin` is an allow-list of exact origins, none by default, never
 * `*`. A preflight from an allowed origin gets 204 without needing the key; one from another origin gets 403 and no
 * CORS header. The 405 fallback still answers OPTIONS requests that are not preflights.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startDaemon, type TestDaemon } from './helpers/daemon.ts';
import { FORBIDDEN_BODY, request, type RawResponse } from './helpers/http.ts';
import { RawSse } from './helpers/sse.ts';

const STATUS = '/api/v1/agent/status';
const STREAM = '/api/v1/agent/status/stream';
const KEY = 'cors-key-H8g7F6d5S4a3';
const ALLOWED = 'https://dash.example.lan';
const ALLOWED_2 = 'http://192.168.1.20:8080';
const DENIED = 'https://evil.example';

const dir = mkdtempSync(join(tmpdir(), 'pps-cors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const keyPath = join(dir, 'key');
writeFileSync(keyPath, `${KEY}\n`);
chmodSync(keyPath, 0o600);

function preflight(url: string, origin: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return request(url, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'GET', ...headers } });
}

function assertNoCors(res: RawResponse): void {
  for (const name of Object.keys(res.headers)) assert.ok(!name.startsWith('access-control-'), `unexpected ${name}: ${String(res.headers[name])}`);
}

function varyIncludesOrigin(res: RawResponse): boolean {
  return (res.headers.vary ?? '').split(',').some((v) => v.trim().toLowerCase() === 'origin');
}

describe('with an allow-list', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--api-key-file', keyPath, '--cors-origin', ALLOWED, '--cors-origin', `${ALLOWED_2}/`] });
  });
  after(() => d.stop());

  test('a preflight from an allowed origin: 204, the origin echoed, GET and the key headers allowed, no key needed', async () => {
    for (const [path, origin] of [
      [STATUS, ALLOWED],
      [STREAM, ALLOWED],
      [STATUS, ALLOWED_2],
    ] as const) {
      const res = await preflight(`${d.url}${path}`, origin, { 'Access-Control-Request-Headers': 'x-status-key, last-event-id' });
      assert.equal(res.status, 204, `${path} from ${origin}: ${res.body}`);
      assert.equal(res.body, '');
      assert.equal(res.headers['access-control-allow-origin'], origin);
      assert.ok(varyIncludesOrigin(res), `Vary: ${res.headers.vary}`);
      assert.equal(res.headers['access-control-allow-methods'], 'GET');
      const allowed = (res.headers['access-control-allow-headers'] ?? '').split(',').map((h) => h.trim().toLowerCase());
      for (const h of ['x-status-key', 'authorization', 'last-event-id']) assert.ok(allowed.includes(h), `${h} in ${allowed.join(',')}`);
      assert.equal(res.headers['access-control-allow-credentials'], undefined, 'no credentials mode: the key is not a cookie');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  test('a preflight from any other origin: 403 without any CORS header', async () => {
    for (const origin of [DENIED, 'null', `${ALLOWED}:8443`, 'http://dash.example.lan', `${ALLOWED}.evil.example`]) {
      const res = await preflight(`${d.url}${STATUS}`, origin);
      assert.equal(res.status, 403, origin);
      assertNoCors(res);
      assert.match(res.body, /--cors-origin/);
    }
  });

  test('requests from an allowed origin carry Access-Control-Allow-Origin (403s too, so the page can read them)', async () => {
    const ok = await request(`${d.url}${STATUS}`, { headers: { Origin: ALLOWED, 'X-Status-Key': KEY } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
    assert.ok(varyIncludesOrigin(ok));
    const refused = await request(`${d.url}${STATUS}`, { headers: { Origin: ALLOWED } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body, FORBIDDEN_BODY);
    assert.equal(refused.headers['access-control-allow-origin'], ALLOWED);
    const sse = await RawSse.open(`${d.url}${STREAM}`, { Origin: ALLOWED, 'X-Status-Key': KEY });
    try {
      assert.equal(sse.status, 200);
      assert.equal(sse.headers['access-control-allow-origin'], ALLOWED);
      assert.equal(sse.headers['cache-control'], 'no-cache');
      await sse.waitFor((s) => s.of('status').length >= 1, 'a status event');
    } finally {
      sse.close();
    }
  });

  test('requests from another origin are answered without Access-Control-Allow-Origin (the browser hides them)', async () => {
    const res = await request(`${d.url}${STATUS}`, { headers: { Origin: DENIED, 'X-Status-Key': KEY } });
    assert.equal(res.status, 200);
    assertNoCors(res);
    const sse = await RawSse.open(`${d.url}${STREAM}`, { Origin: DENIED, 'X-Status-Key': KEY });
    try {
      assert.equal(sse.status, 200);
      assert.equal(sse.headers['access-control-allow-origin'], undefined);
    } finally {
      sse.close();
    }
  });

  test('OPTIONS that is not a preflight still gets the 405 fallback', async () => {
    const res = await request(`${d.url}${STATUS}`, { method: 'OPTIONS', headers: { 'X-Status-Key': KEY, Origin: ALLOWED } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
  });
});

describe('without an allow-list (the default)', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  test('every preflight is refused and no response carries a CORS header', async () => {
    const res = await preflight(`${d.url}${STATUS}`, ALLOWED);
    assert.equal(res.status, 403);
    assertNoCors(res);
    const get = await request(`${d.url}${STATUS}`, { headers: { Origin: ALLOWED } });
    assert.equal(get.status, 200);
    assertNoCors(get);
    assert.equal(get.headers.vary, undefined, 'nothing varies by Origin');
  });
});

describe('the environment', () => {
  for (const name of ['POCKETPAW_STATUS_CORS_ORIGINS', 'POCKETPAW_STATUS_CORS_ORIGIN']) {
    test(`${name} takes a comma-separated list`, async () => {
      const d = await startDaemon({ env: { [name]: `${ALLOWED}, ${ALLOWED_2}` } });
      try {
        for (const origin of [ALLOWED, ALLOWED_2]) {
          const res = await preflight(`${d.url}${STATUS}`, origin);
          assert.equal(res.status, 204, origin);
          assert.equal(res.headers['access-control-allow-origin'], origin);
        }
        assert.equal((await preflight(`${d.url}${STATUS}`, DENIED)).status, 403);
      } finally {
        await d.stop();
      }
    });
  }

  test('the flag wins over the variable', async () => {
    const d = await startDaemon({ args: ['--cors-origin', ALLOWED_2], env: { POCKETPAW_STATUS_CORS_ORIGINS: ALLOWED } });
    try {
      assert.equal((await preflight(`${d.url}${STATUS}`, ALLOWED_2)).status, 204);
      assert.equal((await preflight(`${d.url}${STATUS}`, ALLOWED)).status, 403);
    } finally {
      await d.stop();
    }
  });
});

describe('invalid origins stop the start (exit 2), naming the flag or variable', { concurrency: 4 }, () => {
  const cases: [string[], Record<string, string>, string, string][] = [
    [['--cors-origin', '*'], {}, '--cors-origin', '*'],
    [['--cors-origin', ALLOWED, '--cors-origin', 'https://*.example.lan'], {}, '--cors-origin', '*.example.lan'],
    [['--cors-origin', 'https://dash.example.lan/app'], {}, '--cors-origin', '/app'],
    [['--cors-origin', 'null'], {}, '--cors-origin', 'null'],
    [[], { POCKETPAW_STATUS_CORS_ORIGINS: `${ALLOWED},*` }, 'POCKETPAW_STATUS_CORS_ORIGINS', '*'],
  ];
  for (const [args, env, name, value] of cases) {
    test(`${name} ${value}`, async () => {
      const result = await runCli(['serve', '--port', '0', '--socket', join(dir, 'never.sock'), ...args], { env });
      assert.equal(result.code, 2, result.stderr);
      const first = result.stderr.split('\n')[0]!;
      assert.ok(first.includes(name) && first.includes(value), first);
      assert.doesNotMatch(result.stderr, /ready/);
    });
  }
});
