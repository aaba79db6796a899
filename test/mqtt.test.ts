/**
 * The MQTT output against a real broker (mosquitto, test/helpers/broker.ts) and the real daemon, read by an MQTT.js
 * subscriber: the retained topics and Home Assistant discovery after a script of events, transitions, clearing ended
 * sessions, coalescing, the last will, clean shutdown, broker restarts, wrong credentials, and the daemon without MQTT.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MOSQUITTO_SKIP, startBroker, type TestBroker } from './helpers/broker.ts';
import { getStatus, Producer, sendOnce, startDaemon, tempDir, waitFor, waitForStatus, type StatusBody, type TestDaemon } from './helpers/daemon.ts';
import { metric } from './helpers/metrics.ts';
import { retained, Subscriber } from './helpers/mqtt-subscriber.ts';
import { skipWithout } from './helpers/tools.ts';
import { MqttAvailability, MqttSummary, sessionKeyFromTopic, TransitionMessage } from '../protocol/mqtt.ts';
import { AgentStatusResponse, GlobalState, SessionStatus } from '../protocol/snapshot.ts';

const skip = MOSQUITTO_SKIP;
const P = 'pocketpaw-status/testnode';
const NODE_ARGS = ['--mqtt-node-id', 'testnode'];

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
});

async function broker(options: Parameters<typeof startBroker>[0] = {}): Promise<TestBroker> {
  const b = await startBroker(options);
  cleanups.push(() => b.stop());
  return b;
}

async function daemon(b: TestBroker | string, args: string[] = [], env: Record<string, string> = {}): Promise<TestDaemon> {
  const url = typeof b === 'string' ? b : b.url;
  const d = await startDaemon({ args: ['--mqtt-url', url, ...NODE_ARGS, ...args], env });
  cleanups.push(() => d.stop('SIGKILL'));
  return d;
}

async function subscriber(b: TestBroker, filters: string[] = ['#']): Promise<Subscriber> {
  const s = await Subscriber.open(b.url, filters);
  cleanups.push(() => s.close());
  return s;
}

/** The snapshot without the fields that change every second (frozen in MQTT, moving in REST). */
function untimed(body: StatusBody): unknown {
  return { ...body, global: { ...body.global, uptime_seconds: 0 }, sessions: body.sessions.map((s) => ({ ...s, duration_seconds: 0 })) };
}

const start = (key: string, title?: string) => ({ type: 'agent_start', session_key: key, ...(title ? { title } : {}) });

describe('MQTT output', { skip }, () => {
  test('after a script of events: retained availability, state, summary, status, sessions and discovery; transitions as SSE has them', async () => {
    const b = await broker();
    const live = await subscriber(b);
    const d = await daemon(b);
    await live.waitFor(`${P}/availability`, (p) => p === 'online', 'online');
    // Session keys with `/`, `+` and `#` would be topic levels and wildcards: the topic level is encodeURIComponent(key).
    const keyA = 'websocket:a/b+c#d';
    const keyB = 'telegram:42';
    await sendOnce(
      d.socket,
      start(keyA, 'Fix the login'),
      { type: 'tool_start', session_key: keyA, name: 'Bash' },
      { type: 'token_usage', session_key: keyA, input: 1200, output: 340 },
      start(keyB),
      { type: 'token_usage', session_key: keyB, input: 5, output: 7 },
      { type: 'ask_user_question', session_key: keyB },
    );
    const rest = await waitForStatus(d.url, (s) => s.sessions.length === 2 && s.sessions[1]!.state === 'waiting_for_user');
    await live.waitFor(`${P}/summary`, (p) => (JSON.parse(p) as { waiting_for_user: number }).waiting_for_user === 1, 'the summary with one waiting');
    await live.waitFor(`${P}/status`, (p) => (JSON.parse(p) as StatusBody).sessions.length === 2 && p.includes('waiting_for_user'), 'the final status');

    const r = await retained(b.url, ['#']);
    assert.equal(r.get(`${P}/availability`), 'online');
    assert.equal(r.get(`${P}/state`), 'active');
    assert.deepEqual(JSON.parse(r.get(`${P}/summary`)!), {
      state: 'active',
      busy: true,
      active_sessions: 2,
      waiting_for_user: 1,
      tokens: 1200 + 340 + 5 + 7,
      tokens_input: 1205,
      tokens_output: 347,
    });
    const status = JSON.parse(r.get(`${P}/status`)!) as StatusBody;
    assert.deepEqual(untimed(status), untimed(rest), 'the status topic is the REST snapshot, timing fields aside');
    assert.match(r.get(`${P}/status`)!, /"duration_seconds":\d+\.\d[,}]/, 'rendered by the same renderer: one decimal always');
    const topicA = `${P}/sessions/${encodeURIComponent(keyA)}`;
    assert.equal(topicA, `${P}/sessions/websocket%3Aa%2Fb%2Bc%23d`);
    assert.deepEqual(JSON.parse(r.get(topicA)!), { ...rest.sessions[0], duration_seconds: (JSON.parse(r.get(topicA)!) as { duration_seconds: number }).duration_seconds });
    assert.equal((JSON.parse(r.get(`${P}/sessions/${encodeURIComponent(keyB)}`)!) as { state: string }).state, 'waiting_for_user');
    assert.equal([...r.keys()].filter((t) => t.startsWith(`${P}/sessions/`)).length, 2);
    assert.equal(r.has(`${P}/transitions`), false, 'transitions are not retained');

    // Home Assistant discovery: one device, five entities, each with availability and a unique id from the node id.
    const discovery = [...r].filter(([t]) => t.startsWith('homeassistant/')).map(([t, p]) => [t, JSON.parse(p) as Record<string, unknown>] as const);
    assert.deepEqual(discovery.map(([t]) => t).sort(), [
      'homeassistant/binary_sensor/pocketpaw_status_testnode/agent_busy/config',
      'homeassistant/sensor/pocketpaw_status_testnode/active_sessions/config',
      'homeassistant/sensor/pocketpaw_status_testnode/agent_state/config',
      'homeassistant/sensor/pocketpaw_status_testnode/tokens/config',
      'homeassistant/sensor/pocketpaw_status_testnode/waiting_for_user/config',
    ]);
    const byName = new Map(discovery.map(([, c]) => [c.name as string, c]));
    assert.deepEqual([...byName.keys()].sort(), ['Active sessions', 'Agent busy', 'Agent state', 'Sessions waiting for you', 'Tokens this run']);
    for (const [, c] of discovery) {
      assert.equal(c.availability_topic, `${P}/availability`);
      assert.equal(c.payload_available, 'online');
      assert.equal(c.payload_not_available, 'offline');
      assert.deepEqual((c.device as { identifiers: string[] }).identifiers, ['pocketpaw_status_testnode']);
      assert.match(c.unique_id as string, /^pocketpaw_status_testnode_[a-z_]+$/);
    }
    assert.equal(new Set(discovery.map(([, c]) => c.unique_id)).size, 5, 'unique ids differ');
    const agentState = byName.get('Agent state')!;
    assert.equal(agentState.state_topic, `${P}/state`);
    assert.equal(agentState.device_class, 'enum');
    assert.deepEqual(agentState.options, ['idle', 'active', 'degraded']);
    const busy = byName.get('Agent busy')!;
    assert.deepEqual([busy.payload_on, busy.payload_off], ['ON', 'OFF']);
    // The templates read the summary: each sensor's value is a number (Home Assistant's states are at most 255 chars).
    const summary = JSON.parse(r.get(`${P}/summary`)!) as Record<string, unknown>;
    for (const [name, field] of [['Active sessions', 'active_sessions'], ['Sessions waiting for you', 'waiting_for_user'], ['Tokens this run', 'tokens']] as const) {
      const c = byName.get(name)!;
      assert.equal(c.state_topic, `${P}/summary`);
      assert.equal(c.value_template, `{{ value_json.${field} }}`);
      assert.equal(typeof summary[field], 'number');
    }
    assert.equal(busy.state_topic, `${P}/summary`);
    assert.equal(busy.value_template, "{{ 'ON' if value_json.busy else 'OFF' }}");

    // Every payload matches its schema in protocol/ (what a consumer, such as the fleet aggregator, validates with).
    AgentStatusResponse.parse(status);
    SessionStatus.parse(JSON.parse(r.get(topicA)!));
    MqttSummary.parse(JSON.parse(r.get(`${P}/summary`)!));
    MqttAvailability.parse(r.get(`${P}/availability`));
    GlobalState.parse(r.get(`${P}/state`));
    for (const m of live.on(`${P}/transitions`)) TransitionMessage.parse(JSON.parse(m.payload));
    assert.equal(sessionKeyFromTopic(P, topicA), keyA);

    // Transitions: every one, in order, with the SSE event's fields; never retained.
    const transitions = live.on(`${P}/transitions`).map((m) => JSON.parse(m.payload) as Record<string, unknown>);
    assert.deepEqual(
      transitions.map((t) => [t.session_key, t.from, t.to, t.tool_name]),
      [
        [keyA, null, 'thinking', null],
        [keyA, 'thinking', 'tool_running', 'Bash'],
        [keyB, null, 'thinking', null],
        [keyB, 'thinking', 'waiting_for_user', null],
      ],
    );
    for (const t of transitions) {
      assert.deepEqual(Object.keys(t), ['session_key', 'from', 'to', 'tool_name', 'error_message', 'at']);
      assert.ok(!Number.isNaN(Date.parse(t.at as string)) && (t.at as string).endsWith('Z'), 'at is an ISO time');
    }
    assert.ok(live.on(`${P}/transitions`).every((m) => !m.retain));

    // /metrics counts what the broker acknowledged; /readyz?verbose reports the connection.
    assert.ok((await metric(d.url, 'pocketpaw_status_mqtt_publishes_total', { topic: 'discovery' })) >= 5);
    assert.ok((await metric(d.url, 'pocketpaw_status_mqtt_publishes_total', { topic: 'transition' })) >= 4);
    assert.equal(await metric(d.url, 'pocketpaw_status_mqtt_connected'), 1);
    assert.match(await (await fetch(`${d.url}/readyz?verbose`)).text(), /^\[\+\]mqtt ok$/m);
  });

  test('a session that ends has its topic cleared (an empty retained message); degraded shows on state', async () => {
    const b = await broker();
    const live = await subscriber(b);
    const d = await daemon(b);
    const p = await Producer.connect(d.socket);
    p.send(start('websocket:gone'), start('websocket:stays'));
    const gone = `${P}/sessions/${encodeURIComponent('websocket:gone')}`;
    await live.waitFor(gone, (x) => x.includes('"thinking"'));
    p.send({ type: 'agent_end', session_key: 'websocket:gone' });
    await live.waitFor(gone, (x) => x === '', 'the cleared session topic');
    p.send({ type: 'error', session_key: 'websocket:stays', message: 'boom' });
    await live.waitFor(`${P}/state`, (x) => x === 'degraded');
    const r = await retained(b.url, [`${P}/#`]);
    assert.equal(r.has(gone), false, 'no retained message is left for the ended session');
    assert.ok(r.has(`${P}/sessions/${encodeURIComponent('websocket:stays')}`));
    assert.equal(r.get(`${P}/state`), 'degraded');
    assert.equal((JSON.parse(r.get(`${P}/summary`)!) as { busy: boolean }).busy, true, 'busy while degraded');
    await p.end();
  });

  test('coalescing: a burst of 100 changes gives far fewer status publishes, and the last one is the final state', async () => {
    const b = await broker();
    const live = await subscriber(b, [`${P}/status`, `${P}/sessions/#`]);
    const d = await daemon(b, ['--mqtt-min-interval', '400']);
    await live.waitFor(`${P}/status`, (x) => x.includes('"idle"'));
    const before = live.on(`${P}/status`).length;
    const p = await Producer.connect(d.socket);
    p.send(start('websocket:burst'));
    // One write per event, each awaited: 100 separate changes, not one socket read folded at once.
    for (let i = 0; i < 100; i++) {
      await new Promise<void>((resolve) => p.socket.write(`${JSON.stringify({ type: 'tool_start', session_key: 'websocket:burst', name: `tool-${i}` })}\n`, () => resolve()));
      await new Promise((r) => setTimeout(r, 2));
    }
    const final = await waitForStatus(d.url, (s) => s.sessions[0]?.tool_name === 'tool-99');
    const last = await live.waitFor(`${P}/status`, (x) => x.includes('"tool-99"'), 'the final status');
    assert.deepEqual(untimed(JSON.parse(last) as StatusBody), untimed(final));
    const sessionTopic = `${P}/sessions/${encodeURIComponent('websocket:burst')}`;
    await live.waitFor(sessionTopic, (x) => x.includes('"tool-99"'), 'the final session');
    await live.settle();
    const statusPublishes = live.on(`${P}/status`).length - before;
    assert.ok(statusPublishes < 50, `${statusPublishes} status publishes for 101 changes`);
    assert.ok(live.on(sessionTopic).length < 50, `${live.on(sessionTopic).length} session publishes for 101 changes`);
    assert.ok(live.last(`${P}/status`)!.includes('"tool-99"'), 'nothing older came after the final state');
    await p.end();
  });

  test('leading edge: a change after a quiet spell goes out at once, not after --mqtt-min-interval', async () => {
    const b = await broker();
    const live = await subscriber(b, [`${P}/state`]);
    // A minute: were the first change held for the interval, the wait below (10 s at most) would fail.
    const d = await daemon(b, ['--mqtt-min-interval', '60000']);
    await live.waitFor(`${P}/state`, (x) => x === 'idle');
    await sendOnce(d.socket, start('websocket:now'));
    await live.waitFor(`${P}/state`, (x) => x === 'active', 'active on the leading edge');
  });

  test('SIGKILL: the broker publishes the last will, retained offline; the next run clears the sessions it left behind', async () => {
    const b = await broker();
    const d = await daemon(b);
    const live = await subscriber(b, [`${P}/availability`, `${P}/sessions/#`]);
    await sendOnce(d.socket, start('websocket:orphan'));
    const orphan = `${P}/sessions/${encodeURIComponent('websocket:orphan')}`;
    await live.waitFor(orphan, (x) => x.includes('"thinking"'));
    await d.stop('SIGKILL');
    await live.waitFor(`${P}/availability`, (x) => x === 'offline', 'the will');
    assert.equal((await retained(b.url, [`${P}/availability`])).get(`${P}/availability`), 'offline', 'the will is retained');

    const next = await daemon(b);
    await live.waitFor(`${P}/availability`, (x) => x === 'online');
    await live.waitFor(orphan, (x) => x === '', 'the orphaned session topic cleared by the next run');
    assert.equal((await retained(b.url, [`${P}/sessions/#`])).size, 0);
    assert.equal((await getStatus(next.url)).sessions.length, 0);
  });

  test('clean shutdown publishes offline (retained) before disconnecting, with the last state before it', async () => {
    const b = await broker();
    const live = await subscriber(b, [`${P}/#`]);
    const d = await daemon(b, ['--mqtt-min-interval', '60000']);
    await live.waitFor(`${P}/availability`, (x) => x === 'online');
    const p = await Producer.connect(d.socket);
    p.send(start('websocket:last'));
    await live.waitFor(`${P}/state`, (x) => x === 'active');
    // Within the minute's interval: this change is held back until shutdown sends it.
    p.send({ type: 'tool_start', session_key: 'websocket:last', name: 'Final' });
    await waitForStatus(d.url, (s) => s.sessions[0]?.tool_name === 'Final');
    const stopped = await d.stop('SIGTERM');
    assert.equal(stopped.code, 0);
    await live.waitFor(`${P}/availability`, (x) => x === 'offline');
    const r = await retained(b.url, [`${P}/#`]);
    assert.equal(r.get(`${P}/availability`), 'offline');
    assert.match(r.get(`${P}/status`)!, /"tool_name":"Final"/, 'the state held back by the interval went out before offline');
    const order = live.messages.map((m) => m.topic);
    assert.ok(order.lastIndexOf(`${P}/status`) < order.lastIndexOf(`${P}/availability`), 'status before offline');
  });

  test('broker restart without persistence: the daemon reconnects and republishes everything', async () => {
    const b = await broker();
    const d = await daemon(b);
    const p = await Producer.connect(d.socket);
    p.send(start('websocket:survivor', 'still here'));
    await waitFor(async () => (await retained(b.url, [`${P}/sessions/#`])).size === 1, { what: 'the session topic' });
    await b.restart();
    assert.equal((await retained(b.url, ['#'])).size, 0, 'the restarted broker has nothing retained');
    // While it reconnects (backoff from 1 s), a change: the republish carries it.
    p.send({ type: 'stream_start', session_key: 'websocket:survivor' });
    await waitForStatus(d.url, (s) => s.sessions[0]?.state === 'streaming');
    const r = await waitFor(
      async () => {
        const now = await retained(b.url, ['#']);
        return now.get(`${P}/status`)?.includes('"streaming"') && now.size >= 10 ? now : null;
      },
      { timeoutMs: 20_000, what: 'the republish' },
    );
    assert.equal(r!.get(`${P}/availability`), 'online');
    assert.equal(r!.get(`${P}/state`), 'active');
    assert.ok(r!.get(`${P}/sessions/${encodeURIComponent('websocket:survivor')}`)!.includes('"streaming"'));
    assert.equal([...r!.keys()].filter((t) => t.startsWith('homeassistant/')).length, 5, 'discovery again');
    assert.ok((await metric(d.url, 'pocketpaw_status_mqtt_reconnects_total')) >= 1);
    const warnings = d.logs().filter((l) => l.level === 40 && l.msg.startsWith('MQTT'));
    assert.equal(warnings.length, 1, `one warning for the outage: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0]!.msg, /lost the connection/);
    await p.end();
  });

  test('a session that ends while the broker is away is cleared on reconnect (broker with persistence)', async () => {
    const b = await broker({ persistence: true });
    const d = await daemon(b);
    const p = await Producer.connect(d.socket);
    p.send(start('websocket:ends-meanwhile'), start('websocket:lives'));
    const ends = `${P}/sessions/${encodeURIComponent('websocket:ends-meanwhile')}`;
    await waitFor(async () => (await retained(b.url, [`${P}/sessions/#`])).size === 2, { what: 'both session topics' });
    await b.stop();
    p.send({ type: 'agent_end', session_key: 'websocket:ends-meanwhile' });
    await waitForStatus(d.url, (s) => s.sessions.length === 1);
    await b.restart();
    assert.ok((await retained(b.url, [`${P}/sessions/#`])).has(ends), 'the persisted broker still holds the ended session');
    await waitFor(async () => !(await retained(b.url, [`${P}/sessions/#`])).has(ends), { timeoutMs: 20_000, what: 'the ended session cleared' });
    assert.ok((await retained(b.url, [`${P}/sessions/#`])).has(`${P}/sessions/${encodeURIComponent('websocket:lives')}`));
    await p.end();
  });

  test('wrong credentials: the daemon stays up and serves; one warning that says what to check; /readyz stays 200', async () => {
    const b = await broker({ user: { name: 'paw', password: 'right-password' } });
    const dir = tempDir();
    const passwordFile = join(dir, 'mqtt-password');
    writeFileSync(passwordFile, 'wrong-password\n', { mode: 0o600 });
    const d = await daemon(b, ['--mqtt-username', 'paw', '--mqtt-password-file', passwordFile]);
    await sendOnce(d.socket, start('websocket:unaffected'));
    await waitForStatus(d.url, (s) => s.sessions.length === 1);
    // Nothing queues while the broker is away: transitions are counted as dropped, not kept.
    const p = await Producer.connect(d.socket);
    for (let i = 0; i < 50; i++) p.send({ type: 'tool_start', session_key: 'websocket:unaffected', name: `t${i}` });
    await waitForStatus(d.url, (s) => s.sessions[0]?.tool_name === 't49');
    await p.end();
    assert.ok((await metric(d.url, 'pocketpaw_status_mqtt_transitions_dropped_total', { reason: 'disconnected' })) >= 51);
    // Two refused attempts at least (the broker logs each), and still one warning.
    await waitFor(() => b.log.filter((l) => /not authori[sz]ed|disconnected/i.test(l)).length >= 2, { timeoutMs: 15_000, what: 'two refused attempts' });
    const warnings = d.logs().filter((l) => l.level === 40 && l.msg.startsWith('MQTT'));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0]!.msg, /--mqtt-username and --mqtt-password-file/);
    assert.doesNotMatch(d.stderr.join('\n'), /wrong-password/, 'the password is never logged');
    const ready = await fetch(`${d.url}/readyz?verbose`);
    assert.equal(ready.status, 200);
    assert.match(await ready.text(), /^\[-\]mqtt not connected \(optional: readiness does not depend on it\)$/m);
    assert.equal(await metric(d.url, 'pocketpaw_status_mqtt_connected'), 0);
    assert.equal((await retained(b.url, ['#'], { username: 'paw', password: 'right-password' })).size, 0, 'nothing was published');
  });

  test('the password from the systemd credential mqtt-password; the broker down at start is fine, the daemon connects when it comes', async () => {
    const b = await broker({ user: { name: 'paw', password: 's3cret pass' } });
    await b.stop();
    const creds = tempDir();
    writeFileSync(join(creds, 'mqtt-password'), 's3cret pass\n', { mode: 0o600 });
    const d = await daemon(b, ['--mqtt-username', 'paw'], { CREDENTIALS_DIRECTORY: creds });
    assert.equal((await getStatus(d.url)).global.state, 'idle', 'serving without the broker');
    await waitFor(() => d.logs().some((l) => /cannot connect/.test(l.msg)), { what: 'the warning' });
    await b.restart();
    await waitFor(async () => (await retained(b.url, [`${P}/availability`], { username: 'paw', password: 's3cret pass' })).get(`${P}/availability`) === 'online', {
      timeoutMs: 20_000,
      what: 'online after the broker came',
    });
    assert.ok(d.logs().some((l) => l.level === 30 && /MQTT: connected .* again/.test(l.msg)), 'says it recovered');
  });

  test('--no-ha-discovery publishes no discovery; --mqtt-topic-prefix and --ha-discovery-prefix move the topics', async () => {
    const b = await broker();
    const d1 = await daemon(b, ['--no-ha-discovery', '--mqtt-topic-prefix', 'desk/agents']);
    await waitFor(async () => (await retained(b.url, ['desk/agents/state'])).size === 1, { what: 'desk/agents/state' });
    assert.deepEqual([...(await retained(b.url, ['homeassistant/#']))], []);
    await d1.stop();
    const d2 = await startDaemon({ args: ['--mqtt-url', b.url], env: { POCKETPAW_STATUS_MQTT_NODE_ID: 'envnode', POCKETPAW_STATUS_HA_DISCOVERY_PREFIX: 'ha' } });
    cleanups.push(() => d2.stop());
    const r = await waitFor(async () => {
      const now = await retained(b.url, ['#']);
      return [...now.keys()].filter((t) => t.startsWith('ha/')).length === 5 ? now : null;
    });
    assert.equal(r!.get('pocketpaw-status/envnode/state'), 'idle');
    assert.ok(r!.has('ha/sensor/pocketpaw_status_envnode/agent_state/config'));
  });
});

/**
 * mosquitto with a TLS listener, its certificate signed by a throwaway CA made with openssl (the broker helper speaks
 * plain MQTT only). Returns the mqtts:// URL and the CA's PEM file.
 */
async function tlsBroker(): Promise<{ url: string; ca: string }> {
  const { execFileSync, spawn } = await import('node:child_process');
  const { freePort } = await import('./helpers/broker.ts');
  const dir = tempDir();
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=pocketpaw test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  const port = await freePort();
  const lines = [`listener ${port} 127.0.0.1`, `cafile ${f('ca.pem')}`, `certfile ${f('server.pem')}`, `keyfile ${f('server.key')}`, 'allow_anonymous true', 'persistence false', 'log_dest stderr'];
  if (process.getuid?.() === 0) lines.push('user root');
  writeFileSync(f('mosquitto.conf'), lines.join('\n') + '\n');
  const proc = spawn('mosquitto', ['-c', f('mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.resume();
  cleanups.push(async () => proc.kill('SIGTERM'));
  const net = await import('node:net');
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      }),
    { what: 'the TLS broker' },
  );
  return { url: `mqtts://127.0.0.1:${port}`, ca: f('ca.pem') };
}

describe('mqtts://', { skip: skip || skipWithout('openssl', 'openssl') }, () => {
  test('with --mqtt-ca-file the daemon verifies the broker and publishes; without it, one warning pointing at --mqtt-ca-file', async () => {
    const { url, ca } = await tlsBroker();
    const d = await daemon(url, ['--mqtt-ca-file', ca]);
    await waitFor(async () => (await retained(url, [`${P}/state`], { ca: readFileSync(ca) })).get(`${P}/state`) === 'idle', { what: 'state over TLS' });
    const untrusted = await daemon(url, ['--mqtt-node-id', 'untrusted']);
    await waitFor(() => untrusted.logs().some((l) => l.level === 40 && /cannot connect/.test(l.msg)), { what: 'the warning' });
    const warning = untrusted.logs().find((l) => l.level === 40 && /cannot connect/.test(l.msg))!;
    assert.match(warning.msg, /check --mqtt-ca-file/);
    assert.equal((await getStatus(untrusted.url)).global.state, 'idle', 'serving all the same');
    assert.equal(await metric(d.url, 'pocketpaw_status_mqtt_connected'), 1);
  });
});

describe('npm run demo -- --mqtt', { skip }, () => {
  test('starts a broker too, prints a mosquitto_sub command for it, and the daemon publishes there', async () => {
    const { spawn } = await import('node:child_process');
    const { cleanEnv, ROOT } = await import('./helpers/daemon.ts');
    const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo/demo.ts', '--mqtt', '--port', '0', '--pace', '0.05'], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(async () => proc.kill('SIGKILL'));
    let output = '';
    proc.stdout.setEncoding('utf8').on('data', (x: string) => (output += x));
    proc.stderr.setEncoding('utf8').on('data', (x: string) => (output += x));
    const match = await waitFor(() => /mosquitto_sub -h 127\.0\.0\.1 -p (\d+) -v -t 'pocketpaw-status\/demo\/#'/.exec(output), { timeoutMs: 30_000, what: `the command; output:\n${output}` });
    const url = `mqtt://127.0.0.1:${match![1]}`;
    await waitFor(async () => {
      const r = await retained(url, ['pocketpaw-status/demo/#']);
      return r.get('pocketpaw-status/demo/availability') === 'online' && r.get('pocketpaw-status/demo/state') === 'active';
    }, { timeoutMs: 20_000, what: 'the demo agent on the broker' });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    assert.equal(await exited, 0, output);
    assert.match(output, /Demo stopped\.\n$/);
  });
});

describe('the compiled build', { skip }, () => {
  test('dist/mqtt.js sits next to dist/cli.js, imports only Node built-ins, and is loaded by --mqtt-url under plain node', async () => {
    const { buildDist, MQTT_FILE } = await import('../scripts/build.ts');
    const { readFileSync } = await import('node:fs');
    const { builtinModules } = await import('node:module');
    const { spawn } = await import('node:child_process');
    const dir = tempDir();
    const bundle = (await buildDist(join(dir, 'dist'))).file;
    const cli = readFileSync(bundle, 'utf8');
    assert.ok(cli.includes(`import("./${MQTT_FILE}")`), 'cli.js imports the MQTT file dynamically');
    assert.doesNotMatch(cli, /node_modules\/mqtt\//, 'MQTT.js is not parsed at every start');
    const mqttSource = readFileSync(join(dir, 'dist', MQTT_FILE), 'utf8');
    const imports = [...mqttSource.matchAll(/^import .* from ["']([^"']+)["'];?$/gm), ...mqttSource.matchAll(/\b(?:__)?require\(["']([^"']+)["']\)/g)].map((m) => m[1]!);
    assert.deepEqual([...new Set(imports.filter((spec) => !builtinModules.includes(spec.replace(/^node:/, ''))))], []);

    const b = await broker();
    const proc = spawn(process.execPath, [bundle, 'serve', '--port', '0', '--socket', join(dir, 's.sock'), '--state-dir', 'none', '--mqtt-url', b.url, ...NODE_ARGS], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(async () => proc.kill('SIGKILL'));
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (x: string) => (stderr += x));
    await waitFor(async () => (await retained(b.url, [`${P}/availability`])).get(`${P}/availability`) === 'online', { timeoutMs: 20_000, what: `online from the bundle; stderr:\n${stderr}` });
    proc.kill('SIGTERM');
    await waitFor(async () => (await retained(b.url, [`${P}/availability`])).get(`${P}/availability`) === 'offline', { what: 'offline on SIGTERM' });
  });
});

describe('without --mqtt-url', () => {
  test('nothing of MQTT is loaded (and with it, MQTT.js is)', { skip }, async () => {
    const probe = join(tempDir(), 'probe.mts');
    // Prints the loaded CommonJS modules (MQTT.js is CommonJS) once the daemon is ready.
    writeFileSync(
      probe,
      `import { createRequire } from 'node:module';\nprocess.on('SIGUSR2', () => process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)) + '\\n'));\nawait import(${JSON.stringify(join(process.cwd(), 'daemon/cli.ts'))});\n`,
    );
    const { spawn } = await import('node:child_process');
    const loaded = async (args: string[]): Promise<string[]> => {
      const b = args.length > 0 ? await broker() : null;
      const proc = spawn(process.execPath, ['--import', 'tsx', probe, 'serve', '--port', '0', '--socket', join(tempDir(), 's.sock'), '--state-dir', 'none', ...(b ? ['--mqtt-url', b.url] : [])], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      cleanups.push(async () => proc.kill('SIGKILL'));
      let out = '';
      let err = '';
      proc.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
      proc.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
      await waitFor(() => err.includes('"msg":"ready'), { timeoutMs: 20_000, what: 'ready' });
      proc.kill('SIGUSR2');
      await waitFor(() => out.includes('\n'), { what: 'the module list' });
      proc.kill('SIGTERM');
      return JSON.parse(out.split('\n')[0]!) as string[];
    };
    const without = await loaded([]);
    assert.ok(without.length > 0, 'the probe sees CommonJS modules (pino is one)');
    assert.deepEqual(without.filter((m) => /node_modules[\\/]mqtt/.test(m)), []);
    const withIt = await loaded(['mqtt']);
    assert.ok(withIt.some((m) => /node_modules[\\/]mqtt[\\/]/.test(m)), 'the probe would see MQTT.js');
  });
});
