/**
 * The MQTT benchmark's baseline: the least a program needs to do to put an event from a Unix socket onto a broker. It
 * reads lines and publishes each one as it is (QoS 1, retained, like the daemon's status topic) with MQTT.js.
 *
 * Run by scripts/bench/mqtt.ts: node --import tsx scripts/bench/mqtt-baseline.ts SOCKET BROKER_URL TOPIC
 * Prints "ready" on stdout once connected and listening.
 */
import net from 'node:net';
import { connect } from 'mqtt';

const [socket, url, topic] = process.argv.slice(2);
if (!socket || !url || !topic) throw new Error('usage: mqtt-baseline.ts SOCKET BROKER_URL TOPIC');
const client = connect(url, { reconnectPeriod: 0 });
await new Promise<void>((resolve, reject) => {
  client.once('connect', () => resolve());
  client.once('error', reject);
});
const server = net.createServer((conn) => {
  let buffered = '';
  conn.setEncoding('utf8');
  conn.on('data', (chunk: string) => {
    const lines = (buffered + chunk).split('\n');
    buffered = lines.pop()!;
    for (const line of lines) client.publish(topic, line, { qos: 1, retain: true });
  });
});
server.listen(socket, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  client.end(true, () => process.exit(0));
});
