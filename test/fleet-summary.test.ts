/**
 * GET /api/v1/agent/status/summary on the fleet: serve's poller resource over the fleet's agent view, against a real
 * mosquitto, simulated nodes (scripts/bench/sim-nodes.ts) and a real aggregator.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StatusEvent } from '../protocol/events.ts';
import { AgentStatusResponse } from '../protocol/snapshot.ts';
import { SimNode } from '../scripts/bench/sim-nodes.ts';
import { MOSQUITTO_SKIP, startBroker, type TestBroker } from './helpers/broker.ts';
import { waitFor } from './helpers/daemon.ts';
import { startFleet, type TestFleet } from './helpers/fleet.ts';
import { FORBIDDEN_BODY, request } from './helpers/http.ts';

const SUMMARY = '/api/v1/agent/status/summary';
const KEY = 'fleet-summary-Z9x8C7v6B5n4';
const WITH_KEY = { headers: { 'X-Status-Key': KEY } };
const ev = (type: StatusEvent['type'], session_key: string, extra: Record<string, unknown> = {}) => ({ type, session_key, ...extra }) as StatusEvent;

/** What the summary must say, computed from the fleet's agent view as a client of it would. */
async function summaryOfAgentView(url: string): Promise<unknown> {
  const res = await request(`${url}/api/v1/agent/status`, WITH_KEY);
  const view = AgentStatusResponse.parse(JSON.parse(res.body));
  const sessions = { thinking: 0, tool_running: 0, streaming: 0, waiting_for_user: 0, error: 0 };
  for (const s of view.sessions) sessions[s.state]++;
  return { state: view.global.state, active_sessions: view.global.active_sessions, max_concurrent: view.global.max_concurrent, sessions };
}

describe('the fleet summary', { skip: MOSQUITTO_SKIP }, () => {
  let broker: TestBroker;
  let fleet: TestFleet;
  const nodes: SimNode[] = [];

  before(async () => {
    broker = await startBroker();
    for (const id of ['north', 'south']) nodes.push(await SimNode.connect(broker.url, id, { maxConcurrent: 3 }));
    await nodes[0]!.apply([ev('agent_start', 'cli:n1'), ev('tool_start', 'cli:n1', { name: 'Bash' }), ev('agent_start', 'telegram:7')]);
    await nodes[1]!.apply([ev('agent_start', 'cli:s1'), ev('ask_user_question', 'cli:s1')]);
    fleet = await startFleet(broker.url, [], { POCKETPAW_STATUS_API_KEY: KEY });
  });

  after(async () => {
    await fleet?.stop();
    for (const node of nodes) node.client.end(true);
    await broker?.stop();
  });

  test("serve's shape over the agent view: global state, counts per state, capacity summed, with an ETag", async () => {
    const res = (await waitFor(async () => {
      const r = await request(`${fleet.url}${SUMMARY}`, WITH_KEY);
      return r.status === 200 && (JSON.parse(r.body) as { active_sessions: number }).active_sessions === 3 ? r : null;
    }, { what: 'the fleet summary with three sessions', timeoutMs: 5000 }))!;
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), {
      state: 'active',
      active_sessions: 3,
      max_concurrent: 6,
      sessions: { thinking: 1, tool_running: 1, streaming: 0, waiting_for_user: 1, error: 0 },
    });
    assert.deepEqual(JSON.parse(res.body), await summaryOfAgentView(fleet.url));
    assert.ok(res.body.length < 255, `${res.body.length} characters: a Home Assistant state holds 255`);
    assert.match(res.headers.etag ?? '', /^"[^"]+"$/);
  });

  test("serve's key rules and ETag rules: 403 without the key, 304 for the current tag, 405 for other methods", async () => {
    const denied = await request(`${fleet.url}${SUMMARY}`);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, FORBIDDEN_BODY);
    const first = await request(`${fleet.url}${SUMMARY}`, WITH_KEY);
    const etag = first.headers.etag!;
    for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const notModified = await request(`${fleet.url}${SUMMARY}`, { headers: { ...WITH_KEY.headers, 'If-None-Match': tag } });
      assert.equal(notModified.status, 304, tag);
      assert.equal(notModified.body, '');
      assert.equal(notModified.headers.etag, etag);
    }
    assert.equal((await request(`${fleet.url}${SUMMARY}`, { headers: { ...WITH_KEY.headers, 'If-None-Match': '"stale"' } })).status, 200);
    assert.equal((await request(`${fleet.url}${SUMMARY}`, { method: 'POST', ...WITH_KEY })).status, 405);
  });

  test('a change on a node changes the body and the ETag; an offline node counts its sessions as error', async () => {
    const before = await request(`${fleet.url}${SUMMARY}`, WITH_KEY);
    await nodes[0]!.apply([ev('tool_result', 'cli:n1', { status: 'ok' })]);
    const changed = (await waitFor(async () => {
      const r = await request(`${fleet.url}${SUMMARY}`, { headers: { ...WITH_KEY.headers, 'If-None-Match': before.headers.etag! } });
      return r.status === 200 ? r : null;
    }, { what: 'the summary to change', timeoutMs: 5000 }))!;
    assert.notEqual(changed.headers.etag, before.headers.etag);
    // The tool ended: cli:n1 left tool_running (for streaming, as the daemon's fold has it).
    assert.deepEqual(JSON.parse(changed.body).sessions, { thinking: 1, tool_running: 0, streaming: 1, waiting_for_user: 1, error: 0 });
    assert.deepEqual(JSON.parse(changed.body), await summaryOfAgentView(fleet.url));

    nodes[1]!.kill();
    const offline = await waitFor(async () => {
      const body = JSON.parse((await request(`${fleet.url}${SUMMARY}`, WITH_KEY)).body) as { sessions: { error: number } };
      return body.sessions.error === 1 ? body : null;
    }, { what: "south's session shown as error", timeoutMs: 15_000 });
    assert.deepEqual(offline, {
      state: 'degraded',
      active_sessions: 2,
      max_concurrent: 3,
      sessions: { thinking: 1, tool_running: 0, streaming: 1, waiting_for_user: 0, error: 1 },
    });
    assert.deepEqual(offline, await summaryOfAgentView(fleet.url));
  });
});
