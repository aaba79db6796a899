/**
 * The fleet against three REAL daemons (`serve --mqtt-url`, different node ids) through a real mosquitto, and one
 * aggregator: the fleet snapshot after a script of events on each; SIGKILL one daemon; restart the aggregator; a
 * garbage publisher. Waits poll with generous bounds, except the issue's own 2 s bounds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import type { FleetStatusResponse } from '../protocol/fleet.ts';
import { MOSQUITTO_SKIP, startBroker, type TestBroker } from './helpers/broker.ts';
import { getStatus, sendOnce, startDaemon, waitFor, type StatusBody, type TestDaemon } from './helpers/daemon.ts';
import { getFleet, startFleet, timelessFleet, waitForFleet, type TestFleet } from './helpers/fleet.ts';

const IDS = ['north', 'south', 'west'] as const;

function timelessNode(global: StatusBody['global'] | null, sessions: StatusBody['sessions']): unknown {
  return { global: global && { ...global, uptime_seconds: 0 }, sessions: sessions.map((s) => ({ ...s, duration_seconds: 0 })) };
}

describe('fleet of real daemons', { skip: MOSQUITTO_SKIP }, () => {
  let broker: TestBroker;
  let fleet: TestFleet;
  const daemons = new Map<string, TestDaemon>();

  /** Every node's part of the fleet equals what its own daemon serves (timers aside). */
  async function matchesDaemons(f: FleetStatusResponse, ids: readonly string[]): Promise<boolean> {
    for (const id of ids) {
      const own = await getStatus(daemons.get(id)!.url);
      const part = f.nodes.find((n) => n.node_id === id);
      if (!part || JSON.stringify(timelessNode(part.global, part.sessions)) !== JSON.stringify(timelessNode(own.global, own.sessions))) return false;
    }
    return true;
  }

  before(async () => {
    broker = await startBroker();
    for (const id of IDS) {
      daemons.set(id, await startDaemon({ args: ['--mqtt-url', broker.url, '--mqtt-node-id', id, '--no-ha-discovery', '--error-ttl', '600'] }));
    }
    fleet = await startFleet(broker.url);
  });

  after(async () => {
    await fleet?.stop();
    for (const d of daemons.values()) await d.stop('SIGKILL');
    await broker?.stop();
  });

  test('after a script of events on each daemon, each node in the fleet reads as its own daemon serves it', async () => {
    await sendOnce(daemons.get('north')!.socket, { type: 'agent_start', session_key: 'cli:n1', title: 'Refactor' }, { type: 'tool_start', session_key: 'cli:n1', name: 'Bash' }, { type: 'agent_start', session_key: 'telegram:77' }, { type: 'token_usage', session_key: 'telegram:77', input: 12, output: 3 });
    await sendOnce(daemons.get('south')!.socket, { type: 'agent_start', session_key: 'cli:s1' }, { type: 'error', session_key: 'cli:s1', message: 'rate limited' });
    await sendOnce(daemons.get('west')!.socket, { type: 'agent_start', session_key: 'cli:w1' }, { type: 'agent_end', session_key: 'cli:w1' });
    const body = (await waitFor(async () => {
      const f = await getFleet(fleet.url);
      return f.nodes.length === 3 && (await matchesDaemons(f, IDS)) ? f : null;
    }, { what: 'the fleet to match every daemon', timeoutMs: 10_000 })) as FleetStatusResponse;
    assert.deepEqual(body.nodes.map((n) => [n.node_id, n.online, n.sessions.length]), [['north', true, 2], ['south', true, 1], ['west', true, 0]]);
    assert.equal(body.global.state, 'degraded');
    assert.equal(body.global.active_sessions, 3);
    const agent = (await (await fetch(`${fleet.url}/api/v1/agent/status`)).json()) as StatusBody;
    assert.deepEqual(agent.sessions.map((s) => s.session_key), ['north/cli:n1', 'north/telegram:77', 'south/cli:s1']);
  });

  test('a garbage publisher on the same broker is dropped and counted; the fleet still matches every daemon', async () => {
    const garbage = await connectAsync(broker.url);
    try {
      await garbage.publishAsync('pocketpaw-status/north/status', '{"global":{"state":"idle"}}', { qos: 1 });
      await garbage.publishAsync('pocketpaw-status/north/sessions/cli%3An1', '[]', { qos: 1 });
      await waitFor(async () => (await (await fetch(`${fleet.url}/metrics`)).text()).includes('pocketpaw_status_fleet_messages_dropped_total{reason="invalid_payload"} 2'), { what: 'the drops counted' });
    } finally {
      await garbage.endAsync();
    }
    assert.ok(await matchesDaemons(await getFleet(fleet.url), IDS), 'nothing corrupted');
  });

  test('SIGKILL one daemon: offline within 2 s of the broker publishing its will, sessions error / "node offline"', async () => {
    const watcher = await connectAsync(broker.url);
    try {
      let willAt = 0;
      watcher.on('message', (topic, payload) => {
        if (topic === 'pocketpaw-status/north/availability' && payload.toString() === 'offline') willAt = Date.now();
      });
      await watcher.subscribeAsync('pocketpaw-status/north/availability');
      await daemons.get('north')!.stop('SIGKILL');
      daemons.delete('north');
      await waitFor(() => willAt > 0, { what: "the broker publishing north's last will", timeoutMs: 60_000 });
      const body = await waitForFleet(fleet.url, (f) => f.nodes.find((n) => n.node_id === 'north')?.online === false, 'north offline', 2000);
      const north = body.nodes.find((n) => n.node_id === 'north')!;
      assert.deepEqual(north.sessions.map((s) => [s.session_key, s.state, s.error_message]), [
        ['cli:n1', 'error', 'node offline'],
        ['telegram:77', 'error', 'node offline'],
      ]);
      assert.equal(body.global.active_sessions, 1, 'only the online nodes count');
    } finally {
      await watcher.endAsync();
    }
  });

  test('the daemon started again (no sessions yet): its retained state replaces the "node offline" sessions', async () => {
    daemons.set('north', await startDaemon({ args: ['--mqtt-url', broker.url, '--mqtt-node-id', 'north', '--no-ha-discovery'] }));
    const body = await waitForFleet(fleet.url, (f) => {
      const north = f.nodes.find((n) => n.node_id === 'north');
      return north?.online === true && north.sessions.length === 0;
    }, 'north back, empty', 10_000);
    assert.equal(body.nodes.find((n) => n.node_id === 'north')!.global!.state, 'idle');
    assert.ok(await matchesDaemons(body, IDS));
  });

  test('a restarted aggregator shows the same fleet from retained state within 2 s', async () => {
    const before = timelessFleet(await getFleet(fleet.url));
    await fleet.stop();
    fleet = await startFleet(broker.url);
    const after = await waitForFleet(fleet.url, (f) => JSON.stringify(timelessFleet(f)) === JSON.stringify(before), 'the same fleet', 2000).catch(() => getFleet(fleet.url));
    assert.deepEqual(timelessFleet(after), before);
  });
});
