/**
 * The Python StatusEmitter (protocol/python/pocketpaw_status/) against the real daemon, driven through a small
 * python3 script: each command on its stdin is one call into the module; the script answers each with the emitter's
 * counters once the call has returned. An answer that never comes is a call that blocked.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { defaultSocketPath } from '../protocol/socket-path.ts';
import { skipWithout } from './helpers/tools.ts';
import { cleanEnv, eachLine, ROOT, session, sessionViews, startDaemon, tempDir, waitFor, waitForStatus, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

const DRIVER = String.raw`
import collections.abc, json, sys
from pocketpaw_status import StatusEmitter, default_socket_path

config = json.loads(sys.argv[1])
emitter = StatusEmitter(**config)

class Unreadable(collections.abc.Mapping):
    def __getitem__(self, key): raise RuntimeError("no")
    def __iter__(self): raise RuntimeError("no")
    def __len__(self): return 1

def stats():
    return {"dropped": emitter.dropped, "queued": emitter.queued, "connected": emitter.connected,
            "rejected": emitter.rejected, "last_error": emitter.last_error}

for raw in sys.stdin:
    cmd = json.loads(raw)
    op = cmd["op"]
    if op == "emit":
        for event in cmd["events"]:
            assert emitter.emit(event) is None
    elif op == "emit_many":
        for i in range(cmd["count"]):
            event = dict(cmd["event"])
            for field in cmd.get("count_up", []):
                event[field] = event[field] + i
            emitter.emit(event)
        if "then_close" in cmd:
            emitter.close(cmd["then_close"])
    elif op == "emit_bad":
        loop = []
        loop.append(loop)
        emitter.emit({"type": "title", "session_key": "a:1", "loop": loop})
        emitter.emit({"type": "token_usage", "session_key": "a:1", "input": float("nan")})
        emitter.emit({"type": "title", "session_key": "a:1", ("tuple", "key"): 1})
        emitter.emit(Unreadable())
        emitter.emit("thinking")
        emitter.emit(None)
    elif op == "close":
        emitter.close(cmd.get("timeout", 1.0))
    elif op == "default_socket_path":
        print(json.dumps(default_socket_path(cmd["env"])), flush=True)
        continue
    print(json.dumps(stats()), flush=True)
`;

interface Stats {
  dropped: number;
  queued: number;
  connected: boolean;
  rejected: number;
  last_error: string | null;
}

class PythonAgent {
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private stderr = '';

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    eachLine(proc.stdout, (line) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(line);
      } else this.lines.push(line);
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
  }

  static start(config: Record<string, unknown>, env: Record<string, string> = {}): PythonAgent {
    const proc = spawn('python3', ['-c', DRIVER, JSON.stringify(config)], {
      cwd: ROOT,
      env: cleanEnv({ PYTHONPATH: join(ROOT, 'protocol/python'), ...env }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new PythonAgent(proc);
    agents.push(agent);
    return agent;
  }

  /** One call into the module; resolves with its answer once the call has returned. */
  call<T = Stats>(cmd: Record<string, unknown>): Promise<T> {
    this.proc.stdin.write(`${JSON.stringify(cmd)}\n`);
    const next = this.lines.shift();
    if (next !== undefined) return Promise.resolve(JSON.parse(next) as T);
    return new Promise<T>((resolve, reject) => {
      // Generous: a call that has not returned by then is blocked, which is the failure this guards against.
      const timer = setTimeout(() => reject(new Error(`python did not return from ${cmd.op}; stderr:\n${this.stderr}`)), 20_000);
      this.waiting = (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
      };
    });
  }

  emit(...events: Record<string, unknown>[]): Promise<Stats> {
    return this.call({ op: 'emit', events });
  }

  async kill(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGKILL');
    await exited;
  }
}

const agents: PythonAgent[] = [];
const daemons: TestDaemon[] = [];
async function daemon(options: Parameters<typeof startDaemon>[0] = {}): Promise<TestDaemon> {
  const d = await startDaemon(options);
  daemons.push(d);
  return d;
}
after(async () => {
  await Promise.all(agents.map((a) => a.kill()));
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
});

const view = sessionViews;

describe('Python StatusEmitter', { skip: skipWithout('python3', 'python3') }, () => {
  test('computes the same default socket path as serve', async () => {
    const agent = PythonAgent.start({ socket_path: join(tempDir(), 'unused.sock') });
    for (const env of [
      { RUNTIME_DIRECTORY: '/run/pocketpaw-status:/run/other', XDG_RUNTIME_DIR: '/run/user/1000' },
      { XDG_RUNTIME_DIR: '/run/user/1000' },
      { RUNTIME_DIRECTORY: '', XDG_RUNTIME_DIR: '' },
    ]) {
      assert.equal(await agent.call<string>({ op: 'default_socket_path', env }), defaultSocketPath(env), JSON.stringify(env));
    }
  });

  test('says hello as a long-lived agent, then its events arrive (the socket from POCKETPAW_STATUS_SOCKET)', async () => {
    const d = await daemon();
    const agent = PythonAgent.start({ agent: 'py-agent' }, { POCKETPAW_STATUS_SOCKET: d.socket });
    await agent.emit(
      { type: 'agent_start', session_key: 'websocket:py1', title: 'Fix the tests' },
      // PocketPaw's tool_start carries the tool's params, which can be larger than one line may be.
      { type: 'tool_start', session_key: 'websocket:py1', name: 'write_file', params: { content: 'x'.repeat(200_000) } },
      { type: 'token_usage', session_key: 'websocket:py1', input: 120, output: 30 },
    );
    const s = await waitForStatus(d.url, (s) => session(s, 'websocket:py1')?.token_usage?.input === 120, 'the events');
    assert.deepEqual(view(s), [{ key: 'websocket:py1', title: 'Fix the tests', state: 'tool_running', tool: 'write_file', tokens: { input: 120, output: 30 }, error: null }]);
    assert.ok(d.logs().some((l) => l.msg === 'agent connected'), 'the daemon saw hello');
    const stats = await agent.call({ op: 'emit', events: [{ type: 'tool_start', session_key: 'a:1', name: 42 }] });
    assert.equal(stats.dropped, 0);
    const rejected = (await waitFor(async () => {
      const st = await agent.emit();
      return st.rejected === 1 ? st : null;
    }, { what: 'the rejection' }))!;
    assert.match(rejected.last_error ?? '', /^line \d+: tool_start: field "name"/);
  });

  test('emit() returns at once and never raises while no daemon listens; the queue is bounded, drops counted', async () => {
    const agent = PythonAgent.start({ socket_path: join(tempDir(), 'nobody.sock'), max_queue: 100 });
    const stats = await agent.call({ op: 'emit_many', count: 5000, event: { type: 'token_usage', session_key: 'a:1', input: 0, output: 0 }, count_up: ['input'] });
    assert.equal(stats.queued, 100);
    assert.equal(stats.dropped, 4900);
    assert.equal(stats.connected, false);
    const bad = await agent.call({ op: 'emit_bad' });
    assert.equal(bad.dropped, 4906, 'each unserialisable event is dropped and counted, none raised');
    const closed = await agent.call({ op: 'close', timeout: 0.3 });
    assert.equal(closed.dropped, 5006, 'close() returns with nowhere to deliver, counting what it could not write');
    const late = await agent.emit({ type: 'thinking', session_key: 'a:1' });
    assert.equal(late.dropped, 5007, 'an event after close() is counted as dropped');
  });

  test('a daemon restarted mid-run shows the same sessions and states as before', async () => {
    const first = await daemon();
    const socket = first.socket;
    const agent = PythonAgent.start({ socket_path: socket, max_queue: 5 });
    await waitFor(async () => (await agent.emit()).connected, { what: 'the first connection' });
    await agent.emit(
      { type: 'agent_start', session_key: 'websocket:tool', title: 'Running a tool' },
      { type: 'tool_start', session_key: 'websocket:tool', name: 'bash' },
      { type: 'token_usage', session_key: 'websocket:tool', input_tokens: 100, output_tokens: 50 },
      { type: 'agent_start', session_key: 'discord:ask' },
      { type: 'ask_user_question', session_key: 'discord:ask' },
      { type: 'agent_start', session_key: 'slack:stream' },
      { type: 'stream_start', session_key: 'slack:stream' },
      { type: 'agent_start', session_key: 'cli:err', title: 'Doomed' },
      { type: 'error', session_key: 'cli:err', message: 'Rate limit' },
      { type: 'agent_start', session_key: 'cli:failed' },
      { type: 'tool_result', session_key: 'cli:failed', name: 'agent', status: 'error', result: 'backend crashed' },
      { type: 'agent_start', session_key: 'websocket:think', title: 'Just thinking' },
      { type: 'title', session_key: 'websocket:think', title: 'Thinking, retitled' },
      { type: 'agent_start', session_key: 'cli:done' },
      { type: 'agent_end', session_key: 'cli:done' },
    );
    const before = await waitForStatus(first.url, (s) => s.sessions.length === 6 && session(s, 'websocket:think')?.title === 'Thinking, retitled', 'six live sessions');
    const expected = view(before);
    assert.deepEqual(
      expected.map((x) => [x.key, x.state]),
      [
        ['websocket:tool', 'tool_running'],
        ['discord:ask', 'waiting_for_user'],
        ['slack:stream', 'streaming'],
        ['cli:err', 'error'],
        ['cli:failed', 'error'],
        ['websocket:think', 'thinking'],
      ],
    );

    await first.stop('SIGKILL');
    const quiet = (await waitFor(async () => {
      const st = await agent.emit();
      return st.connected ? null : st;
    }, { what: 'the emitter to notice' }))!;
    const down = await agent.call({ op: 'emit_many', count: 50, event: { type: 'token_usage', session_key: 'websocket:tool', input: 101, output: 51 }, count_up: ['input', 'output'] });
    // The burst above may have overflowed the small queue too; the replay that follows a drop repaired that.
    assert.equal(down.dropped - quiet.dropped, 45);
    const second = await daemon({ socket });
    const after1 = await waitForStatus(second.url, (s) => session(s, 'websocket:tool')?.token_usage?.input === 150, 'the rebuilt state');
    assert.deepEqual(view(after1), expected.map((x) => (x.key === 'websocket:tool' ? { ...x, tokens: { input: 150, output: 100 } } : x)));

    await second.stop('SIGTERM');
    await waitFor(async () => !(await agent.emit()).connected, { what: 'the emitter to notice' });
    await agent.emit({ type: 'tool_start', session_key: 'discord:ask', name: 'grep' });
    const third = await daemon({ socket });
    const after2 = await waitForStatus(third.url, (s) => session(s, 'discord:ask')?.tool_name === 'grep', 'the change made while down');
    assert.deepEqual(view(after2), view(after1).map((x) => (x.key === 'discord:ask' ? { ...x, state: 'tool_running', tool: 'grep' } : x)));
  });

  test('passes call ids through and replays open calls with them after a restart', async () => {
    const first = await daemon();
    const socket = first.socket;
    const agent = PythonAgent.start({ socket_path: socket });
    await waitFor(async () => (await agent.emit()).connected, { what: 'the first connection' });
    const k = 'websocket:par';
    await agent.emit(
      { type: 'agent_start', session_key: k },
      { type: 'tool_start', session_key: k, name: 'read', call_id: 'a', params: { content: 'x'.repeat(200_000) } },
      { type: 'tool_start', session_key: k, name: 'grep', call_id: 'b' },
      { type: 'tool_start', session_key: 'websocket:q', name: 'mcp', call_id: 'm', create_session: true },
      { type: 'ask_user_question', session_key: 'websocket:q', call_id: 'elicitation' },
    );
    await waitForStatus(first.url, (s) => session(s, k)?.tool_name === 'grep' && session(s, 'websocket:q')?.state === 'waiting_for_user', 'two open calls');
    await first.stop('SIGKILL');
    await waitFor(async () => !(await agent.emit()).connected, { what: 'the emitter to notice' });
    const second = await daemon({ socket });
    await waitForStatus(second.url, (s) => session(s, k)?.tool_name === 'grep' && session(s, 'websocket:q')?.state === 'waiting_for_user', 'rebuilt');
    await agent.emit({ type: 'tool_result', session_key: k, call_id: 'b' });
    await waitForStatus(second.url, (s) => session(s, k)?.state === 'tool_running' && session(s, k)?.tool_name === 'read', 'back to read');
    await agent.emit({ type: 'tool_result', session_key: k, call_id: 'a' }, { type: 'tool_result', session_key: 'websocket:q', call_id: 'elicitation' });
    await waitForStatus(second.url, (s) => session(s, k)?.state === 'thinking' && session(s, 'websocket:q')?.tool_name === 'mcp', 'all closed');
    assert.equal((await agent.emit()).rejected, 0);
  });

  test('when a burst overflows the queue, the next write re-sends the live sessions: none stays lost', async () => {
    const d = await daemon();
    const agent = PythonAgent.start({ socket_path: d.socket, max_queue: 3 });
    await waitFor(async () => (await agent.emit()).connected, { what: 'the connection' });
    const pad = 'x'.repeat(50_000);
    // The daemon is stopped while the burst is written (see emitter.test.ts): the queue overflows whatever its speed.
    process.kill(d.proc.pid!, 'SIGSTOP');
    let stats: Stats;
    try {
      stats = await agent.emit(...Array.from({ length: 30 }, (_, i) => ({ type: 'agent_start', session_key: `burst:${i}`, title: `run ${i}`, pad })));
    } finally {
      process.kill(d.proc.pid!, 'SIGCONT');
    }
    assert.ok(stats.dropped > 0, `the burst overflowed the queue (dropped ${stats.dropped})`);
    const s = await waitForStatus(d.url, (s) => s.sessions.length === 30, 'all thirty sessions');
    assert.deepEqual(s.sessions.map((x) => x.title), Array.from({ length: 30 }, (_, i) => `run ${i}`));
  });

  test('close() flushes what is queued before it returns, then the agent is gone', async () => {
    const d = await daemon();
    const agent = PythonAgent.start({ socket_path: d.socket });
    await agent.call({ op: 'emit', events: [{ type: 'agent_start', session_key: 'cli:flush', title: 'Flushed' }] });
    // close() right behind the burst, in the same call: whatever the thread has not written yet must go out first.
    const closed = await agent.call({ op: 'emit_many', count: 500, event: { type: 'token_usage', session_key: 'cli:flush', input: 1, output: 2 }, count_up: ['input', 'output'], then_close: 2 });
    assert.equal(closed.dropped, 0);
    assert.equal(closed.queued, 0);
    const s = await waitForStatus(d.url, (s) => session(s, 'cli:flush')?.state === 'error', 'the session after close');
    assert.deepEqual(view(s), [{ key: 'cli:flush', title: 'Flushed', state: 'error', tool: null, tokens: { input: 500, output: 501 }, error: 'agent disconnected' }]);
  });

  test('an agent process that dies shows its sessions as "agent disconnected"', async () => {
    const d = await daemon();
    const agent = PythonAgent.start({ socket_path: d.socket, agent: 'doomed' });
    await agent.emit({ type: 'agent_start', session_key: 'websocket:doomed', title: 'Mid-run' }, { type: 'tool_start', session_key: 'websocket:doomed', name: 'bash' });
    await waitForStatus(d.url, (s) => session(s, 'websocket:doomed')?.state === 'tool_running', 'the agent running a tool');
    await agent.kill();
    const s = await waitForStatus(d.url, (s) => session(s, 'websocket:doomed')?.state === 'error', 'the disconnect');
    assert.equal(session(s, 'websocket:doomed')?.error_message, 'agent disconnected');
  });
});
