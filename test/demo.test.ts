/**
 * `npm run demo`: the daemon plus a simulated agent, at a test's pace; Ctrl+C (SIGINT) stops both.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, cleanEnv, getStatus, waitFor, type StatusBody } from './helpers/daemon.ts';

const DEMO = 'scripts/demo/demo.ts';
const STATES = ['thinking', 'tool_running', 'streaming', 'waiting_for_user', 'error'];

interface Demo {
  readonly proc: ChildProcess;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  output(): string;
}

function startDemo(args: string[]): Demo {
  const proc = spawn(process.execPath, ['--import', 'tsx', DEMO, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { proc, exited, output: () => output };
}

/** The URL the demo prints for the page, once it does. */
async function pageUrl(demo: Demo): Promise<string> {
  const match = await waitFor(
    () => {
      if (demo.proc.exitCode !== null) throw new Error(`the demo exited with ${demo.proc.exitCode}:\n${demo.output()}`);
      return /Status page\s+(http:\/\/\S+)\/\n/.exec(demo.output());
    },
    { timeoutMs: 30_000, what: 'the demo to print its URL' },
  );
  return match![1]!;
}

/** Sends SIGINT, as Ctrl+C does, and checks that both processes end cleanly and leave nothing behind. */
async function interrupt(demo: Demo, url: string, socket: string): Promise<void> {
  demo.proc.kill('SIGINT');
  const timer = setTimeout(() => demo.proc.kill('SIGKILL'), 15_000);
  const [code, signal] = await demo.exited;
  clearTimeout(timer);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, demo.output());
  assert.match(demo.output(), /Demo stopped\.\n$/);
  assert.doesNotMatch(demo.output(), /rejected/, 'the daemon accepted every event the agent sent');
  assert.equal(existsSync(socket), false, 'the socket and its directory are removed');
  await assert.rejects(fetch(`${url}/livez`), 'the daemon is gone too');
}

test('npm run demo runs the demo script', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.demo, `node --import tsx ${DEMO}`);
});

test('the demo starts the daemon and an agent whose sessions go through every state; Ctrl+C stops both', { timeout: 120_000 }, async () => {
  const demo = startDemo(['--port', '0', '--pace', '0.05']);
  try {
    const url = await pageUrl(demo);
    assert.match(demo.output(), new RegExp(`npx pocketpaw-status status --watch --url ${url.replace(/[.]/g, '\\.')}\\n`));
    const socket = /Ingest socket\s+(\S+)\n/.exec(demo.output())![1]!;

    const seen = new Set<string>();
    const channels = new Set<string>();
    let together = 0;
    let titled = false;
    let tokens = false;
    let tool = false;
    await waitFor(
      async () => {
        const status: StatusBody = await getStatus(url);
        for (const s of status.sessions) {
          seen.add(s.state);
          channels.add(s.channel);
          titled ||= s.title !== null;
          tokens ||= s.token_usage !== null;
          tool ||= s.state === 'tool_running' && s.tool_name !== null;
          if (s.state === 'error') assert.ok(s.error_message, 'an error says what went wrong');
        }
        together = Math.max(together, new Set(status.sessions.map((s) => s.state)).size);
        return STATES.every((state) => seen.has(state)) && together >= 3 && channels.size >= 3 && titled && tokens && tool;
      },
      { timeoutMs: 60_000, what: 'every state, several at once, on several channels' },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}: saw ${JSON.stringify({ seen: [...seen], channels: [...channels], together, titled, tokens, tool })}`);
    });

    await interrupt(demo, url, socket);
  } finally {
    if (demo.proc.exitCode === null) demo.proc.kill('SIGKILL');
  }
});

test('when its port is taken, the demo takes a free one and says which', { timeout: 60_000 }, async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as net.AddressInfo).port;
  const demo = startDemo(['--port', String(taken), '--pace', '0.05']);
  try {
    const url = await pageUrl(demo);
    const port = Number(new URL(url).port);
    assert.notEqual(port, taken);
    assert.match(demo.output(), new RegExp(`Port ${taken} is in use, so the demo took port ${port} instead\\.`));
    assert.equal((await getStatus(url)).global.max_concurrent, 5, 'the daemon answers on the port it printed');
    await interrupt(demo, url, /Ingest socket\s+(\S+)\n/.exec(demo.output())![1]!);
  } finally {
    if (demo.proc.exitCode === null) demo.proc.kill('SIGKILL');
    blocker.close();
  }
});

test('the demo refuses a bad option with a message saying what to change', { timeout: 30_000 }, async () => {
  const demo = startDemo(['--pace', 'fast']);
  const [code] = await demo.exited;
  assert.equal(code, 2);
  assert.match(demo.output(), /^demo: invalid pace "fast": expected a number greater than 0\n/);
  assert.match(demo.output(), /Usage: npm run demo/);
});
