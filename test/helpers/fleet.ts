/**
 * Test harness for the fleet aggregator: spawns `pocketpaw-status fleet` (through tsx) on a free port against a
 * broker, and reads its snapshots.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { FleetStatusResponse } from '../../protocol/fleet.ts';
import { CLI, ROOT, cleanEnv, eachLine, waitFor, type LogLine } from './daemon.ts';

export interface TestFleet {
  readonly url: string;
  readonly proc: ChildProcess;
  readonly stderr: string[];
  logs(): LogLine[];
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startFleet(brokerUrl: string, args: string[] = [], env: Record<string, string> = {}): Promise<TestFleet> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'fleet', '--port', '0', '--mqtt-url', brokerUrl, ...args], {
    cwd: ROOT,
    env: cleanEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  eachLine(proc.stderr!, (line) => stderr.push(line));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let gone = false;
  void exited.then(() => (gone = true));
  const logs = () => stderr.map(parseLog).filter((l): l is LogLine => l !== null);
  const url = (await waitFor(
    () => {
      if (gone) throw new Error(`fleet exited before ready; stderr:\n${stderr.join('\n')}`);
      const ready = logs().find((l) => l.msg.startsWith('ready') && typeof l.http === 'string');
      return ready ? (ready.http as string) : null;
    },
    { timeoutMs: 20_000, what: 'the fleet ready line' },
  )) as string;
  return {
    url,
    proc,
    stderr,
    logs,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const [code, sig] = await exited;
      return { code, signal: sig };
    },
  };
}

function parseLog(line: string): LogLine | null {
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && 'msg' in value ? (value as LogLine) : null;
  } catch {
    return null;
  }
}

export async function getFleet(url: string, query = ''): Promise<FleetStatusResponse> {
  const res = await fetch(`${url}/api/v1/fleet/status${query}`);
  if (res.status !== 200) throw new Error(`fleet status ${res.status}: ${await res.text()}`);
  return (await res.json()) as FleetStatusResponse;
}

/** Polls the fleet snapshot until `check` holds; returns it. */
export function waitForFleet(url: string, check: (f: FleetStatusResponse) => boolean, what = 'fleet snapshot', timeoutMs = 5000): Promise<FleetStatusResponse> {
  return waitFor(async () => {
    const f = await getFleet(url);
    return check(f) ? f : null;
  }, { what, timeoutMs }) as Promise<FleetStatusResponse>;
}

/** The fleet without timing fields (aged on every read), for comparing two reads. */
export function timelessFleet(f: FleetStatusResponse): unknown {
  return {
    global: { ...f.global, uptime_seconds: 0 },
    nodes: f.nodes.map((n) => ({
      ...n,
      last_seen: '',
      global: n.global && { ...n.global, uptime_seconds: 0 },
      sessions: n.sessions.map((s) => ({ ...s, duration_seconds: 0 })),
    })),
  };
}
