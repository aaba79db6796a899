/**
 * MQTT benchmark: from an event written to the ingest socket to its message at an MQTT subscriber on the same broker
 * (mosquitto on loopback), p50 and p99, for the daemon's `status` topic.
 *
 * Baseline, in the same run and on the same broker: a bare MQTT.js program (mqtt-baseline.ts) that reads the same
 * lines from a Unix socket and publishes each as it is. Both run as their own process under tsx, as `npm start` runs
 * the daemon; the subscriber and the producer live in this process, so one clock times both ends. Round trips are
 * sequential (the next event goes once the last arrived), in alternating blocks so that a load change on a shared
 * machine hits both alike. The daemon runs with --mqtt-min-interval 0, so that every event is a leading edge (the
 * path the first change after a quiet spell takes under any interval).
 *
 * Without mosquitto the benchmark reports nothing and says why on stderr.
 *
 * Run: node --import tsx scripts/bench/mqtt.ts [--json] [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { connect, type MqttClient } from 'mqtt';
import { startBroker } from '../../test/helpers/broker.ts';
import { findTool } from '../../test/helpers/tools.ts';
import { printFigures, type Figure } from './figure.ts';
import { ratioFigure } from './goals.ts';
import { readyUrl } from './proc.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SESSION = 'bench:mqtt';
const DAEMON_TOPIC = 'pocketpaw-status/bench/status';
const BASELINE_TOPIC = 'bench-baseline/status';

interface Target {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly producer: net.Socket;
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
  const producer = net.connect(socket);
  await once(producer, 'connect');
  return { name, proc, producer, topic: name === 'daemon' ? DAEMON_TOPIC : BASELINE_TOPIC };
}

async function stopTarget(t: Target): Promise<void> {
  t.producer.destroy();
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
async function roundTrip(t: Target, arrivals: Arrivals): Promise<number> {
  const marker = `"tool-${++seq}"`;
  const line = `${JSON.stringify({ type: 'tool_start', session_key: SESSION, name: `tool-${seq}` })}\n`;
  const arrived = arrivals.next(t.topic, marker);
  const sent = performance.now();
  t.producer.write(line);
  return (await arrived) - sent;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function benchMqtt(options: { samples?: number; warmup?: number } = {}): Promise<Figure[]> {
  const samples = options.samples ?? 1000;
  const warmup = options.warmup ?? 100;
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
    daemon.producer.write(`${JSON.stringify({ type: 'agent_start', session_key: SESSION })}\n`);
    baseline.producer.write(`${JSON.stringify({ type: 'agent_start', session_key: SESSION })}\n`);
    for (let i = 0; i < warmup; i++) {
      await roundTrip(daemon, arrivals);
      await roundTrip(baseline, arrivals);
    }
    const times = { daemon: [] as number[], baseline: [] as number[] };
    const block = 50;
    while (times.daemon.length < samples) {
      for (let i = 0; i < block; i++) times.daemon.push(await roundTrip(daemon, arrivals));
      for (let i = 0; i < block; i++) times.baseline.push(await roundTrip(baseline, arrivals));
    }
    const d = times.daemon.sort((a, b) => a - b);
    const b = times.baseline.sort((a, b) => a - b);
    return [
      ratioFigure('MQTT p50 latency, event to subscriber', percentile(d, 50), 'ms', percentile(b, 50), null),
      ratioFigure('MQTT p99 latency, event to subscriber', percentile(d, 99), 'ms', percentile(b, 99), '<= 1.5'),
    ];
  } finally {
    for (const t of targets) await stopTarget(t);
    await subscriber.endAsync(true);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  printFigures(await benchMqtt(quick ? { samples: 300, warmup: 50 } : {}), args.includes('--json'));
}
