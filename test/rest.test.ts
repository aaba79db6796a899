/**
 * GET /api/v1/agent/status through real HTTP: the document's exact shape and key order, JSON errors for unknown paths
 * and other methods, HEAD, and the ?session= / ?channel= filters.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { AgentStatusResponse } from '../protocol/snapshot.ts';
import { getStatus, Producer, session, startDaemon, waitFor, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

const STATUS = '/api/v1/agent/status';
const GLOBAL_KEYS = ['state', 'active_sessions', 'max_concurrent', 'uptime_seconds'];
const SESSION_KEYS = ['session_key', 'session_id', 'channel', 'title', 'state', 'tool_name', 'duration_seconds', 'token_usage', 'error_message'];

let d: TestDaemon;
let p: Producer;

before(async () => {
  d = await startDaemon();
  p = await Producer.connect(d.socket);
});
after(async () => {
  await p?.end();
  await d?.stop();
});

/** Waits until every line sent so far on `p` has been applied (see test/ingest.test.ts). */
async function applied(): Promise<void> {
  const from = p.replies.length;
  p.send('{"v":99,"type":"fence"}\n');
  await waitFor(() => p.replies.slice(from).some((r) => r.includes('version 99')), { timeoutMs: 20_000, what: 'the fence answer' });
}

async function raw(path: string, init?: RequestInit): Promise<{ res: Response; text: string }> {
  const res = await fetch(`${d.url}${path}`, init);
  return { res, text: await res.text() };
}

describe('the snapshot', () => {
  // First: the daemon has seen no event yet.
  test('idle: the exact document, compact JSON, application/json', async () => {
    const { res, text } = await raw(STATUS);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/);
    assert.match(text, /^\{"global":\{"state":"idle","active_sessions":0,"max_concurrent":5,"uptime_seconds":\d+\},"sessions":\[\]\}$/);
    const body = AgentStatusResponse.parse(JSON.parse(text));
    assert.ok(Number.isInteger(body.global.uptime_seconds));
  });

  test('active: validates against AgentStatusResponse, keys in documented order, nulls written', async () => {
    p.send(
      { type: 'agent_start', session_key: 'websocket:abc123', title: 'Fix the authentication' },
      { type: 'tool_start', session_key: 'websocket:abc123', name: 'bash' },
      { type: 'agent_start', session_key: 'discord:9' },
      { type: 'token_usage', session_key: 'discord:9', input_tokens: 120, output_tokens: 7 },
      { type: 'error', session_key: 'discord:9', message: 'Rate limit' },
    );
    await applied();
    const { res, text } = await raw(STATUS);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/);
    const body = AgentStatusResponse.parse(JSON.parse(text));
    const parsed = JSON.parse(text) as StatusBody;
    assert.deepEqual(Object.keys(parsed), ['global', 'sessions']);
    assert.deepEqual(Object.keys(parsed.global), GLOBAL_KEYS);
    for (const s of parsed.sessions) assert.deepEqual(Object.keys(s), SESSION_KEYS);

    assert.equal(body.global.state, 'degraded');
    assert.equal(body.global.active_sessions, 2);
    const [ws, discord] = body.sessions;
    assert.deepEqual({ ...ws, duration_seconds: 0 }, {
      session_key: 'websocket:abc123',
      session_id: 'abc123',
      channel: 'websocket',
      title: 'Fix the authentication',
      state: 'tool_running',
      tool_name: 'bash',
      duration_seconds: 0,
      token_usage: null,
      error_message: null,
    });
    assert.deepEqual({ ...discord, duration_seconds: 0 }, {
      session_key: 'discord:9',
      session_id: '9',
      channel: 'discord',
      title: null,
      state: 'error',
      tool_name: null,
      duration_seconds: 0,
      token_usage: { input: 120, output: 7 },
      error_message: 'Rate limit',
    });
    // A float with one decimal, as PocketPaw's round(x, 1) writes it (2.0, never 2).
    assert.match(text, /"duration_seconds":\d+\.\d,"token_usage"/);
    assert.doesNotMatch(text, /":\s|,\s"|\n/, 'compact JSON');
  });

  test('sessions in first-start order; a restart keeps its place and resets the run', async () => {
    p.send(
      { type: 'agent_start', session_key: 'order:1' },
      { type: 'agent_start', session_key: 'order:2' },
      { type: 'agent_start', session_key: 'order:3' },
      { type: 'token_usage', session_key: 'order:2', input: 10, output: 1 },
      { type: 'tool_start', session_key: 'order:2', name: 'bash' },
      { type: 'agent_start', session_key: 'order:2' },
    );
    await applied();
    const s = await getStatus(d.url);
    assert.deepEqual(
      s.sessions.map((x) => x.session_key).filter((k) => k.startsWith('order:')),
      ['order:1', 'order:2', 'order:3'],
    );
    const restarted = session(s, 'order:2');
    assert.equal(restarted?.state, 'thinking');
    assert.equal(restarted?.tool_name, null);
    assert.equal(restarted?.token_usage, null);
  });

  test('session_id and channel split the key at its first colon, as PocketPaw does; non-ASCII stays unescaped', async () => {
    p.send(
      { type: 'agent_start', session_key: 'telegram:1:2', title: 'café ☕' },
      { type: 'agent_start', session_key: ':orphan' },
      { type: 'agent_start', session_key: 'nocolon' },
    );
    await applied();
    const { text } = await raw(STATUS);
    const s = JSON.parse(text) as StatusBody;
    assert.deepEqual([session(s, 'telegram:1:2')?.channel, session(s, 'telegram:1:2')?.session_id], ['telegram', '1:2']);
    assert.deepEqual([session(s, ':orphan')?.channel, session(s, ':orphan')?.session_id], ['unknown', 'orphan']);
    assert.deepEqual([session(s, 'nocolon')?.channel, session(s, 'nocolon')?.session_id], ['nocolon', 'nocolon']);
    assert.ok(text.includes('"title":"café ☕"'), 'written as UTF-8, not \\u escapes');
  });

  test('HEAD answers like GET, without a body', async () => {
    const { res, text } = await raw(STATUS, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/);
    assert.equal(text, '');
  });
});

describe('filters', () => {
  before(async () => {
    p.send(
      { type: 'agent_start', session_key: 'slack:f1' },
      { type: 'agent_start', session_key: 'slack:f2' },
      { type: 'agent_start', session_key: 'teams:f3' },
      { type: 'agent_start', session_key: 'teams:f4' },
    );
    await applied();
  });

  async function filtered(query: string): Promise<{ keys: string[]; all: StatusBody }> {
    const [s, all] = await Promise.all([getStatus(d.url, query), getStatus(d.url)]);
    return { keys: s.sessions.map((x) => x.session_key), all: { ...s, sessions: all.sessions } };
  }

  test('?session= is repeatable; global is unaffected', async () => {
    const s = await getStatus(d.url, '?session=slack:f2&session=teams:f4&session=not:there');
    const all = await getStatus(d.url);
    assert.deepEqual(s.sessions.map((x) => x.session_key), ['slack:f2', 'teams:f4']);
    assert.deepEqual({ ...s.global, uptime_seconds: 0 }, { ...all.global, uptime_seconds: 0 });
    assert.ok(s.global.active_sessions > 2);
  });

  test('?channel= is repeatable', async () => {
    assert.deepEqual((await filtered('?channel=slack')).keys, ['slack:f1', 'slack:f2']);
    assert.deepEqual((await filtered('?channel=teams&channel=slack')).keys, ['slack:f1', 'slack:f2', 'teams:f3', 'teams:f4']);
  });

  test('?session= and ?channel= together: both must match', async () => {
    assert.deepEqual((await filtered('?channel=slack&session=slack:f1&session=teams:f3')).keys, ['slack:f1']);
    assert.deepEqual((await filtered('?channel=teams&session=slack:f1')).keys, []);
  });

  test('a key with a colon can be given URL-encoded', async () => {
    assert.deepEqual((await filtered(`?session=${encodeURIComponent('slack:f1')}`)).keys, ['slack:f1']);
  });
});

describe('errors', () => {
  test('an unknown path is a JSON 404 with a detail', async () => {
    for (const path of ['/nope', '/api/agent/status', '/api/v1/agent', `${STATUS}/extra`]) {
      const { res, text } = await raw(path);
      assert.equal(res.status, 404, path);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/, path);
      const body = JSON.parse(text) as { detail: unknown };
      assert.deepEqual(Object.keys(body), ['detail'], path);
      assert.equal(typeof body.detail, 'string');
    }
  });

  test('other methods on the status, stream, page, health and metrics paths are a JSON 405 with an Allow header', async () => {
    const paths = [STATUS, '/api/v1/agent/status/stream', '/', '/livez', '/readyz', '/metrics'];
    for (const [method, path] of ['POST', 'PUT', 'DELETE', 'PATCH'].flatMap((m) => paths.map((p) => [m, p] as const))) {
      const { res, text } = await raw(path, { method, body: method === 'DELETE' ? undefined : '{}' });
      assert.equal(res.status, 405, method);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/, method);
      const allow = (res.headers.get('allow') ?? '').split(',').map((m) => m.trim());
      assert.ok(allow.includes('GET'), `${method}: Allow lists GET, got ${JSON.stringify(allow)}`);
      assert.ok(!allow.includes(method), `${method}: Allow does not list ${method}`);
      const body = JSON.parse(text) as { detail: unknown };
      assert.deepEqual(Object.keys(body), ['detail']);
      assert.equal(typeof body.detail, 'string');
    }
  });

  test('a refused request changes nothing', async () => {
    const before = await getStatus(d.url);
    await raw(STATUS, { method: 'DELETE' });
    const after = await getStatus(d.url);
    assert.deepEqual(
      after.sessions.map((x) => x.session_key),
      before.sessions.map((x) => x.session_key),
    );
  });
});
