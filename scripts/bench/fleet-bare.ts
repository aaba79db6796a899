/**
 * The fleet benchmark's baseline: a bare MQTT.js subscriber to the same topics as the aggregator that only
 * `JSON.parse`s each payload (the least any consumer of the nodes' messages does). Its own process, so that its CPU
 * and memory can be read from /proc like the aggregator's.
 *
 * Usage: node --import tsx scripts/bench/fleet-bare.ts URL BASE EXPECTED
 *   prints `{"ready":true}` before connecting, `{"caught_up_ms":N,"messages":M}` once EXPECTED messages arrived.
 */
import { connect } from 'mqtt';
import { performance } from 'node:perf_hooks';
import { SUBSCRIPTION_QOS, fleetSubscriptions } from '../../daemon/fleet/decode.ts';

const [url, base, expectedRaw] = process.argv.slice(2) as [string, string, string];
const expected = Number(expectedRaw);
let messages = 0;
let parsed = 0;
process.stdout.write('{"ready":true}\n');
const started = performance.now();
const client = connect(url, { clean: true, reconnectPeriod: 1000 });
client.on('connect', () => client.subscribe(fleetSubscriptions(base), { qos: SUBSCRIPTION_QOS }));
client.on('message', (topic, payload) => {
  messages++;
  // Availability is a plain word; every other topic carries JSON (an empty payload clears a retained topic).
  if (payload.length > 0 && !topic.endsWith('/availability')) {
    JSON.parse(payload.toString('utf8'));
    parsed++;
  }
  if (messages === expected) process.stdout.write(`${JSON.stringify({ caught_up_ms: performance.now() - started, messages, parsed })}\n`);
});
process.on('SIGTERM', () => {
  client.end(true);
  process.exit(0);
});
