/**
 * The daemon dies (issue 7): it is killed with SIGKILL while 20 sessions are live and two emitters, the TypeScript one
 * in this process and the Python one in a child python3, keep emitting. No emitter call blocks or throws while it is
 * down; a daemon restarted on the same socket path starts despite the stale socket file, and its snapshot comes to
 * show the same sessions in the same states as the emitters believe (rebuilt by their replay on reconnect).
 *
 * The issue's "within one second of its start" is the design target, met by the emitters' reconnection backoff
 * (capped at 1 s in both) followed by their replay; it is not asserted here. The snapshot is polled with a generous
 * bound instead, so that a busy 2-core machine cannot make the test flaky.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { StatusEmitter, type EmitterEvent } from '../../protocol/emitter.ts';
import { cleanEnv, eachLine, getStatus, ROOT, sessionViews, startDaemon, tempDir, waitFor, type SessionView, type StatusBody, type TestDaemon } from '../helpers/daemon.ts';
import { skipWithout } from '../helpers/tools.ts';

const DRIVER = join(ROOT, 'test/reliability/fixtures/emitter-driver.py');
const SESSIONS_EACH = 10;
const TICK_MS = 20;
/** Ticks each emitter must spend emitting while it knows the daemon is gone (a few hundred ms at TICK_MS). */
const TICKS_WHILE_DOWN = 15;
const BOUND_MS = 10_000;
/** A Python answer that has not come by then is a call that blocked: the failure this test exists to catch. */
const ANSWER_BOUND_MS = 20_000;
const TOOLS = ['bash', 'read_file', 'grep', 'write_file', 'web_search', 'edit'];

type Event = { type: string; session_key: string; [field: string]: unknown };

type Belief = SessionView;

/**
 * What an emitter was told, session by session: each session steps through a cycle of events, offset by its index so
 * that at any moment the sessions are spread over every state. `beliefs` is the last state/tool/title/tokens emitted.
 */
class Script {
  readonly beliefs = new Map<string, Belief>();
  private readonly steps = new Map<string, number>();

  constructor(readonly prefix: string) {}

  keys(): string[] {
    return Array.from({ length: SESSIONS_EACH }, (_, i) => `${this.prefix}:${i}`);
  }

  /** One event per session: agent_start the first time, then the next step of its cycle. */
  tick(): Event[] {
    return this.keys().map((key, i) => {
      const n = this.steps.get(key);
      const event = n === undefined ? { type: 'agent_start', session_key: key, title: `${key} started` } : this.step(key, n);
      this.steps.set(key, n === undefined ? i : n + 1);
      this.believe(event);
      return event;
    });
  }

  private step(key: string, n: number): Event {
    switch (n % 6) {
      case 0:
        return { type: 'tool_start', session_key: key, name: TOOLS[n % TOOLS.length] };
      case 1:
        // Run-cumulative totals, growing with every step.
        return { type: 'token_usage', session_key: key, input: 100 * (n + 1), output: 7 * (n + 1) };
      case 2:
        return { type: 'stream_start', session_key: key };
      case 3:
        return { type: 'title', session_key: key, title: `${key} step ${n}` };
      case 4:
        return { type: 'thinking', session_key: key };
      default:
        return { type: 'ask_user_question', session_key: key };
    }
  }

  private believe(e: Event): void {
    const key = e.session_key;
    if (e.type === 'agent_start') {
      this.beliefs.set(key, { key, title: e.title as string, state: 'thinking', tool: null, tokens: null, error: null });
      return;
    }
    const b = this.beliefs.get(key)!;
    const enter = (state: string, tool: string | null = null) => Object.assign(b, { state, tool });
    if (e.type === 'tool_start') enter('tool_running', e.name as string);
    else if (e.type === 'stream_start') enter('streaming');
    else if (e.type === 'thinking') enter('thinking');
    else if (e.type === 'ask_user_question') enter('waiting_for_user');
    else if (e.type === 'title') b.title = e.title as string;
    else if (e.type === 'token_usage') b.tokens = { input: e.input as number, output: e.output as number };
  }
}

interface PyAnswer {
  calls: number;
  raised: string[];
  returned: string[];
  connected: boolean;
  dropped: number;
  queued: number;
  rejected: number;
  last_error: string | null;
}

/** The Python emitter in a python3 child, one JSON command per call, answered once the calls have returned. */
class PythonEmitter {
  private readonly answers: string[] = [];
  private readonly waiting: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(config: Record<string, unknown>) {
    this.proc = spawn('python3', [DRIVER, JSON.stringify(config)], {
      cwd: ROOT,
      env: cleanEnv({ PYTHONPATH: join(ROOT, 'protocol/python') }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    eachLine(this.proc.stdout, (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
      else this.answers.push(line);
    });
    this.proc.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  readonly proc: ChildProcessWithoutNullStreams;

  call(cmd: Record<string, unknown>): Promise<PyAnswer> {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const ready = this.answers.shift();
    if (ready !== undefined) return Promise.resolve(JSON.parse(ready) as PyAnswer);
    return new Promise<PyAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python did not return from ${String(cmd.op)}; stderr:\n${this.stderr}`)), ANSWER_BOUND_MS);
      this.waiting.push((line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as PyAnswer);
      });
    });
  }

  async end(): Promise<number | null> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.proc.exitCode;
    const exited = once(this.proc, 'exit') as Promise<[number | null]>;
    this.proc.stdin.end();
    return (await exited)[0];
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

function view(s: StatusBody): Belief[] {
  return sessionViews(s).sort((a, b) => a.key.localeCompare(b.key));
}

const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

// The Python emitter runs beside the TypeScript one: without python3 the scenario is skipped.
test('SIGKILLed daemon: emitters never block or throw, and a restart on the stale socket shows what they believe', { skip: skipWithout('python3', 'python3'), timeout: 90_000 }, async () => {
  // In a folder of the test's own: stop() removes the daemon's folder, and the stale file must outlive the first daemon.
  const dir = tempDir();
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'ingest.sock');
  const first = await startDaemon({ socket });
  cleanup.push(() => first.stop('SIGKILL'));

  const ts = new StatusEmitter({ socket, agent: 'ts-agent' });
  cleanup.push(() => ts.close(200));
  const py = new PythonEmitter({ socket_path: socket, agent: 'py-agent' });
  cleanup.push(() => py.kill());
  const tsScript = new Script('ts');
  const pyScript = new Script('py');
  const everyKey = [...tsScript.keys(), ...pyScript.keys()].sort();

  let frozen = false;
  let daemonDown = false;
  const tsCounts = { calls: 0, threw: 0, returned: 0, ticksDown: 0 };
  const pyCounts = { calls: 0, raised: [] as string[], returned: [] as string[], ticksDown: 0 };

  // The TypeScript emitter is called from a timer, as an agent's own code would call it: synchronously, in a loop.
  const tsTimer = setInterval(() => {
    if (frozen) return;
    const down = daemonDown && !ts.connected;
    for (const event of tsScript.tick()) {
      tsCounts.calls++;
      try {
        const result: unknown = ts.emit(event as EmitterEvent);
        if (result !== undefined) tsCounts.returned++;
      } catch {
        tsCounts.threw++;
      }
    }
    if (down) tsCounts.ticksDown++;
  }, TICK_MS);
  cleanup.push(() => clearInterval(tsTimer));

  // The Python emitter gets one command per tick; the next is sent only once the previous calls have returned.
  const pyLoop = (async () => {
    while (!frozen) {
      const answer = await py.call({ op: 'emit', events: pyScript.tick() });
      pyCounts.calls += answer.calls;
      pyCounts.raised.push(...answer.raised);
      pyCounts.returned.push(...answer.returned);
      if (daemonDown && !answer.connected) pyCounts.ticksDown++;
      await sleep(TICK_MS);
    }
  })();
  // Surfaced by the `await pyLoop` below; this only keeps an early rejection from being reported as unhandled.
  pyLoop.catch(() => {});

  await waitFor(
    async () => {
      const s = await getStatus(first.url);
      return JSON.stringify(view(s).map((x) => x.key)) === JSON.stringify(everyKey);
    },
    { what: 'the 20 sessions on the first daemon', timeoutMs: BOUND_MS },
  );

  const killed = await first.stop('SIGKILL');
  daemonDown = true;
  assert.equal(killed.signal, 'SIGKILL');
  assert.equal(killed.socketLeft, true, 'a SIGKILLed daemon cannot remove its socket file');

  // Both keep emitting for a while with nobody listening: every call has to come back.
  await waitFor(() => tsCounts.ticksDown >= TICKS_WHILE_DOWN && pyCounts.ticksDown >= TICKS_WHILE_DOWN, {
    what: `${TICKS_WHILE_DOWN} ticks of each emitter while the daemon is down (ts ${tsCounts.ticksDown}, py ${pyCounts.ticksDown})`,
    timeoutMs: BOUND_MS,
  });
  frozen = true;
  clearInterval(tsTimer);
  await pyLoop;

  assert.deepEqual({ threw: tsCounts.threw, returned: tsCounts.returned }, { threw: 0, returned: 0 }, 'TypeScript emit() returned undefined and never threw');
  assert.deepEqual(pyCounts.raised, [], 'Python emit() never raised');
  assert.deepEqual(pyCounts.returned, [], 'Python emit() returned None');
  assert.ok(tsCounts.calls > 0 && pyCounts.calls > 0);

  // What each emitter believes, frozen: no event is emitted from here on.
  const believed = [...tsScript.beliefs.values(), ...pyScript.beliefs.values()].map((b) => ({ ...b })).sort((a, b) => a.key.localeCompare(b.key));
  assert.equal(believed.length, 20);
  assert.ok(new Set(believed.map((b) => b.state)).size > 1, `the sessions are spread over several states: ${JSON.stringify(believed.map((b) => b.state))}`);
  assert.equal(lstatSync(socket).isSocket(), true, 'the stale socket file is still there');
  assert.equal(ts.connected, false, 'nothing listens on the stale socket');

  const second = await startDaemon({ socket });
  cleanup.push(() => second.stop('SIGKILL'));

  let last: Belief[] = [];
  try {
    await waitFor(
      async () => {
        last = view(await getStatus(second.url));
        return JSON.stringify(last) === JSON.stringify(believed);
      },
      { what: 'the restarted daemon to show what the emitters believe', timeoutMs: BOUND_MS },
    );
  } catch (error) {
    assert.deepEqual(last, believed, String(error));
  }

  // Nothing was lost for good: the queue never overflowed and the daemon rejected none of the lines.
  assert.deepEqual({ dropped: ts.dropped, rejected: ts.rejected, lastError: ts.lastError }, { dropped: 0, rejected: 0, lastError: null });
  const pyState = await py.call({ op: 'emit', events: [] });
  assert.deepEqual({ dropped: pyState.dropped, rejected: pyState.rejected, lastError: pyState.last_error }, { dropped: 0, rejected: 0, lastError: null });

  await ts.close();
  const closed = await py.call({ op: 'close', timeout: 1 });
  assert.deepEqual(closed.raised, []);
  assert.equal(await py.end(), 0);
  // Both reconnected as agents (hello first): their leaving marks every session they left running.
  const end = await waitFor(
    async () => {
      const s = await getStatus(second.url);
      return s.sessions.length === 20 && s.sessions.every((x) => x.state === 'error') ? s : null;
    },
    { what: 'the sessions of the closed emitters in error', timeoutMs: BOUND_MS },
  );
  assert.deepEqual(new Set(end!.sessions.map((x) => x.error_message)), new Set(['agent disconnected']));
  assert.deepEqual((await second.stop('SIGTERM')).code, 0);
});
