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
 * - aggregator CPU per node update (utime + stime from /proc over the change phase / changes, no SSE client, after a
 *   warm-up phase of half as many changes), against the bare subscriber's over the same changes; goal at most 2x;
 * - aggregator memory per node: RSS after catch-up minus RSS at ready, per node (no baseline).
 *
 * Run: node --import tsx scripts/bench/fleet.ts [--json] [--quick]
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
import { cpuSeconds, readyUrl, rssBytes } from './proc.ts';
import { SimNode } from './sim-nodes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE = 'pocketpaw-status';

export interface FleetBenchOptions {
  readonly nodes: number;
  readonly sessions: number;
  /** Node changes per second in the change phases. */
  readonly rate: number;
  /** Node changes in each change phase. */
  readonly changes: number;
}

export const FULL: FleetBenchOptions = { nodes: 1000, sessions: 5, rate: 200, changes: 4000 };
export const QUICK: FleetBenchOptions = { nodes: 1000, sessions: 5, rate: 200, changes: 1000 };

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

export async function benchFleet(o: FleetBenchOptions = FULL): Promise<Figure[]> {
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
    await changePhase(nodes, o, Math.ceil(o.changes / 2), () => {});
    await sleep(500);
    const fleetCpu0 = cpuSeconds(fleet.pid!);
    const bareCpu0 = cpuSeconds(bare.pid!);
    await changePhase(nodes, o, o.changes, () => {});
    await sleep(300);
    const fleetCpu = (cpuSeconds(fleet.pid!) - fleetCpu0) / o.changes;
    const bareCpu = (cpuSeconds(bare.pid!) - bareCpu0) / o.changes;

    // --- latency: change -> fleet SSE client, against change -> bare subscriber in this process ---
    const sent = new Map<string, number>();
    const fleetLatency: number[] = [];
    const bareLatency: number[] = [];
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
    await changePhase(nodes, o, o.changes, (id, at) => sent.set(id, at));
    await waitUntil(() => fleetLatency.length >= o.changes && bareLatency.length >= o.changes, 'every transition at both clients', 30_000).catch(() => {});
    stream.destroy();
    fleetLatency.sort((a, b) => a - b);
    bareLatency.sort((a, b) => a - b);

    return [
      ratioFigure(`fleet catch-up from retained state, ${o.nodes} nodes x ${o.sessions} sessions`, fleetCaughtUp, 'ms', bareCaughtUp, null),
      ratioFigure(`fleet change -> SSE client p50, ${o.rate} node changes/s`, percentile(fleetLatency, 50), 'ms', percentile(bareLatency, 50), null),
      ratioFigure(`fleet change -> SSE client p99, ${o.rate} node changes/s`, percentile(fleetLatency, 99), 'ms', percentile(bareLatency, 99), null),
      ratioFigure('fleet aggregator CPU per node update', fleetCpu * 1e6, 'µs', bareCpu * 1e6, '<= 2'),
      plain('fleet aggregator memory per node', (rssCaughtUp - rssAtReady) / o.nodes / 1024, 'KiB'),
      plain(`fleet transitions received (fleet / bare) of ${o.changes}`, fleetLatency.length, `/ ${bareLatency.length}`),
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
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  printFigures(await benchFleet(values.quick ? QUICK : FULL), values.json ?? false);
  process.exit(0);
}
