/**
 * GET /api/v1/agent/status/summary: the poller's resource, against the real daemon.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sendOnce, startDaemon, waitFor, waitForStatus, type TestDaemon } from './helpers/daemon.ts';
import { FORBIDDEN_BODY, request } from './helpers/http.ts';

const SUMMARY = '/api/v1/agent/status/summary';
const ZERO = { thinking: 0, tool_running: 0, streaming: 0, waiting_for_user: 0, error: 0 };

describe('summary', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--max-concurrent', '7'] });
  });
  after(() => d.stop());

  test('idle: the global state and a zero count per session state, small, with an ETag', async () => {
    const res = await request(`${d.url}${SUMMARY}`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), { state: 'idle', active_sessions: 0, max_concurrent: 7, sessions: ZERO });
    assert.ok(res.body.length < 255, `${res.body.length} characters: a Home Assistant state holds 255`);
    assert.match(res.headers.etag ?? '', /^"[^"]+"$/);
  });

  test('If-None-Match with the current ETag is 304 without a body; time passing changes nothing', async () => {
    const first = await request(`${d.url}${SUMMARY}`);
    const etag = first.headers.etag!;
    // Past a second boundary, uptime_seconds in the snapshot has moved; the summary has no timer, so it has not.
    const uptime = (await waitForStatus(d.url, () => true)).global.uptime_seconds;
    await waitForStatus(d.url, (s) => s.global.uptime_seconds > uptime, 'a second to pass');
    const again = await request(`${d.url}${SUMMARY}`);
    assert.equal(again.body, first.body);
    assert.equal(again.headers.etag, etag);
    for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const notModified = await request(`${d.url}${SUMMARY}`, { headers: { 'If-None-Match': tag } });
      assert.equal(notModified.status, 304, tag);
      assert.equal(notModified.body, '');
      assert.equal(notModified.headers.etag, etag);
    }
    assert.equal((await request(`${d.url}${SUMMARY}`, { headers: { 'If-None-Match': '"stale"' } })).status, 200);
  });

  test('counts per session state; the body and ETag change only when one of the values does', async () => {
    const before = await request(`${d.url}${SUMMARY}`);
    await sendOnce(
      d.socket,
      { type: 'agent_start', session_key: 'websocket:a' },
      { type: 'tool_start', session_key: 'websocket:a', name: 'bash' },
      { type: 'agent_start', session_key: 'discord:b' },
      { type: 'error', session_key: 'discord:b', message: 'Rate limit' },
    );
    await waitForStatus(d.url, (s) => s.sessions.length === 2 && s.sessions[1]!.state === 'error', 'two sessions');
    const changed = await request(`${d.url}${SUMMARY}`);
    assert.deepEqual(JSON.parse(changed.body), {
      state: 'degraded',
      active_sessions: 2,
      max_concurrent: 7,
      sessions: { ...ZERO, tool_running: 1, error: 1 },
    });
    assert.notEqual(changed.headers.etag, before.headers.etag);
    assert.equal((await request(`${d.url}${SUMMARY}`, { headers: { 'If-None-Match': before.headers.etag! } })).status, 200, 'the old tag is stale');

    // Token counts and titles are in the snapshot, not the summary: the summary's tag stays.
    await sendOnce(d.socket, { type: 'token_usage', session_key: 'websocket:a', input: 10, output: 5 }, { type: 'title', session_key: 'websocket:a', title: 'T' });
    await waitForStatus(d.url, (s) => s.sessions[0]!.title === 'T', 'the title');
    const same = await request(`${d.url}${SUMMARY}`, { headers: { 'If-None-Match': changed.headers.etag! } });
    assert.equal(same.status, 304);

    await sendOnce(d.socket, { type: 'agent_end', session_key: 'websocket:a' }, { type: 'agent_end', session_key: 'discord:b' });
    await waitFor(async () => JSON.parse((await request(`${d.url}${SUMMARY}`)).body).state === 'idle', { what: 'idle again' });
    assert.equal((await request(`${d.url}${SUMMARY}`)).headers.etag, before.headers.etag, 'the same values, the same tag');
  });

  test('other methods: 405 with Allow', async () => {
    const res = await request(`${d.url}${SUMMARY}`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
  });
});

test('summary: the same key rules as the snapshot', async () => {
  const d = await startDaemon({ env: { POCKETPAW_STATUS_API_KEY: 'summary-key-Z1x2C3v4B5n6' } });
  try {
    const refused = await request(`${d.url}${SUMMARY}`);
    assert.equal(refused.status, 403);
    assert.equal(refused.body, FORBIDDEN_BODY);
    const ok = await request(`${d.url}${SUMMARY}`, { headers: { 'X-Status-Key': 'summary-key-Z1x2C3v4B5n6' } });
    assert.equal(ok.status, 200);
    const withTag = await request(`${d.url}${SUMMARY}`, { headers: { 'If-None-Match': ok.headers.etag! } });
    assert.equal(withTag.status, 403, 'a tag without the key learns nothing');
    const keyed = await request(`${d.url}${SUMMARY}?key=summary-key-Z1x2C3v4B5n6`, { headers: { 'If-None-Match': ok.headers.etag! } });
    assert.equal(keyed.status, 304);
  } finally {
    await d.stop();
  }
});
