/**
 * /livez, /readyz and /metrics over real HTTP against the spawned daemon; readiness during shutdown in-process
 * (the real startDaemon on real sockets), because from outside the flip lasts no longer than the close itself.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Hono } from 'hono';
import { parseServeConfig, type ServeConfig } from '../daemon/config.ts';
import { Readiness, registerHealthRoutes } from '../daemon/http/health.ts';
import { createLogger } from '../daemon/log.ts';
import { startDaemon as startInProcess } from '../daemon/serve.ts';
import { Producer, sendOnce, startDaemon, tempDir, waitFor, waitForStatus, type TestDaemon } from './helpers/daemon.ts';

// --- a Prometheus text-format reader, strict enough to fail on a malformed exposition ---

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  help: string | null;
  type: string | null;
  readonly samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
const SUFFIXES = ['_bucket', '_sum', '_count', '_created'];

/** Parses the 0.0.4 text format (https://prometheus.io/docs/instrumenting/exposition_formats); throws on any bad line. */
function parseExposition(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: null, type: null, samples: [] }));
    return f;
  };
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    if (line === '') continue;
    const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3]!;
      else {
        assert.match(meta[3]!, /^(counter|gauge|histogram|summary|untyped)$/, `line ${i + 1}: unknown type`);
        assert.equal(f.samples.length, 0, `line ${i + 1}: TYPE after samples of ${meta[2]}`);
        f.type = meta[3]!;
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `line ${i + 1} is not a sample: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      let rest = m[2].length;
      while (rest > 0) {
        const start = LABEL.lastIndex;
        const l = LABEL.exec(m[2]);
        assert.ok(l, `line ${i + 1}: bad labels ${JSON.stringify(m[2])}`);
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
        rest -= LABEL.lastIndex - start;
      }
    }
    // Prometheus reads values with Go's ParseFloat, which takes NaN in any case (prom-client writes "Nan").
    const isNaN = /^nan$/i.test(m[3]!);
    const value = isNaN ? NaN : Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    assert.ok(isNaN || !Number.isNaN(value), `line ${i + 1}: bad value ${m[3]}`);
    const name = m[1]!;
    const base = families.has(name) ? name : (SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : '')).find((b) => families.has(b)) ?? name);
    const f = families.get(base);
    assert.ok(f?.type, `line ${i + 1}: sample ${name} has no TYPE line before it`);
    f.samples.push({ name, labels, value });
  }
  return families;
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const samples = families.get(name)?.samples ?? [];
  const match = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(match, `no sample ${name}${JSON.stringify(labels)} in ${JSON.stringify(samples.map((s) => s.labels))}`);
  return match.value;
}

/** Waits until a scrape satisfies `check` (counters are read at scrape time, so a moved counter shows at once). */
function waitForMetrics(url: string, check: (m: Map<string, Family>) => boolean, what: string): Promise<Map<string, Family>> {
  return waitFor(async (): Promise<Map<string, Family> | null> => {
    const m = await scrape(url);
    return check(m) ? m : null;
  }, { what, timeoutMs: 10_000 }) as Promise<Map<string, Family>>;
}

/** Opens an SSE stream with node:http and resolves once its headers arrived. */
function openStream(url: string): Promise<{ res: http.IncomingMessage; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/api/v1/agent/status/stream`, { headers: { Accept: 'text/event-stream' } }, (res) => {
      res.resume();
      resolve({ res, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

describe('health and metrics over HTTP', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--max-producers', '2'] });
  });
  after(async () => {
    await d.stop();
  });

  test('/livez and /readyz answer 200 with tiny bodies, no session data, not cached', async () => {
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'websocket:secret-session', title: 'private title' });
    await waitForStatus(d.url, (s) => s.sessions.length === 1);
    for (const path of ['/livez', '/readyz', '/livez?verbose', '/readyz?verbose']) {
      const res = await fetch(d.url + path);
      const body = await res.text();
      assert.equal(res.status, 200, path);
      assert.ok(body.length < 200, `${path} body is tiny`);
      assert.doesNotMatch(body, /secret-session|private title/, `${path} says nothing about sessions`);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
    assert.equal(await (await fetch(`${d.url}/livez`)).text(), 'ok\n');
    assert.equal(await (await fetch(`${d.url}/readyz?verbose`)).text(), '[+]ingest ok\n[+]shutdown ok\nreadyz check passed\n');
    await sendOnce(d.socket, { type: 'agent_end', session_key: 'websocket:secret-session' });
    await waitForStatus(d.url, (s) => s.sessions.length === 0);
  });

  test('other methods on the health and metrics paths get a JSON 405', async () => {
    for (const path of ['/livez', '/readyz', '/metrics']) {
      const res = await fetch(d.url + path, { method: 'POST' });
      assert.equal(res.status, 405, path);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
    }
  });

  test('/metrics is Prometheus text from prom-client: its content type, HELP and TYPE lines, _total counters', async () => {
    const res = await fetch(`${d.url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const families = parseExposition(await res.text());
    const ours = [...families].filter(([name]) => name.startsWith('pocketpaw_status_'));
    assert.deepEqual(
      ours.map(([name]) => name).sort(),
      [
        'events_ignored_total',
        'events_ingested_total',
        'error_replies_dropped_total',
        'http_requests_total',
        'lines_rejected_total',
        'producers_closed_total',
        'producers_connected',
        'producers_refused_total',
        'sessions',
        'sessions_refused_total',
        'sse_clients_connected',
        'sse_clients_dropped_total',
        'sse_clients_refused_total',
        'sse_clients_total',
        'sse_events_sent_total',
        'sse_queued_bytes',
        'sse_renderings_total',
        'sse_views',
      ]
        .map((n) => `pocketpaw_status_${n}`)
        .sort(),
    );
    for (const [name, f] of ours) {
      assert.ok(f.help, `${name} has HELP`);
      assert.equal(f.type === 'counter', name.endsWith('_total'), `${name}: counters, and only counters, end in _total`);
    }
    // The default process and Node series, under their standard names.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(families.has(name), `${name} is exported`);
    }
    // Every known label value is there from the start, at zero, so that rate() works from the first event.
    assert.equal(typeof value(families, 'pocketpaw_status_lines_rejected_total', { reason: 'too_long' }), 'number');
    assert.equal(typeof value(families, 'pocketpaw_status_sessions', { state: 'waiting_for_user' }), 'number');
  });

  test('ingest counters move with events, rejects, ignored events and producers', async () => {
    const before = await scrape(d.url);
    const started = value(before, 'pocketpaw_status_events_ingested_total', { type: 'agent_start' });
    const invalidJson = value(before, 'pocketpaw_status_lines_rejected_total', { reason: 'invalid_json' });
    const tooLong = value(before, 'pocketpaw_status_lines_rejected_total', { reason: 'too_long' });
    const unknownSession = value(before, 'pocketpaw_status_events_ignored_total', { reason: 'unknown_session' });
    const refused = value(before, 'pocketpaw_status_producers_refused_total');

    const p = await Producer.connect(d.socket);
    p.send({ type: 'hello', agent: 'metrics-test' }, { type: 'agent_start', session_key: 'websocket:m1' }, { type: 'tool_start', session_key: 'websocket:m1', name: 'bash' });
    p.send('{not json\n', `${'x'.repeat(70_000)}\n`, { type: 'thinking', session_key: 'websocket:nobody' });
    await p.waitReplies(2);

    let m = await waitForMetrics(d.url, (s) => value(s, 'pocketpaw_status_events_ingested_total', { type: 'tool_start' }) >= 1, 'tool_start counted');
    assert.equal(value(m, 'pocketpaw_status_events_ingested_total', { type: 'agent_start' }), started + 1);
    assert.equal(value(m, 'pocketpaw_status_lines_rejected_total', { reason: 'invalid_json' }), invalidJson + 1);
    assert.equal(value(m, 'pocketpaw_status_lines_rejected_total', { reason: 'too_long' }), tooLong + 1);
    assert.equal(value(m, 'pocketpaw_status_events_ignored_total', { reason: 'unknown_session' }), unknownSession + 1);
    assert.equal(value(m, 'pocketpaw_status_producers_connected'), 1);
    assert.equal(value(m, 'pocketpaw_status_sessions', { state: 'tool_running' }), 1);
    assert.equal(value(m, 'pocketpaw_status_sessions', { state: 'thinking' }), 0);

    // --max-producers 2: a third connection is refused and counted (both are hello agents: none is closed to make room).
    const second = await Producer.connect(d.socket);
    const agents = () => d.logs().filter((l) => l.msg === 'agent connected').length;
    const agentsBefore = agents();
    second.send({ type: 'hello', agent: 'metrics-test-2' });
    await waitFor(() => agents() > agentsBefore, { what: 'the second agent\'s hello' });
    const third = await Producer.connect(d.socket);
    await third.closed;
    m = await waitForMetrics(d.url, (s) => value(s, 'pocketpaw_status_producers_refused_total') === refused + 1, 'the refused producer');
    assert.equal(value(m, 'pocketpaw_status_producers_connected'), 2);
    await second.end();

    p.send({ type: 'agent_end', session_key: 'websocket:m1' });
    await p.end();
    m = await waitForMetrics(d.url, (s) => value(s, 'pocketpaw_status_producers_connected') === 0, 'producers gone');
    assert.equal(value(m, 'pocketpaw_status_sessions', { state: 'tool_running' }), 0);
  });

  test('SSE counters move with clients and the events sent to them', async () => {
    const before = await scrape(d.url);
    const total = value(before, 'pocketpaw_status_sse_clients_total');
    const sent = value(before, 'pocketpaw_status_sse_events_sent_total', { type: 'status' });

    const stream = await openStream(d.url);
    assert.equal(stream.res.statusCode, 200);
    let m = await waitForMetrics(d.url, (s) => value(s, 'pocketpaw_status_sse_events_sent_total', { type: 'status' }) > sent, 'the first status event');
    assert.equal(value(m, 'pocketpaw_status_sse_clients_connected'), 1);
    assert.equal(value(m, 'pocketpaw_status_sse_clients_total'), total + 1);
    assert.equal(typeof value(m, 'pocketpaw_status_sse_clients_dropped_total', { reason: 'write_timeout' }), 'number');

    stream.close();
    m = await waitForMetrics(d.url, (s) => value(s, 'pocketpaw_status_sse_clients_connected') === 0, 'the client gone');
    assert.equal(value(m, 'pocketpaw_status_sse_clients_total'), total + 1);
  });

  test('HTTP requests are counted by route pattern and status, never by raw URL', async () => {
    const before = await scrape(d.url);
    const status200 = value(before, 'pocketpaw_status_http_requests_total', { route: '/api/v1/agent/status', status: '200' });
    await fetch(`${d.url}/api/v1/agent/status?session=websocket:xyz`);
    await fetch(`${d.url}/api/v1/agent/status`, { method: 'DELETE' });
    await fetch(`${d.url}/no-such-path-7f3a?key=hunter2`);
    const m = await scrape(d.url);
    assert.equal(value(m, 'pocketpaw_status_http_requests_total', { route: '/api/v1/agent/status', status: '200' }), status200 + 1);
    assert.ok(value(m, 'pocketpaw_status_http_requests_total', { route: '/api/v1/agent/status', status: '405' }) >= 1);
    assert.ok(value(m, 'pocketpaw_status_http_requests_total', { route: 'unmatched', status: '404' }) >= 1);
    const text = await (await fetch(`${d.url}/metrics`)).text();
    assert.doesNotMatch(text, /no-such-path|hunter2|websocket:xyz/, 'no raw URL, query or session key becomes a label');
  });
});

describe('readiness', () => {
  test('/readyz is 503 before the ingest socket is bound and once shutdown starts; /livez stays 200', async () => {
    const readiness = new Readiness();
    const app = new Hono();
    registerHealthRoutes(app, readiness);
    assert.equal((await app.request('/readyz')).status, 503);
    assert.match(await (await app.request('/readyz')).text(), /\[-\]ingest failed/);
    readiness.markIngestBound();
    assert.equal((await app.request('/readyz')).status, 200);
    readiness.startDraining();
    const res = await app.request('/readyz');
    assert.equal(res.status, 503);
    assert.equal(await res.text(), '[+]ingest ok\n[-]shutdown failed\nreadyz check failed\n');
    assert.equal((await app.request('/livez')).status, 200);
  });

  test('the daemon stops being ready as the very first step of shutdown, before anything is closed', async () => {
    const dir = tempDir();
    const config = parseServeConfig(['--socket', join(dir, 'ingest.sock'), '--port', '0', '--state-dir', 'none'], {}) as ServeConfig;
    const daemon = await startInProcess(config, createLogger('silent'));
    assert.equal(daemon.ready, true);
    assert.equal((await fetch(`${daemon.url}/readyz`)).status, 200);
    // An SSE client is open: the flip must not wait for streams or connections to end.
    const stream = await openStream(daemon.url);
    const closed = daemon.close();
    assert.equal(daemon.draining, true, 'draining is set synchronously when close() is called');
    assert.equal(daemon.ready, false);
    await closed;
    await once(stream.res, 'close');
  });
});
