/**
 * The TypeScript StatusEmitter against the real daemon: events arrive; nothing blocks or throws while the daemon is
 * down; a daemon restarted mid-run shows the same sessions and states again; close() flushes; the agent's death shows.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { StatusEmitter, type EmitterEvent } from '../protocol/emitter.ts';
import * as pkg from '../protocol/index.ts';
import { cleanEnv, getStatus, ROOT, session, sessionViews, startDaemon, tempDir, waitFor, waitForStatus, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

// What must survive a restart: everything but the timing fields.
const view = sessionViews;

const emitters: StatusEmitter[] = [];
const daemons: TestDaemon[] = [];
function emitter(options: ConstructorParameters<typeof StatusEmitter>[0]): StatusEmitter {
  const e = new StatusEmitter(options);
  emitters.push(e);
  return e;
}
async function daemon(options: Parameters<typeof startDaemon>[0] = {}): Promise<TestDaemon> {
  const d = await startDaemon(options);
  daemons.push(d);
  return d;
}
after(async () => {
  await Promise.all(emitters.map((e) => e.close(200)));
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
});

describe('StatusEmitter', () => {
  test('is exported from the package entry point', () => {
    assert.equal(pkg.StatusEmitter, StatusEmitter);
    assert.equal(typeof pkg.StatusEvent.safeParse, 'function');
    assert.equal(typeof pkg.AgentStatusResponse.safeParse, 'function');
    assert.equal(typeof pkg.defaultSocketPath, 'function');
  });

  test('says hello as a long-lived agent, then its events arrive', async () => {
    const d = await daemon();
    const e = emitter({ socket: d.socket, agent: 'test-agent' });
    e.emit({ type: 'agent_start', session_key: 'websocket:a1', title: 'Fix the tests' });
    e.emit({ type: 'tool_start', session_key: 'websocket:a1', name: 'bash' });
    e.emit({ type: 'token_usage', session_key: 'websocket:a1', input_tokens: 120, output_tokens: 30 });
    const s = await waitForStatus(d.url, (s) => session(s, 'websocket:a1')?.token_usage?.input === 120, 'the events');
    assert.deepEqual(view(s), [{ key: 'websocket:a1', title: 'Fix the tests', state: 'tool_running', tool: 'bash', tokens: { input: 120, output: 30 }, error: null }]);
    assert.ok(d.logs().some((l) => l.msg === 'agent connected'), 'the daemon saw hello');
    assert.equal(e.connected, true);
    assert.equal(e.dropped, 0);
  });

  test('forwards any {type, ...} object as it is, and cuts an oversized one down to the protocol fields', async () => {
    const d = await daemon();
    const e = emitter({ socket: d.socket });
    // PocketPaw's tool_start carries the tool's params, which can be larger than the daemon accepts on one line.
    const params = { content: 'x'.repeat(200_000) };
    e.emit({ type: 'agent_start', session_key: 'telegram:7', title: 't', extra: { nested: [1, 2] } });
    e.emit({ type: 'tool_start', session_key: 'telegram:7', name: 'write_file', params });
    await waitForStatus(d.url, (s) => session(s, 'telegram:7')?.tool_name === 'write_file', 'the oversized tool_start');
    assert.equal(e.dropped, 0);
    assert.equal(e.rejected, 0);
  });

  test('passes call ids through (even when cutting an event down) and replays open calls with them after a restart', async () => {
    const first = await daemon();
    const socket = first.socket;
    const e = emitter({ socket, agent: 'calls-test' });
    const k = 'websocket:par';
    e.emit({ type: 'agent_start', session_key: k });
    e.emit({ type: 'tool_start', session_key: k, name: 'read', call_id: 'a', params: { content: 'x'.repeat(200_000) } });
    e.emit({ type: 'tool_start', session_key: k, name: 'grep', call_id: 'b' });
    e.emit({ type: 'tool_start', session_key: 'websocket:q', name: 'mcp', call_id: 'm', create_session: true });
    e.emit({ type: 'ask_user_question', session_key: 'websocket:q', call_id: 'elicitation' });
    await waitForStatus(first.url, (s) => session(s, k)?.tool_name === 'grep' && session(s, 'websocket:q')?.state === 'waiting_for_user', 'two open calls');
    e.emit({ type: 'tool_result', session_key: k, call_id: 'b' });
    await waitForStatus(first.url, (s) => session(s, k)?.tool_name === 'read', 'the oversized call kept its id');
    e.emit({ type: 'tool_start', session_key: k, name: 'grep', call_id: 'b' });
    await waitForStatus(first.url, (s) => session(s, k)?.tool_name === 'grep', 'b again');
    await first.stop('SIGKILL');
    await waitFor(() => !e.connected, { what: 'the emitter to notice' });
    const second = await daemon({ socket });
    await waitForStatus(second.url, (s) => session(s, k)?.tool_name === 'grep' && session(s, 'websocket:q')?.state === 'waiting_for_user', 'rebuilt');
    // The new daemon knows both calls: closing one shows the other, closing both thinks.
    e.emit({ type: 'tool_result', session_key: k, call_id: 'b' });
    await waitForStatus(second.url, (s) => session(s, k)?.state === 'tool_running' && session(s, k)?.tool_name === 'read', 'back to read');
    e.emit({ type: 'tool_result', session_key: k, call_id: 'a' });
    e.emit({ type: 'tool_result', session_key: 'websocket:q', call_id: 'elicitation' });
    await waitForStatus(second.url, (s) => session(s, k)?.state === 'thinking' && session(s, 'websocket:q')?.tool_name === 'mcp', 'all closed');
    assert.equal(e.rejected, 0, e.lastError ?? '');
  });

  test('counts the lines the daemon rejects and keeps its answer', async () => {
    const d = await daemon();
    const e = emitter({ socket: d.socket });
    e.emit({ type: 'tool_start', session_key: 'a:1', name: 42 });
    await waitFor(() => e.rejected === 1, { what: 'the rejection' });
    assert.match(e.lastError ?? '', /^line \d+: tool_start: field "name"/);
  });

  test('emit() returns at once and never throws while no daemon listens; the queue is bounded, drops counted', async () => {
    const e = emitter({ socket: join(tempDir(), 'nobody.sock'), maxQueue: 100 });
    for (let i = 0; i < 10_000; i++) {
      assert.equal(e.emit({ type: 'token_usage', session_key: 'a:1', input: i, output: i }), undefined);
    }
    assert.equal(e.queued, 100);
    assert.equal(e.dropped, 9_900);
    const circular: Record<string, unknown> = { type: 'title', session_key: 'a:1' };
    circular.self = circular;
    const throwing = { type: 'thinking', get session_key(): string { throw new Error('getter'); } };
    assert.doesNotThrow(() => {
      e.emit(circular as EmitterEvent);
      e.emit({ type: 'token_usage', session_key: 'a:1', input: 10n } as unknown as EmitterEvent);
      e.emit(throwing as unknown as EmitterEvent);
      e.emit(null as unknown as EmitterEvent);
      e.emit('thinking' as unknown as EmitterEvent);
    });
    assert.equal(e.dropped, 9_905);
    assert.equal(e.connected, false);
    // close() with nowhere to deliver resolves anyway, counting what it could not write.
    await e.close(300);
    assert.equal(e.dropped, 10_005);
    e.emit({ type: 'thinking', session_key: 'a:1' });
    assert.equal(e.dropped, 10_006, 'an event after close() is counted as dropped');
  });

  test('a daemon restarted mid-run shows the same sessions and states as before', async () => {
    const first = await daemon();
    const socket = first.socket;
    const e = emitter({ socket, agent: 'restart-test', maxQueue: 5 });
    // Connected, events go straight to the socket: none of this burst waits in the small queue.
    await waitFor(() => e.connected, { what: 'the first connection' });
    e.emit({ type: 'agent_start', session_key: 'websocket:tool', title: 'Running a tool' });
    e.emit({ type: 'tool_start', session_key: 'websocket:tool', name: 'bash' });
    e.emit({ type: 'token_usage', session_key: 'websocket:tool', input: 100, output: 50 });
    e.emit({ type: 'agent_start', session_key: 'discord:ask' });
    e.emit({ type: 'ask_user_question', session_key: 'discord:ask' });
    e.emit({ type: 'agent_start', session_key: 'slack:stream' });
    e.emit({ type: 'tool_start', session_key: 'slack:stream', tool: 'search' });
    e.emit({ type: 'tool_result', session_key: 'slack:stream', status: 'success' });
    e.emit({ type: 'agent_start', session_key: 'cli:err', title: 'Doomed' });
    e.emit({ type: 'error', session_key: 'cli:err', message: 'Rate limit' });
    e.emit({ type: 'agent_start', session_key: 'cli:failed' });
    e.emit({ type: 'tool_result', session_key: 'cli:failed', name: 'agent', status: 'error', result: 'backend crashed' });
    e.emit({ type: 'agent_start', session_key: 'websocket:think', title: 'Just thinking' });
    e.emit({ type: 'title', session_key: 'websocket:think', title: 'Thinking, retitled' });
    e.emit({ type: 'agent_start', session_key: 'cli:done' });
    e.emit({ type: 'agent_end', session_key: 'cli:done' });
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

    // The daemon dies without a word (its socket file stays behind); a new one starts on the same path.
    await first.stop('SIGKILL');
    await waitFor(() => !e.connected, { what: 'the emitter to notice' });
    // Meanwhile the agent goes on: far more events than the queue holds; the oldest are dropped.
    for (let i = 1; i <= 50; i++) e.emit({ type: 'token_usage', session_key: 'websocket:tool', input: 100 + i, output: 50 + i });
    assert.equal(e.dropped, 45);
    const second = await daemon({ socket });
    const after1 = await waitForStatus(second.url, (s) => session(s, 'websocket:tool')?.token_usage?.input === 150, 'the rebuilt state');
    assert.deepEqual(view(after1), expected.map((x) => (x.key === 'websocket:tool' ? { ...x, tokens: { input: 150, output: 100 } } : x)));

    // And once more through a clean stop, with a change made while no daemon runs.
    await second.stop('SIGTERM');
    await waitFor(() => !e.connected, { what: 'the emitter to notice' });
    e.emit({ type: 'tool_start', session_key: 'discord:ask', name: 'grep' });
    const third = await daemon({ socket });
    const after2 = await waitForStatus(third.url, (s) => session(s, 'discord:ask')?.tool_name === 'grep', 'the change made while down');
    assert.deepEqual(
      view(after2),
      view(after1).map((x) => (x.key === 'discord:ask' ? { ...x, state: 'tool_running', tool: 'grep' } : x)),
    );
  });

  test('when a slow daemon makes it drop events, the next write re-sends the live sessions: none stays lost', async () => {
    const d = await daemon();
    const e = emitter({ socket: d.socket, maxQueue: 3 });
    await waitFor(() => e.connected, { what: 'the connection' });
    // The daemon is stopped (SIGSTOP) while the burst is written: large lines fill the socket's buffer, the rest backs
    // up into the small queue and overflows it. A daemon left running could read as fast as the burst is written.
    const pad = 'x'.repeat(50_000);
    const count = 20;
    process.kill(d.proc.pid!, 'SIGSTOP');
    try {
      for (let i = 0; i < count; i++) e.emit({ type: 'agent_start', session_key: `burst:${i}`, title: `run ${i}`, pad });
    } finally {
      process.kill(d.proc.pid!, 'SIGCONT');
    }
    assert.ok(e.dropped > 0, `the burst overflowed the queue (dropped ${e.dropped})`);
    const s = await waitForStatus(d.url, (s) => s.sessions.length === count, `all ${count} sessions`);
    assert.deepEqual(s.sessions.map((x) => x.title), Array.from({ length: count }, (_, i) => `run ${i}`));
  });

  test('close() flushes what is queued before it returns, then the agent is gone', async () => {
    const d = await daemon();
    const e = emitter({ socket: d.socket });
    e.emit({ type: 'agent_start', session_key: 'cli:flush', title: 'Flushed' });
    for (let i = 1; i <= 500; i++) e.emit({ type: 'token_usage', session_key: 'cli:flush', input: i, output: 2 * i });
    // Still connecting: everything is in the queue, and close() must connect and write it out.
    assert.equal(e.connected, false);
    assert.equal(e.queued, 501);
    await e.close();
    assert.equal(e.queued, 0);
    assert.equal(e.dropped, 0);
    const s = await waitForStatus(d.url, (s) => session(s, 'cli:flush')?.state === 'error', 'the session after close');
    assert.deepEqual(view(s), [{ key: 'cli:flush', title: 'Flushed', state: 'error', tool: null, tokens: { input: 500, output: 1000 }, error: 'agent disconnected' }]);
  });

  test('an agent process that dies shows its sessions as "agent disconnected"', async () => {
    const d = await daemon();
    const script = `
      import { StatusEmitter } from ${JSON.stringify(join(ROOT, 'protocol/emitter.ts'))};
      const e = new StatusEmitter({ socket: ${JSON.stringify(d.socket)}, agent: 'doomed' });
      e.emit({ type: 'agent_start', session_key: 'websocket:doomed', title: 'Mid-run' });
      e.emit({ type: 'tool_start', session_key: 'websocket:doomed', name: 'bash' });
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env: cleanEnv(), stdio: 'ignore' });
    try {
      await waitForStatus(d.url, (s) => session(s, 'websocket:doomed')?.state === 'tool_running', 'the child agent running a tool');
    } finally {
      child.kill('SIGKILL');
    }
    const s = await waitForStatus(d.url, (s) => session(s, 'websocket:doomed')?.state === 'error', 'the disconnect');
    assert.equal(session(s, 'websocket:doomed')?.error_message, 'agent disconnected');
    assert.equal((await getStatus(d.url)).global.state, 'degraded');
  });
});
