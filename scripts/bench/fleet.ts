/**
 * Fleet benchmark: 1,000 simulated nodes x 5 sessions (generated in this process, publishing exactly what a daemon
 * publishes: sim-nodes.ts) through one mosquitto to one aggregator (`pocketpaw-status fleet`, its own process).
 *
 * In the same run, a bare MQTT.js subscriber to the same topics that only JSON.parses them (fleet-bare.ts, its own
 * process) is the baseline for CPU and catch-up, and one in this process for latency. Figures:
 * - catch-up from retained state at start: from the ready line until every node and session is in the fleet (the
 *   aggregator's /metrics), against the bare subscriber's time to receive the same retained messages;
 * - change on a node -> fleet SSE client, p99 at `rate` node changes/s: a change's transition event on the fleet
 *   stream (?transitions=1, status events included) against the same transition at the bare in-process subscriber;
 * - aggregator CPU per node update (every thread's CPU time from /proc schedstat over a change phase / changes, no
 *   SSE client, after a warm-up phase), against the bare subscriber's over the same changes; goal at most 2x, decided
 *   on the median ratio of `repetitions` phases (repeat.ts: each run's two sides read the same phase at once);
 * - the latency figures are repeated the same way (one phase per run, both clients timing the same changes); the
 *   catch-up and the memory figure are measured once (repeating them means restarting the aggregator);
 * - aggregator memory per node: RSS after catch-up minus RSS at ready, per node (no baseline).
 *
 * Run: node --import tsx scripts/bench/fleet.ts [--json] [--quick] [--repetitions 3]
 *   FLEET_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" passes Node options to the aggregator (to profile it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import type { StatusEvent } from '../../protocol/events.ts';
import { SUBSCRIPTION_QOS, fleetSubscriptions } from '../../daemon/fleet/decode.ts';
import { startBroker } from '../../test/helpers/broker.ts';
import { series } from '../../test/helpers/metrics.ts';
import { plain, printFigures, type Figure } from './figure.ts';
import { ratioFigure } from './goals.ts';
import { readyUrl, rssBytes, threadCpuSeconds } from './proc.ts';
import { repeatPairs, type Metrics } from './repeat.ts';
import { SimNode } from './sim-nodes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE = 'pocketpaw-status';

export interface FleetBenchOptions {
  readonly nodes: number;
  readonly sessions: number;
  /** Node changes per second in the change phases. */
  readonly rate: number;
  /** Node changes in each measured change phase (one per run of CPU, one per run of latency). */
  readonly changes: number;
  /** Node changes before the first measured phase, for the JIT and the catch-up's garbage. */
  readonly warmup: number;
  /** Node changes per second in the warm-up: faster than `rate` (it is not measured), so a quick run can afford enough. */
  readonly warmupRate: number;
  /** Runs of the CPU and of the latency pairs; at least 3 for the CPU goal (repeat.ts). */
  readonly repetitions: number;
}

export const FULL: FleetBenchOptions = { nodes: 1000, sessions: 5, rate: 200, changes: 4000, warmup: 2000, warmupRate: 1000, repetitions: 3 };
/**
 * `npm run bench -- --quick`: the same fleet, rate and warm-up, shorter phases (under 1 s each at 200 changes/s).
 * The warm-up is not shortened: with a few hundred changes the JIT still compiles the aggregator's path during the
 * measured phases (on V8's helper threads, counted in its CPU), and the quick figure read 1.5x the full one. It is
 * sent twice as fast instead (it is not measured, and the half second after it lets any backlog drain).
 */
export const QUICK: FleetBenchOptions = { ...FULL, changes: 150, warmupRate: 2000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function waitUntil(check: () => Promise<boolean> | boolean, what: string, timeoutMs: number, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

function lines(proc: ChildProcess, onLine: (line: string) => void): void {
  let partial = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) onLine(line);
  });
}

/** The change a node makes: one session toggles between running a tool and thinking (a transition either way). */
function change(node: SimNode, session: number): StatusEvent[] {
  const key = `cli:s${session}`;
  const running = node.sessions.get(key)?.state === 'tool_running';
  return [running ? ({ type: 'tool_result', session_key: key, status: 'ok' } as StatusEvent) : ({ type: 'tool_start', session_key: key, name: 'Bash' } as StatusEvent)];
}

/** Makes `count` node changes at `rate` per second (in batches every 20 ms), the n-th on node n % nodes. */
async function changePhase(nodes: readonly SimNode[], o: FleetBenchOptions, count: number, onChange: (id: string, at: number) => void): Promise<void> {
  const perBatch = Math.max(1, Math.round(o.rate / 50));
  const started = performance.now();
  let made = 0;
  const pending: Promise<void>[] = [];
  while (made < count) {
    const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * o.rate) + perBatch);
    for (; made < due; made++) {
      const node = nodes[made % nodes.length]!;
      const session = Math.floor(made / nodes.length) % o.sessions;
      onChange(`${node.nodeId}/cli:s${session}`, performance.now());
      pending.push(node.apply(change(node, session)));
    }
    await sleep(20);
  }
  await Promise.all(pending);
}

/** A fleet SSE client that reads every frame and times each transition frame's arrival. */
function fleetStream(url: string, onTransition: (id: string, at: number) => void): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/api/v1/fleet/status/stream?transitions=1`, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`fleet stream answered ${res.statusCode}`));
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const at = performance.now();
        // Search only the new text (and one character before it): a status frame of 1,000 nodes spans many chunks.
        let from = Math.max(0, buffer.length - 1);
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n', from)) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          from = 0;
          if (!frame.includes('\nevent: transition\n')) continue;
          const data = JSON.parse(frame.slice(frame.indexOf('\ndata: ') + 7)) as { node_id: string; session_key: string };
          onTransition(`${data.node_id}/${data.session_key}`, at);
        }
      });
      resolve(req);
    });
    req.on('error', reject);
  });
}

export async function benchFleet(options: Partial<FleetBenchOptions> = {}): Promise<Figure[]> {
  const o: FleetBenchOptions = { ...FULL, ...options };
  const broker = await startBroker();
  const children: ChildProcess[] = [];
  const clients: MqttClient[] = [];
  try {
    // --- the nodes: their retained state first, as a fleet that runs before its aggregator starts ---
    const publishers = await Promise.all(Array.from({ length: 4 }, () => connectAsync(broker.url, { clean: true })));
    clients.push(...publishers);
    const nodes: SimNode[] = [];
    for (let i = 0; i < o.nodes; i++) nodes.push(new SimNode(publishers[i % publishers.length]!, `node-${String(i).padStart(4, '0')}`));
    const t0 = performance.now();
    for (let i = 0; i < nodes.length; i += 50) {
      await Promise.all(
        nodes.slice(i, i + 50).map(async (node) => {
          await node.online();
          await node.apply(Array.from({ length: o.sessions }, (_, s) => ({ type: 'agent_start', session_key: `cli:s${s}`, title: `task ${s}` }) as StatusEvent));
        }),
      );
    }
    process.stderr.write(`bench fleet: ${o.nodes} nodes x ${o.sessions} sessions published in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    // Retained per node: availability, state, status, one per session. The fleet does not subscribe to state.
    const retained = o.nodes * (2 + o.sessions);

    // --- catch-up: the bare subscriber, then the aggregator ---
    const bare = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bench/fleet-bare.ts'), broker.url, BASE, String(retained)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(bare);
    let bareCaughtUp = NaN;
    lines(bare, (line) => {
      const parsed = JSON.parse(line) as { caught_up_ms?: number };
      if (parsed.caught_up_ms !== undefined) bareCaughtUp = parsed.caught_up_ms;
    });
    await waitUntil(() => Number.isFinite(bareCaughtUp), 'the bare subscriber to read every retained message', 60_000);

    const fleet = spawn(process.execPath, [...(process.env.FLEET_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', join(ROOT, 'daemon/cli.ts'), 'fleet', '--port', '0', '--mqtt-url', broker.url], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(fleet);
    const url = await readyUrl(fleet, 'the fleet aggregator');
    const readyAt = performance.now();
    const rssAtReady = rssBytes(fleet.pid!);
    const metrics = async () => (await (await fetch(`${url}/metrics`)).text());
    await waitUntil(async () => {
      const text = await metrics();
      return series(text, 'pocketpaw_status_fleet_nodes_online') === o.nodes && series(text, 'pocketpaw_status_sessions') === o.nodes * o.sessions;
    }, 'the aggregator to show every node', 60_000);
    const fleetCaughtUp = performance.now() - readyAt;
    await sleep(500);
    const rssCaughtUp = rssBytes(fleet.pid!);

    // --- CPU per node update: no SSE client, both subscribers reading the same changes ---
    // Both warmed up first (as the ingest benchmark does): the aggregator's longer path is optimised by the JIT only
    // after some hundreds of messages, and the catch-up's garbage is collected before the measured phase.
    await changePhase(nodes, { ...o, rate: o.warmupRate }, o.warmup, () => {});
    await sleep(500);
    // Each run is one change phase that both subscribers read at once: the two sides of a pair are measured over the
    // same messages in the same window, so load from elsewhere hits both alike (closer than alternating phases would,
    // at half the time). CPU from schedstat, in nanoseconds: 10 ms ticks would be coarse for a quick run's phase.
    let bareCpu = NaN;
    const cpuFigures = await repeatPairs({
      name: 'fleet CPU',
      repetitions: o.repetitions,
      value: async () => {
        const fleetCpu0 = threadCpuSeconds(fleet.pid!);
        const bareCpu0 = threadCpuSeconds(bare.pid!);
        await changePhase(nodes, o, o.changes, () => {});
        await sleep(300);
        bareCpu = ((threadCpuSeconds(bare.pid!) - bareCpu0) / o.changes) * 1e6;
        return { cpu: ((threadCpuSeconds(fleet.pid!) - fleetCpu0) / o.changes) * 1e6 };
      },
      baseline: async () => ({ cpu: bareCpu }),
      figures: [{ name: 'fleet aggregator CPU per node update', unit: 'µs', value: 'cpu', baseline: 'cpu', goal: '<= 2' }],
    });

    // --- latency: change -> fleet SSE client, against change -> bare subscriber in this process ---
    let sent = new Map<string, number>();
    let fleetLatency: number[] = [];
    let bareLatency: number[] = [];
    const stream = await fleetStream(url, (id, at) => {
      const t = sent.get(id);
      if (t !== undefined) fleetLatency.push(at - t);
    });
    const watcher = await connectAsync(broker.url, { clean: true });
    clients.push(watcher);
    watcher.on('message', (topic, payload) => {
      const at = performance.now();
      const node = topic.slice(BASE.length + 1, topic.indexOf('/', BASE.length + 1));
      const t = sent.get(`${node}/${(JSON.parse(payload.toString('utf8')) as { session_key: string }).session_key}`);
      if (t !== undefined) bareLatency.push(at - t);
    });
    await watcher.subscribeAsync(`${BASE}/+/transitions`, { qos: SUBSCRIPTION_QOS });
    await sleep(500);
    // As for CPU, both clients time the same changes of one phase; a run's transitions are counted only once every
    // one of them arrived at both (or 10 s passed), so that a late one is not timed in the next run.
    let bareP: Metrics = {};
    let fleetReceived = 0;
    let bareReceived = 0;
    const latencyFigures = await repeatPairs({
      name: 'fleet latency',
      repetitions: o.repetitions,
      value: async () => {
        sent = new Map();
        fleetLatency = [];
        bareLatency = [];
        await changePhase(nodes, o, o.changes, (id, at) => sent.set(id, at));
        await waitUntil(() => fleetLatency.length >= o.changes && bareLatency.length >= o.changes, 'every transition at both clients', 10_000).catch(() => {});
        fleetReceived += fleetLatency.length;
        bareReceived += bareLatency.length;
        const f = [...fleetLatency].sort((a, b) => a - b);
        const b = [...bareLatency].sort((a, b) => a - b);
        bareP = { p50: percentile(b, 50), p99: percentile(b, 99) };
        return { p50: percentile(f, 50), p99: percentile(f, 99) };
      },
      baseline: async () => bareP,
      figures: [
        { name: `fleet change -> SSE client p50, ${o.rate} node changes/s`, unit: 'ms', value: 'p50', baseline: 'p50', goal: null },
        { name: `fleet change -> SSE client p99, ${o.rate} node changes/s`, unit: 'ms', value: 'p99', baseline: 'p99', goal: null },
      ],
    });
    stream.destroy();

    return [
      ratioFigure(`fleet catch-up from retained state, ${o.nodes} nodes x ${o.sessions} sessions`, fleetCaughtUp, 'ms', bareCaughtUp, null),
      ...latencyFigures,
      ...cpuFigures,
      plain('fleet aggregator memory per node', (rssCaughtUp - rssAtReady) / o.nodes / 1024, 'KiB'),
      plain(`fleet transitions received (fleet / bare) of ${o.changes * o.repetitions}`, fleetReceived, `/ ${bareReceived}`),
    ];
  } finally {
    // Stopped and waited for (a bounded while), so that no aggregator outlives the run.
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return null;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        return Promise.race([exited, sleep(3000).then(() => child.kill('SIGKILL'))]);
      }),
    );
    await Promise.all(clients.map((c) => c.endAsync().catch(() => {})));
    await broker.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, repetitions: { type: 'string' } },
  });
  const repetitions = values.repetitions === undefined ? undefined : Number(values.repetitions);
  if (repetitions !== undefined && !(Number.isInteger(repetitions) && repetitions >= 1)) {
    process.stderr.write(`--repetitions must be a whole number of at least 1, not ${JSON.stringify(values.repetitions)}\n`);
    process.exit(2);
  }
  printFigures(await benchFleet({ ...(values.quick ? QUICK : FULL), ...(repetitions === undefined ? {} : { repetitions }) }), values.json ?? false);
  process.exit(0);
}
