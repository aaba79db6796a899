/**
 * MQTT benchmark: from an event written to the ingest socket to its message at an MQTT subscriber on the same broker
 * (mosquitto on loopback), p50 and p99, for the daemon's `status` topic.
 *
 * Baseline, in the same run and on the same broker: a bare MQTT.js program (mqtt-baseline.ts) that reads the same
 * lines from a Unix socket and publishes each as it is. Both run as their own process under tsx, as `npm start` runs
 * the daemon; the subscriber and the producer live in this process, so one clock times both ends. Round trips are
 * sequential (the next event goes once the last arrived). Both programs start and warm up once; then each run times
 * `samples` round trips through the daemon, then as many through the baseline, `repetitions` times (repeat.ts): the
 * goal is decided on the median of the per-run p99 ratios. The daemon runs with --mqtt-min-interval 0, so that every
 * event is a leading edge (the path the first change after a quiet spell takes under any interval).
 *
 * Each measurement opens its own producer connection: the daemon closes a producer that has sent nothing for
 * --producer-idle-timeout, and its connection sits idle while the baseline is measured.
 *
 * Without mosquitto the benchmark reports nothing and says why on stderr.
 *
 * Run: node --import tsx scripts/bench/mqtt.ts [--samples N] [--warmup W] [--repetitions 3] [--quick] [--json]
 *   --quick: 300 samples per run and 50 warm-up round trips, the sizes `npm run bench -- --quick` uses
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { startBroker } from '../../test/helpers/broker.ts';
import { findTool } from '../../test/helpers/tools.ts';
import { plain, printFigures, type Figure } from './figure.ts';
import { readyUrl } from './proc.ts';
import { repeatPairs } from './repeat.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SESSION = 'bench:mqtt';
const DAEMON_TOPIC = 'pocketpaw-status/bench/status';
const BASELINE_TOPIC = 'bench-baseline/status';

interface Target {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly socket: string;
  readonly topic: string;
}

async function startTarget(name: 'daemon' | 'baseline', brokerUrl: string, dir: string): Promise<Target> {
  const socket = join(dir, `${name}.sock`);
  const args =
    name === 'daemon'
      ? ['--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'serve', '--port', '0', '--socket', socket, '--state-dir', 'none', '--mqtt-url', brokerUrl, '--mqtt-node-id', 'bench', '--mqtt-min-interval', '0', '--no-ha-discovery']
      : ['--import', 'tsx', join(ROOT, 'scripts/bench/mqtt-baseline.ts'), socket, brokerUrl, BASELINE_TOPIC];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POCKETPAW_STATUS_')) env[k] = v;
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (name === 'daemon') await readyUrl(proc, 'the daemon');
  else {
    proc.stderr!.resume();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the baseline publisher did not start within 20 s')), 20_000);
      proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
        if (d.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }
  return { name, proc, socket, topic: name === 'daemon' ? DAEMON_TOPIC : BASELINE_TOPIC };
}

async function stopTarget(t: Target): Promise<void> {
  if (t.proc.exitCode !== null || t.proc.signalCode !== null) return;
  const exited = once(t.proc, 'exit');
  t.proc.kill('SIGTERM');
  await exited;
}

/** Resolves with the arrival time of the first message on `topic` whose payload contains `marker`. */
class Arrivals {
  private waiting: { topic: string; marker: string; resolve: (at: number) => void } | null = null;

  constructor(client: MqttClient) {
    client.on('message', (topic, payload) => {
      const at = performance.now();
      const w = this.waiting;
      if (w && topic === w.topic && payload.includes(w.marker)) {
        this.waiting = null;
        w.resolve(at);
      }
    });
  }

  next(topic: string, marker: string, timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message with ${marker} on ${topic} within ${timeoutMs / 1000} s`)), timeoutMs);
      this.waiting = {
        topic,
        marker,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
    });
  }
}

let seq = 0;

/** One round trip: an event whose tool name is new, until the topic carries it. */
async function roundTrip(t: Target, producer: net.Socket, arrivals: Arrivals): Promise<number> {
  const marker = `"tool-${++seq}"`;
  const line = `${JSON.stringify({ type: 'tool_start', session_key: SESSION, name: `tool-${seq}` })}\n`;
  const arrived = arrivals.next(t.topic, marker);
  const sent = performance.now();
  producer.write(line);
  return (await arrived) - sent;
}

/** `count` sequential round trips through `t` on a connection of their own; their times in ms, sorted. */
async function roundTrips(t: Target, arrivals: Arrivals, count: number, first: readonly string[] = []): Promise<number[]> {
  const producer = net.connect(t.socket);
  await once(producer, 'connect');
  try {
    for (const line of first) producer.write(line);
    const times: number[] = [];
    for (let i = 0; i < count; i++) times.push(await roundTrip(t, producer, arrivals));
    return times.sort((a, b) => a - b);
  } finally {
    producer.destroy();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface MqttOptions {
  /** Round trips per side in each run; default 1000. */
  readonly samples?: number;
  /** Round trips per side before the first run, not counted; default 100. */
  readonly warmup?: number;
  /** How many times the pair (daemon, bare MQTT.js publisher) is measured, alternating (see repeat.ts); default 3. */
  readonly repetitions?: number;
}

export async function benchMqtt(options: MqttOptions = {}): Promise<Figure[]> {
  const samples = options.samples ?? 1000;
  const warmup = options.warmup ?? 100;
  const repetitions = options.repetitions ?? 3;
  if (findTool('mosquitto') === null && findTool('/usr/sbin/mosquitto') === null) {
    process.stderr.write('bench: mqtt skipped: needs mosquitto (apt-get install mosquitto)\n');
    return [];
  }
  const dir = mkdtempSync(join(tmpdir(), 'pps-bench-mqtt-'));
  const broker = await startBroker();
  const subscriber = connect(broker.url, { reconnectPeriod: 0 });
  const targets: Target[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      subscriber.once('connect', () => resolve());
      subscriber.once('error', reject);
    });
    const arrivals = new Arrivals(subscriber);
    await subscriber.subscribeAsync([DAEMON_TOPIC, BASELINE_TOPIC], { qos: 1 });
    for (const name of ['daemon', 'baseline'] as const) targets.push(await startTarget(name, broker.url, dir));
    const [daemon, baseline] = targets as [Target, Target];
    const start = [`${JSON.stringify({ type: 'agent_start', session_key: SESSION })}\n`];
    await roundTrips(daemon, arrivals, warmup, start);
    await roundTrips(baseline, arrivals, warmup, start);
    const measure = (t: Target) => async () => {
      const times = await roundTrips(t, arrivals, samples);
      return { p50: percentile(times, 50), p99: percentile(times, 99) };
    };
    const figures = await repeatPairs({
      name: 'mqtt',
      repetitions,
      value: measure(daemon),
      baseline: measure(baseline),
      figures: [
        { name: 'MQTT p99 latency, event to subscriber', unit: 'ms', value: 'p99', baseline: 'p99', goal: '<= 1.5' },
        { name: 'MQTT p50 latency, event to subscriber', unit: 'ms', value: 'p50', baseline: 'p50', goal: null },
      ],
    });
    return [...figures, plain('MQTT: round trips per side in each run (after warm-up)', samples, 'round trips')];
  } finally {
    for (const t of targets) await stopTarget(t);
    await subscriber.endAsync(true);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string' },
      warmup: { type: 'string' },
      repetitions: { type: 'string', default: '3' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const count = (flag: string, raw: string | undefined, fallback: number, least: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= least) return n;
    process.stderr.write(`--${flag}: expected a whole number of at least ${least}, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  };
  const quick = values.quick ?? false;
  const options: MqttOptions = {
    samples: count('samples', values.samples, quick ? 300 : 1000, 10),
    warmup: count('warmup', values.warmup, quick ? 50 : 100, 1),
    repetitions: count('repetitions', values.repetitions, 3, 1),
  };
  printFigures(await benchMqtt(options), values.json ?? false);
}
