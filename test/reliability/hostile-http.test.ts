/**
 * Hostile HTTP clients (issue 13): DNS rebinding (item 4) and requests @hono/node-server cannot turn into a URL
 * (item 10). Both are answered in the API's JSON error shape, `{"detail": ...}`.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { runCli, startDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { rawExchange as raw, request } from '../helpers/http.ts';
import { scrape } from '../helpers/metrics.ts';

function detail(body: string): string {
  const value = JSON.parse(body) as { detail?: unknown };
  assert.equal(typeof value.detail, 'string', `expected {"detail": "..."}, got ${body}`);
  return value.detail as string;
}

/** The sum of http_requests_total over every label. */
async function requestsCounted(url: string): Promise<number> {
  const text = await scrape(url);
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith('pocketpaw_status_http_requests_total{')) sum += Number(line.split(' ').pop());
  return sum;
}

describe('DNS rebinding: the Host header must name this machine', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--allowed-host', 'status.example.lan', '--allowed-host', 'Dash.Example.Lan.'] });
  });
  after(() => d.stop());

  const port = () => new URL(d.url).port;

  test('a name that is not this machine gets 421 with a JSON detail, on every path', async () => {
    for (const path of ['/', '/api/v1/agent/status', '/api/v1/agent/status/stream', '/metrics', '/livez']) {
      const res = await raw(d.url, `GET ${path} HTTP/1.1\r\nHost: rebind.attacker.example:${port()}\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 421, path);
      assert.match(res.headers, /content-type: application\/json/i);
      assert.match(detail(res.body), /--allowed-host/);
    }
  });

  test('every name a user would type is answered: IP literals, localhost, the hostname, <hostname>.local, --allowed-host', async () => {
    const names = ['127.0.0.1', '[::1]', '192.168.1.20', 'localhost', 'LOCALHOST.', hostname(), `${hostname()}.local`, 'status.example.lan', 'dash.example.lan'];
    for (const name of names) {
      const res = await raw(d.url, `GET /api/v1/agent/status HTTP/1.1\r\nHost: ${name}:${port()}\r\nConnection: close\r\n\r\n`);
      assert.equal(res.status, 200, name);
      const bare = await raw(d.url, `GET /livez HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
      assert.equal(bare.status, 200, `${name} without a port`);
    }
  });

  test('the status page and the CLI work on the names a user types', async () => {
    const page = await request(`${d.url}/`);
    assert.equal(page.status, 200);
    for (const url of [d.url, `http://localhost:${port()}`]) {
      const cli = await runCli(['status', '--url', url]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /PocketPaw Status/);
    }
  });

  test('the environment variable takes a comma-separated list', async () => {
    const e = await startDaemon({ env: { POCKETPAW_STATUS_ALLOWED_HOSTS: 'one.lan, two.lan' } });
    try {
      for (const name of ['one.lan', 'two.lan']) {
        assert.equal((await raw(e.url, `GET /livez HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`)).status, 200, name);
      }
      assert.equal((await raw(e.url, `GET /livez HTTP/1.1\r\nHost: three.lan\r\nConnection: close\r\n\r\n`)).status, 421);
    } finally {
      await e.stop();
    }
  });

  test('an invalid --allowed-host is a configuration error naming the flag', async () => {
    const res = await runCli(['serve', '--port', '0', '--allowed-host', 'http://x.lan/']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--allowed-host/);
  });
});

describe('requests that cannot be turned into a URL get a JSON 400', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  const cases: [string, string][] = [
    ['Host: a:99999', 'GET /api/v1/agent/status HTTP/1.1\r\nHost: a:99999\r\n\r\n'],
    ['request target *', 'GET * HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n'],
    ['HTTP/1.0 without Host', 'GET /api/v1/agent/status HTTP/1.0\r\n\r\n'],
  ];
  for (const [name, head] of cases) {
    test(`${name}: 400 with {"detail": ...}, not counted in /metrics`, async () => {
      const before = await requestsCounted(d.url);
      const res = await raw(d.url, head);
      assert.equal(res.status, 400);
      assert.match(res.headers, /content-type: application\/json/i);
      assert.match(detail(res.body), /^Malformed HTTP request/);
      // The scrape itself is the one request counted in between.
      assert.equal(await requestsCounted(d.url), before + 1);
    });
  }
});
