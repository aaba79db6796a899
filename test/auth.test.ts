/**
 * API-key auth (issue 4) against the real daemon: every way of presenting the key, wrong and missing keys on REST,
 * SSE and /metrics, the precedence, the key sources, rotation by SIGHUP under a connected eventsource client, the
 * failure rate limit and its recovery, and that the key never reaches the logs.
 *
 * Failed attempts count against a per-address bucket of 30, so tests that fail on purpose send from their own
 * address in 127.0.0.0/8 (`localAddress`), and never share one with another test.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { runCli, sendOnce, startDaemon, waitFor, type TestDaemon } from './helpers/daemon.ts';
import { FORBIDDEN_BODY, request, TOO_MANY_BODY } from './helpers/http.ts';
import { RawSse } from './helpers/sse.ts';

const STATUS = '/api/v1/agent/status';
const STREAM = '/api/v1/agent/status/stream';
const KEY = 'status-key-Q7w9E2r4T6y8U0i1';
const OTHER_KEY = 'rotated-key-Z3x5C7v9B1n3M5k7';

const dir = mkdtempSync(join(tmpdir(), 'pps-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function keyFile(contents: string): string {
  const path = join(dir, `key-${files++}`);
  writeFileSync(path, contents);
  chmodSync(path, 0o600);
  return path;
}

let addresses = 10;
/** A client address no other test uses. */
function freshAddress(): string {
  return `127.0.0.${addresses++}`;
}

interface Follower {
  readonly es: EventSource;
  readonly statuses: { sessions: { session_key: string }[] }[];
  readonly errors: { code: number | undefined }[];
  opens: number;
}

/** An eventsource client; the key, when given, goes in X-Status-Key through a custom fetch (v4 has no headers option). */
function follow(url: string, key: string | null = null): Follower {
  const es = new EventSource(
    url,
    key === null ? {} : { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'X-Status-Key': key } }) },
  );
  const f: Follower = { es, statuses: [], errors: [], opens: 0 };
  es.addEventListener('status', (e) => f.statuses.push(JSON.parse(String(e.data)) as Follower['statuses'][number]));
  es.addEventListener('error', (e) => f.errors.push({ code: e.code }));
  es.addEventListener('open', () => f.opens++);
  return f;
}

function assertKeyNotLogged(d: TestDaemon, ...keys: string[]): void {
  const all = d.stderr.join('\n');
  for (const key of keys) assert.ok(!all.includes(key), `the key ${key} appears in the logs`);
}

describe('presenting the key', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--api-key-file', keyFile(`${KEY}\n`)] });
  });
  after(() => d.stop());

  test('REST: each of ?key=, X-Status-Key (any case) and Authorization: Bearer is accepted', async () => {
    for (const [path, headers] of [
      [`${STATUS}?key=${KEY}`, {}],
      [STATUS, { 'X-Status-Key': KEY }],
      [STATUS, { 'x-STATUS-key': KEY }],
      [STATUS, { Authorization: `Bearer ${KEY}` }],
      [STATUS, { Authorization: `bearer ${KEY}` }],
    ] as const) {
      const res = await request(`${d.url}${path}`, { headers });
      assert.equal(res.status, 200, `${path} ${JSON.stringify(headers)}: ${res.body}`);
      assert.equal((JSON.parse(res.body) as { global: { state: string } }).global.state, 'idle');
    }
  });

  test('REST: a missing or wrong key is 403 with upstream\'s exact body', async () => {
    const from = freshAddress();
    for (const [path, headers] of [
      [STATUS, {}],
      [`${STATUS}?key=wrong`, {}],
      [`${STATUS}?key=`, {}],
      [STATUS, { 'X-Status-Key': 'wrong' }],
      [STATUS, { 'X-Status-Key': KEY.slice(0, -1) }],
      [STATUS, { 'X-Status-Key': `${KEY}x` }],
      [STATUS, { Authorization: 'Bearer wrong' }],
      [STATUS, { Authorization: `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}` }],
      [`${STATUS}/`, {}],
      [`${STATUS}?session=x:1`, {}],
    ] as const) {
      const res = await request(`${d.url}${path}`, { headers, localAddress: from });
      assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
      assert.equal(res.body, FORBIDDEN_BODY);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="pocketpaw-status"', 'generic clients learn a key is wanted');
    }
  });

  test('precedence: ?key=, then X-Status-Key, then Bearer; the first present decides (upstream\'s cases included)', async () => {
    const from = freshAddress();
    const cases: [string, Record<string, string>, number][] = [
      // Upstream: `?key=bad` plus header k1 -> 403; `?key=` plus header k1 -> 200.
      [`${STATUS}?key=bad`, { 'X-Status-Key': KEY }, 403],
      [`${STATUS}?key=`, { 'X-Status-Key': KEY }, 200],
      [`${STATUS}?key=${KEY}`, { 'X-Status-Key': 'bad' }, 200],
      [STATUS, { 'X-Status-Key': 'bad', Authorization: `Bearer ${KEY}` }, 403],
      [STATUS, { 'X-Status-Key': KEY, Authorization: 'Bearer bad' }, 200],
      [`${STATUS}?key=bad`, { Authorization: `Bearer ${KEY}` }, 403],
      [`${STATUS}?key=`, { 'X-Status-Key': '', Authorization: `Bearer ${KEY}` }, 200],
    ];
    for (const [path, headers, status] of cases) {
      const res = await request(`${d.url}${path}`, { headers, localAddress: from });
      assert.equal(res.status, status, `${path} ${JSON.stringify(headers)}: ${res.body}`);
    }
  });

  test('SSE (raw): 403 with the exact body before any stream byte; 200 event-stream with the key', async () => {
    const from = freshAddress();
    const variants: Record<string, string>[] = [{}, { 'X-Status-Key': 'wrong' }, { Accept: 'text/event-stream' }];
    for (const headers of variants) {
      const res = await request(`${d.url}${STREAM}`, { headers, localAddress: from });
      assert.equal(res.status, 403);
      assert.equal(res.body, FORBIDDEN_BODY, 'nothing but the JSON body: no retry:, no event');
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="pocketpaw-status"');
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    }
    assert.equal((await request(`${d.url}${STREAM}`, { method: 'HEAD', localAddress: from })).status, 403);
    for (const [path, headers] of [
      [`${STREAM}?key=${KEY}`, {}],
      [STREAM, { 'X-Status-Key': KEY }],
      [STREAM, { Authorization: `Bearer ${KEY}` }],
    ] as const) {
      const sse = await RawSse.open(`${d.url}${path}`, headers);
      try {
        assert.equal(sse.status, 200);
        assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
        await sse.waitFor((s) => s.of('status').length >= 1, 'a status event');
      } finally {
        sse.close();
      }
    }
  });

  test('SSE (eventsource): the key in X-Status-Key or ?key= streams; missing or wrong gets a final 403', async () => {
    const byHeader = follow(`${d.url}${STREAM}`, KEY);
    const byQuery = follow(`${d.url}${STREAM}?key=${KEY}`);
    const missing = follow(`${d.url}${STREAM}`);
    const wrong = follow(`${d.url}${STREAM}`, 'wrong');
    try {
      await waitFor(() => byHeader.statuses.length >= 1 && byQuery.statuses.length >= 1, { what: 'status events on keyed clients' });
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'auth:1' });
      for (const f of [byHeader, byQuery]) {
        await waitFor(() => f.statuses.some((s) => s.sessions.some((x) => x.session_key === 'auth:1')), { what: 'the change on a keyed client' });
      }
      for (const f of [missing, wrong]) {
        await waitFor(() => f.es.readyState === EventSource.CLOSED, { what: 'the refused client gives up' });
        assert.deepEqual(f.errors, [{ code: 403 }]);
        assert.equal(f.statuses.length, 0);
        assert.equal(f.opens, 0);
      }
    } finally {
      for (const f of [byHeader, byQuery, missing, wrong]) f.es.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'auth:1' });
    }
  });

  test('/metrics and unknown paths need the key; /livez, /readyz and the page at / do not', async () => {
    const from = freshAddress();
    for (const path of ['/metrics', '/nope', '/api', '/api/v1/other']) {
      const res = await request(`${d.url}${path}`, { localAddress: from });
      assert.equal(res.status, 403, path);
      assert.equal(res.body, FORBIDDEN_BODY);
    }
    assert.equal((await request(`${d.url}/metrics`, { headers: { 'X-Status-Key': KEY } })).status, 200);
    assert.equal((await request(`${d.url}/nope`, { headers: { 'X-Status-Key': KEY } })).status, 404);
    for (const path of ['/livez', '/readyz', '/livez?verbose']) assert.equal((await request(`${d.url}${path}`, { localAddress: from })).status, 200, path);
    // The page holds no data (it may be unavailable when its build failed, but never behind the key).
    const page = await request(`${d.url}/`, { localAddress: from });
    assert.ok(page.status === 200 || page.status === 503, `/ answered ${page.status}`);
    assert.notEqual(page.body, FORBIDDEN_BODY);
  });

  test('the key is not in the logs after right and wrong keys in every position', () => {
    assertKeyNotLogged(d, KEY);
  });
});

describe('key sources through the real daemon', () => {
  const creds = mkdtempSync(join(dir, 'creds-'));
  writeFileSync(join(creds, 'status-api-key'), 'credential-key-A1s2D3f4G5h6\n');

  /** `source`: the kind of key source the daemon names on a refusal, for the status page (never a path or the key). */
  async function accepts(args: string[], env: Record<string, string>, good: string, bad: string[], source: string): Promise<void> {
    const d = await startDaemon({ args, env });
    try {
      const from = freshAddress();
      assert.equal((await request(`${d.url}${STATUS}`, { headers: { 'X-Status-Key': good } })).status, 200, `${good} is the key`);
      for (const key of bad) assert.equal((await request(`${d.url}${STATUS}`, { headers: { 'X-Status-Key': key }, localAddress: from })).status, 403, `${key} is not`);
      const refused = await request(`${d.url}${STATUS}`, { localAddress: from });
      assert.equal(refused.status, 403);
      assert.equal(refused.headers['x-status-key-source'], source, 'the refusal names the kind of key source');
      assertKeyNotLogged(d, good, ...bad);
    } finally {
      await d.stop();
    }
  }

  test('POCKETPAW_STATUS_API_KEY', () => accepts([], { POCKETPAW_STATUS_API_KEY: 'env-key-P0o9I8u7Y6t5' }, 'env-key-P0o9I8u7Y6t5', ['wrong'], 'env'));

  test('the systemd credential wins over POCKETPAW_STATUS_API_KEY', () =>
    accepts([], { CREDENTIALS_DIRECTORY: creds, POCKETPAW_STATUS_API_KEY: 'env-key-P0o9I8u7Y6t5' }, 'credential-key-A1s2D3f4G5h6', ['env-key-P0o9I8u7Y6t5'], 'credential'));

  test('POCKETPAW_STATUS_API_KEY_FILE wins over the credential (trailing newline stripped)', () =>
    accepts([], { POCKETPAW_STATUS_API_KEY_FILE: keyFile('file-key-L1k2J3h4G5f6\r\n'), CREDENTIALS_DIRECTORY: creds }, 'file-key-L1k2J3h4G5f6', [
      'credential-key-A1s2D3f4G5h6',
    ], 'file'));

  test('no key anywhere: open access, as upstream', async () => {
    const d = await startDaemon();
    try {
      assert.equal((await request(`${d.url}${STATUS}`)).status, 200);
      assert.equal((await request(`${d.url}${STATUS}?key=anything`)).status, 200);
      assert.equal((await request(`${d.url}/metrics`)).status, 200);
    } finally {
      await d.stop();
    }
  });

  test('a key source that exists but cannot be used stops the start (exit 2), naming it, never quoting it', async () => {
    const secretish = 'not a valid key because of spaces';
    const cases: [string[], Record<string, string>, string][] = [
      [['--api-key-file', join(dir, 'absent')], {}, '--api-key-file'],
      [['--api-key-file', keyFile('\n')], {}, '--api-key-file'],
      [['--api-key-file', keyFile(`${secretish}\n`)], {}, '--api-key-file'],
      [[], { POCKETPAW_STATUS_API_KEY_FILE: keyFile('') }, 'POCKETPAW_STATUS_API_KEY_FILE'],
      [[], { POCKETPAW_STATUS_API_KEY: secretish }, 'POCKETPAW_STATUS_API_KEY'],
    ];
    const emptyCreds = mkdtempSync(join(dir, 'creds-'));
    writeFileSync(join(emptyCreds, 'status-api-key'), '');
    cases.push([[], { CREDENTIALS_DIRECTORY: emptyCreds }, join(emptyCreds, 'status-api-key')]);
    for (const [args, env, name] of cases) {
      const result = await runCli(['serve', '--port', '0', '--socket', join(dir, `never-${files++}.sock`), ...args], { env });
      assert.equal(result.code, 2, `${name}: ${result.stderr}`);
      assert.ok(result.stderr.includes(name), `names ${name}: ${result.stderr}`);
      assert.ok(!result.stderr.includes(secretish), 'does not quote the key');
      assert.doesNotMatch(result.stderr, /ready/);
    }
  });
});

describe('key rotation by SIGHUP', () => {
  test('new requests need the new key, the connected stream keeps receiving; an unreadable key keeps the old one', async () => {
    const path = keyFile(`${KEY}\n`);
    const d = await startDaemon({ args: ['--api-key-file', path] });
    const f = follow(`${d.url}${STREAM}`, KEY);
    const reloads = () => d.logs().filter((l) => l.msg.startsWith('API key'));
    try {
      await waitFor(() => f.statuses.length >= 1, { what: 'the stream is open' });

      writeFileSync(path, `${OTHER_KEY}\n`);
      d.proc.kill('SIGHUP');
      await waitFor(() => reloads().length === 1, { what: 'the reload log line' });
      assert.equal(reloads()[0]!.changed, true);

      const from = freshAddress();
      assert.equal((await request(`${d.url}${STATUS}`, { headers: { 'X-Status-Key': KEY }, localAddress: from })).status, 403, 'the old key is refused');
      assert.equal((await request(`${d.url}${STATUS}`, { headers: { 'X-Status-Key': OTHER_KEY } })).status, 200, 'the new key is accepted');
      const late = follow(`${d.url}${STREAM}`, KEY);
      await waitFor(() => late.es.readyState === EventSource.CLOSED, { what: 'a new stream with the old key is refused' });
      assert.deepEqual(late.errors, [{ code: 403 }]);

      await sendOnce(d.socket, { type: 'agent_start', session_key: 'rot:1' });
      await waitFor(() => f.statuses.some((s) => s.sessions.some((x) => x.session_key === 'rot:1')), { what: 'the connected stream still gets changes' });

      // An empty key file, then none at all: the key stays, and the log says why.
      for (const breakIt of [() => writeFileSync(path, ''), () => rmSync(path)]) {
        const before = reloads().length;
        breakIt();
        d.proc.kill('SIGHUP');
        await waitFor(() => reloads().length === before + 1, { what: 'the failed reload log line' });
        assert.match(reloads().at(-1)!.msg, /not reloaded, the previous key stays in force: .*(empty|ENOENT)/);
        assert.equal((await request(`${d.url}${STATUS}`, { headers: { 'X-Status-Key': OTHER_KEY } })).status, 200);
        assert.equal((await request(`${d.url}${STATUS}`, { localAddress: from })).status, 403);
      }

      await sendOnce(d.socket, { type: 'agent_end', session_key: 'rot:1' });
      await waitFor(() => f.statuses.at(-1)!.sessions.length === 0, { what: 'still streaming after the failed reloads' });
      assert.equal(f.opens, 1, 'the stream was never dropped');
      assert.equal(f.es.readyState, EventSource.OPEN);
      assert.equal(d.proc.exitCode, null, 'SIGHUP does not stop the daemon');
      assertKeyNotLogged(d, KEY, OTHER_KEY);
    } finally {
      f.es.close();
      await d.stop();
    }
  });
});

describe('failed attempts are rate limited per client address', () => {
  test('beyond a burst of 30: 429 with Retry-After; the right key still passes; other addresses unaffected; recovery', async () => {
    const d = await startDaemon({ args: ['--api-key-file', keyFile(`${KEY}\n`)] });
    try {
      const from = freshAddress();
      // Sent one after another as fast as they go (far above 10/s): the limit must bite within a bounded number.
      let refused = 0;
      let limited = null;
      for (let i = 0; i < 1000 && limited === null; i++) {
        const res = await request(`${d.url}${STATUS}`, { headers: i % 2 ? { 'X-Status-Key': 'wrong' } : {}, localAddress: from });
        if (res.status === 403) refused++;
        else limited = res;
      }
      assert.ok(limited !== null, 'no 429 after 1000 failed attempts');
      assert.ok(refused >= 30, `a burst of 30 failures is allowed first (got ${refused})`);
      assert.equal(limited.status, 429);
      assert.equal(limited.body, TOO_MANY_BODY);
      assert.match(limited.headers['retry-after'] ?? '', /^[1-9]\d*$/);
      assert.match(limited.headers['content-type'] ?? '', /^application\/json/);

      let tooMany = 1;
      // The stream and /metrics are limited the same way.
      for (const path of [STREAM, '/metrics']) {
        const res = (await waitFor(async () => {
          const r = await request(`${d.url}${path}`, { localAddress: from });
          return r.status === 429 ? r : null;
        }, { what: `429 on ${path}` }))!;
        tooMany++;
        assert.equal(res.body, TOO_MANY_BODY);
        assert.match(res.headers['retry-after'] ?? '', /^[1-9]\d*$/);
      }
      // The right key is never limited, by any method of presenting it, REST or SSE.
      for (let i = 0; i < 40; i++) {
        assert.equal((await request(`${d.url}${STATUS}?key=${KEY}`, { localAddress: from })).status, 200);
      }
      assert.equal((await request(`${d.url}${STATUS}`, { headers: { Authorization: `Bearer ${KEY}` }, localAddress: from })).status, 200);
      assert.equal((await request(`${d.url}/metrics`, { headers: { 'X-Status-Key': KEY }, localAddress: from })).status, 200);
      const sse = await RawSse.open(`${d.url}${STREAM}`, { 'X-Status-Key': KEY });
      assert.equal(sse.status, 200);
      sse.close();
      // Another address has its own bucket.
      assert.equal((await request(`${d.url}${STATUS}`, { localAddress: freshAddress() })).status, 403);
      // Open paths are not limited.
      assert.equal((await request(`${d.url}/livez`, { localAddress: from })).status, 200);

      // Recovery: failures are answered 403 again once tokens have refilled (polled, never timed).
      await waitFor(
        async () => {
          const status = (await request(`${d.url}${STATUS}`, { localAddress: from })).status;
          if (status === 429) tooMany++;
          return status === 403;
        },
        { timeoutMs: 15_000, what: 'a failed attempt answered 403 again' },
      );
      const warned = d.logs().filter((l) => /too many failed API key attempts/.test(l.msg));
      assert.ok(warned.length >= 1, 'the limiting is logged');
      assert.ok(warned.length < tooMany, `logged once per episode, not per 429 (${warned.length} lines for ${tooMany} answers)`);
      assertKeyNotLogged(d, KEY);
    } finally {
      await d.stop();
    }
  });
});
