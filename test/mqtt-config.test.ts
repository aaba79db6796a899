/**
 * The MQTT flags: defaults, their POCKETPAW_STATUS_* variables, the --no-ha-discovery form, and the refusals (exit 2
 * with one message naming the flag) for what cannot work: a password on the command line, a CA file without TLS.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseServeConfig, type ServeConfig } from '../daemon/config.ts';
import { defaultNodeId } from '../daemon/mqtt/settings.ts';
import { discoveryMessages, sessionKeyOf, sessionTopic, topics } from '../daemon/mqtt/topics.ts';
import { runCli, tempDir } from './helpers/daemon.ts';

function parse(argv: string[], env: NodeJS.ProcessEnv = {}): ServeConfig {
  const config = parseServeConfig(argv, env);
  assert.notEqual(config, 'help');
  return config as ServeConfig;
}

describe('MQTT flags', () => {
  test('defaults: off without --mqtt-url; node id from the hostname; 250 ms; discovery on under homeassistant', () => {
    const c = parse([]);
    assert.equal(c.mqttUrl, null);
    assert.equal(c.mqttNodeId, defaultNodeId());
    assert.match(c.mqttNodeId, /^[a-z0-9_-]+$/);
    assert.equal(c.mqttTopicPrefix, null, 'pocketpaw-status/<node-id>, resolved with the node id');
    assert.equal(c.mqttMinInterval, 250);
    assert.equal(c.haDiscovery, true);
    assert.equal(c.haDiscoveryPrefix, 'homeassistant');
  });

  test('the hostname reduced to [a-z0-9_-]', () => {
    assert.equal(defaultNodeId('My.Laptop.local'), 'my-laptop-local');
    assert.equal(defaultNodeId('büro PC'), 'b-ro-pc');
    assert.equal(defaultNodeId('...'), 'pocketpaw');
    assert.equal(defaultNodeId('desk_01'), 'desk_01');
  });

  test('every flag, and every variable', () => {
    const dir = tempDir();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'secret\n');
    const flags = parse([
      '--mqtt-url', 'mqtts://broker.lan:8883',
      '--mqtt-ca-file', ca,
      '--mqtt-username', 'paw',
      '--mqtt-password-file', pw,
      '--mqtt-node-id', 'Desk-1',
      '--mqtt-topic-prefix', 'home/desk/agents',
      '--mqtt-min-interval', '0',
      '--no-ha-discovery',
      '--ha-discovery-prefix', 'ha',
    ]);
    const env = parse([], {
      POCKETPAW_STATUS_MQTT_URL: 'mqtts://broker.lan:8883',
      POCKETPAW_STATUS_MQTT_CA_FILE: ca,
      POCKETPAW_STATUS_MQTT_USERNAME: 'paw',
      POCKETPAW_STATUS_MQTT_PASSWORD_FILE: pw,
      POCKETPAW_STATUS_MQTT_NODE_ID: 'Desk-1',
      POCKETPAW_STATUS_MQTT_TOPIC_PREFIX: 'home/desk/agents',
      POCKETPAW_STATUS_MQTT_MIN_INTERVAL: '0',
      POCKETPAW_STATUS_HA_DISCOVERY: '0',
      POCKETPAW_STATUS_HA_DISCOVERY_PREFIX: 'ha',
    });
    for (const c of [flags, env]) {
      assert.equal(c.mqttUrl?.href, 'mqtts://broker.lan:8883');
      assert.equal(c.mqttCaFile, ca);
      assert.equal(c.mqttUsername, 'paw');
      assert.equal(c.mqttPasswordFile, pw);
      assert.equal(c.mqttNodeId, 'Desk-1');
      assert.equal(c.mqttTopicPrefix, 'home/desk/agents');
      assert.equal(c.mqttMinInterval, 0);
      assert.equal(c.haDiscovery, false);
      assert.equal(c.haDiscoveryPrefix, 'ha');
    }
    assert.equal(parse(['--ha-discovery'], { POCKETPAW_STATUS_HA_DISCOVERY: '0' }).haDiscovery, true, 'the flag beats the variable');
    assert.equal(parse(['--no-ha-discovery'], { POCKETPAW_STATUS_HA_DISCOVERY: '1' }).haDiscovery, false);
  });

  test('refusals name the flag and say what to do', () => {
    const dir = tempDir();
    const notPem = join(dir, 'ca.txt');
    writeFileSync(notPem, 'hello');
    const cases: [string[], RegExp][] = [
      [['--mqtt-url', 'http://broker:1883'], /--mqtt-url .*mqtt:\/\/ or mqtts:\/\//],
      [['--mqtt-url', 'mqtt://paw:secret@broker:1883'], /--mqtt-url .*--mqtt-password-file/],
      [['--mqtt-url', 'broker:1883'], /--mqtt-url/],
      [['--mqtt-url', 'mqtt://broker:1883/topic'], /--mqtt-url .*only scheme, host and port/],
      [['--mqtt-url', 'mqtt://broker', '--mqtt-ca-file', join(dir, 'missing.pem')], /--mqtt-ca-file .*ENOENT/],
      [['--mqtt-url', 'mqtts://broker', '--mqtt-ca-file', notPem], /--mqtt-ca-file .*PEM/],
      [['--mqtt-url', 'mqtt://broker', '--mqtt-ca-file', notPem.replace('.txt', '.pem')], /--mqtt-ca-file/],
      [['--mqtt-password-file', join(dir, 'nope')], /--mqtt-password-file .*cannot read/],
      [['--mqtt-node-id', 'my.laptop'], /--mqtt-node-id .*letters, digits/],
      [['--mqtt-topic-prefix', 'agents/#'], /--mqtt-topic-prefix .*\+, #/],
      [['--mqtt-topic-prefix', '/agents/'], /--mqtt-topic-prefix .*starts nor ends with \//],
      [['--ha-discovery-prefix', '$SYS'], /--ha-discovery-prefix/],
      [['--mqtt-min-interval', '-5'], /--mqtt-min-interval/],
      [['--ha-discovery', '--no-ha-discovery'], /contradict/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parse(argv), (e: unknown) => e instanceof ConfigError && message.test(e.message), argv.join(' '));
    }
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    assert.throws(() => parse(['--mqtt-url', 'mqtt://broker', '--mqtt-ca-file', ca]), /--mqtt-ca-file is for TLS: use an mqtts:\/\//);
    const pw = join(dir, 'pw');
    writeFileSync(pw, 'x');
    assert.throws(() => parse(['--mqtt-url', 'mqtt://broker', '--mqtt-password-file', pw]), /needs --mqtt-username/);
    writeFileSync(join(dir, 'empty'), '\n');
    assert.throws(() => parse(['--mqtt-password-file', join(dir, 'empty')]), /is empty/);
  });

  test('serve exits 2 on them; an unreadable systemd credential mqtt-password too; the password is never echoed', async () => {
    const url = await runCli(['serve', '--mqtt-url', 'mqtt://paw:hunter2@localhost']);
    assert.equal(url.code, 2);
    assert.match(url.stderr, /--mqtt-url/);
    assert.doesNotMatch(url.stderr, /hunter2/);
    const creds = tempDir();
    writeFileSync(join(creds, 'mqtt-password'), 'pw\n');
    const noUser = await runCli(['serve', '--port', '0', '--socket', join(creds, 's.sock'), '--mqtt-url', 'mqtt://127.0.0.1:9'], { env: { CREDENTIALS_DIRECTORY: creds } });
    assert.equal(noUser.code, 2, noUser.stderr);
    assert.match(noUser.stderr, /systemd credential .*mqtt-password.* no --mqtt-username/);
    const help = await runCli(['serve', '--help']);
    assert.match(help.stdout, /--ha-discovery .*--no-ha-discovery turns it off/);
  });
});

describe('reconnection backoff', () => {
  test('1 s doubling, capped at 30 s, jitter within +-20% and never past the cap', async () => {
    const { reconnectDelay } = await import('../daemon/mqtt/output.ts');
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50, 5000].map((a) => reconnectDelay(a, 0.5)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    assert.equal(reconnectDelay(0, 0), 800);
    assert.ok(reconnectDelay(0, 0.999) < 1200);
    assert.equal(reconnectDelay(10, 0.999), 30000);
    assert.equal(reconnectDelay(4, 0.999) <= 30000, true);
  });
});

describe('topics', () => {
  test('a session key is one topic level, reversibly: / + # % and unicode are escaped', () => {
    const t = topics('pocketpaw-status/n');
    for (const key of ['websocket:abc', 'discord:a/b', 'x:+#', 'tg:100%', 'slack:ünï cödé', 'no-colon']) {
      const topic = sessionTopic(t, key);
      const level = topic.slice('pocketpaw-status/n/sessions/'.length);
      assert.doesNotMatch(level, /[/+#\u0000]/, topic);
      assert.equal(sessionKeyOf(t, topic), key);
    }
    assert.equal(sessionKeyOf(t, 'pocketpaw-status/n/state'), null);
    assert.equal(sessionKeyOf(t, 'pocketpaw-status/n/sessions/%E0%A4%A'), null, 'undecodable');
  });

  test('discovery: unique ids and topics depend on the node id only (stable across restarts)', () => {
    const a = discoveryMessages('homeassistant', 'desk', topics('x/y'));
    const b = discoveryMessages('homeassistant', 'desk', topics('x/y'));
    assert.deepEqual(a, b);
    const c = discoveryMessages('homeassistant', 'other', topics('x/y'));
    const ids = (ms: typeof a) => ms.map((m) => (JSON.parse(m.payload) as { unique_id: string }).unique_id);
    assert.equal(new Set([...ids(a), ...ids(c)]).size, 10, 'two nodes never share an id');
  });
});
