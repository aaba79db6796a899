/**
 * The two kinds of producer. A one-shot producer (no hello) closing changes nothing; a long-lived agent (hello first)
 * owns the sessions it drives, and when its connection goes away, cleanly or killed, they go to `error`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { getStatus, Producer, sendOnce, session, startDaemon, waitFor, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

/** Default error TTL (30 s): long enough to look at sessions in `error`. */
let d: TestDaemon;
/** A short error TTL, to see disconnected sessions removed. */
let short: TestDaemon;

before(async () => {
  [d, short] = await Promise.all([startDaemon(), startDaemon({ args: ['--error-ttl', '0.5'] })]);
});
after(async () => {
  await Promise.all([d?.stop(), short?.stop()]);
});

function until<T>(check: () => T | Promise<T>, what: string): Promise<T> {
  return waitFor(check, { timeoutMs: 20_000, what });
}

function untilStatus(url: string, check: (s: StatusBody) => boolean, what: string): Promise<StatusBody> {
  return until(async (): Promise<StatusBody | null> => {
    const s = await getStatus(url);
    return check(s) ? s : null;
  }, what) as Promise<StatusBody>;
}

const FENCE = '{"v":99,"type":"fence"}\n';

/** Waits until every line sent so far on `p` has been applied (see test/ingest.test.ts). */
async function applied(p: Producer): Promise<void> {
  const from = p.replies.length;
  p.send(FENCE);
  await until(() => p.replies.slice(from).some((r) => r.includes('version 99')), 'the fence answer');
}

async function agent(path: string, name: string, extra: object = {}): Promise<Producer> {
  const p = await Producer.connect(path);
  p.send({ type: 'hello', agent: name, version: '1.0', ...extra });
  return p;
}

function view(s: StatusBody, key: string): { state: string; error_message: string | null; tool_name: string | null } | undefined {
  const x = session(s, key);
  return x && { state: x.state, error_message: x.error_message, tool_name: x.tool_name };
}

describe('one-shot producers', () => {
  test('closing a connection that sent no hello changes nothing', async () => {
    await sendOnce(
      d.socket,
      { type: 'agent_start', session_key: 'oneshot:a' },
      { type: 'tool_start', session_key: 'oneshot:a', name: 'bash' },
      { type: 'agent_start', session_key: 'oneshot:b' },
    );
    const s = await untilStatus(d.url, (x) => !!session(x, 'oneshot:b'), 'the one-shot sessions');
    // The close has been handled once a later connection's event is visible: close and data are handled in order.
    await sendOnce(d.socket, { type: 'thinking', session_key: 'oneshot:b' }, { type: 'title', session_key: 'oneshot:b', title: 'seen' });
    const later = await untilStatus(d.url, (x) => session(x, 'oneshot:b')?.title === 'seen', 'the second one-shot');
    assert.deepEqual(view(later, 'oneshot:a'), { state: 'tool_running', error_message: null, tool_name: 'bash' });
    assert.deepEqual(view(later, 'oneshot:b'), { state: 'thinking', error_message: null, tool_name: null });
    assert.notEqual(s.global.state, 'degraded');
  });
});

describe('long-lived agents', () => {
  test('a closed agent connection puts its unfinished sessions in error; another connection\'s are untouched', async () => {
    const a = await agent(d.socket, 'closing');
    const other = await agent(d.socket, 'bystander');
    a.send(
      { type: 'agent_start', session_key: 'closing:thinking' },
      { type: 'agent_start', session_key: 'closing:tool' },
      { type: 'tool_start', session_key: 'closing:tool', name: 'bash' },
      { type: 'agent_start', session_key: 'closing:waiting' },
      { type: 'ask_user_question', session_key: 'closing:waiting' },
      { type: 'agent_start', session_key: 'closing:ended' },
      { type: 'agent_end', session_key: 'closing:ended' },
      { type: 'agent_start', session_key: 'closing:failed' },
      { type: 'error', session_key: 'closing:failed', message: 'Rate limit' },
    );
    other.send({ type: 'agent_start', session_key: 'bystander:1' }, { type: 'tool_start', session_key: 'bystander:1', name: 'grep' });
    await Promise.all([applied(a), applied(other)]);
    // A session a one-shot producer started and this agent then drove belongs to the agent too.
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'closing:adopted' });
    a.send({ type: 'thinking', session_key: 'closing:adopted' }, { type: 'stream_start', session_key: 'closing:adopted' });
    await applied(a);

    await a.end();
    const s = await untilStatus(d.url, (x) => session(x, 'closing:thinking')?.state === 'error', 'the disconnected sessions in error');
    const disconnected = { state: 'error', error_message: 'agent disconnected', tool_name: null };
    for (const key of ['closing:thinking', 'closing:tool', 'closing:waiting', 'closing:adopted']) assert.deepEqual(view(s, key), disconnected, key);
    assert.equal(session(s, 'closing:ended'), undefined);
    // Already in error with its own message: the disconnect does not overwrite the reason.
    assert.deepEqual(view(s, 'closing:failed'), { state: 'error', error_message: 'Rate limit', tool_name: null });
    assert.deepEqual(view(s, 'bystander:1'), { state: 'tool_running', error_message: null, tool_name: 'grep' });
    assert.equal(s.global.state, 'degraded');
    await other.end();
  });

  test('a SIGKILLed agent process: its sessions go to error', async () => {
    const keys = Array.from({ length: 5 }, (_, i) => `killed:${i}`);
    const lines = [{ type: 'hello', agent: 'doomed' }, ...keys.map((k) => ({ type: 'agent_start', session_key: k }))];
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').connect(process.env.SOCK, () => s.write(process.env.LINES, () => process.stdout.write('sent\\n')));
         setInterval(() => {}, 60000);`,
      ],
      { env: { ...process.env, SOCK: d.socket, LINES: lines.map((l) => `${JSON.stringify(l)}\n`).join('') }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(child, 'exit');
    await once(child.stdout!, 'data');
    await untilStatus(d.url, (x) => keys.every((k) => session(x, k)?.state === 'thinking'), 'the doomed agent\'s sessions');
    child.kill('SIGKILL');
    await exited;
    const s = await untilStatus(d.url, (x) => keys.every((k) => session(x, k)?.state === 'error'), 'the killed agent\'s sessions in error');
    for (const k of keys) assert.equal(session(s, k)?.error_message, 'agent disconnected');
    assert.equal(s.global.state, 'degraded');
  });

  test('an agent that comes back takes over the sessions it sends events for', async () => {
    const first = await agent(d.socket, 'first');
    first.send({ type: 'agent_start', session_key: 'back:1' }, { type: 'agent_start', session_key: 'back:2' });
    await applied(first);
    await first.end();
    await untilStatus(d.url, (x) => session(x, 'back:1')?.state === 'error' && session(x, 'back:2')?.state === 'error', 'both in error');

    const second = await agent(d.socket, 'second');
    second.send({ type: 'tool_start', session_key: 'back:1', name: 'bash' });
    await applied(second);
    let s = await getStatus(d.url);
    assert.deepEqual(view(s, 'back:1'), { state: 'tool_running', error_message: null, tool_name: 'bash' });
    assert.deepEqual(view(s, 'back:2'), { state: 'error', error_message: 'agent disconnected', tool_name: null });

    // It is the new owner now: its own disconnect puts the session back in error.
    await second.end();
    s = await untilStatus(d.url, (x) => session(x, 'back:1')?.state === 'error', 'the taken-over session in error again');
    assert.equal(session(s, 'back:1')?.error_message, 'agent disconnected');
  });

  test('a one-shot producer sending for an agent\'s session does not take it over', async () => {
    const a = await agent(d.socket, 'owner');
    a.send({ type: 'agent_start', session_key: 'owned:1' });
    await applied(a);
    await sendOnce(d.socket, { type: 'tool_start', session_key: 'owned:1', name: 'hook' });
    await untilStatus(d.url, (x) => session(x, 'owned:1')?.state === 'tool_running', 'the hook\'s event');
    await a.end();
    const s = await untilStatus(d.url, (x) => session(x, 'owned:1')?.state === 'error', 'the owner\'s disconnect');
    assert.equal(session(s, 'owned:1')?.error_message, 'agent disconnected');
  });

  test('hello with max_concurrent replaces global.max_concurrent; a hello without it keeps it', async () => {
    assert.equal((await getStatus(d.url)).global.max_concurrent, 5);
    const a = await agent(d.socket, 'sized', { max_concurrent: 12 });
    await applied(a);
    assert.equal((await getStatus(d.url)).global.max_concurrent, 12);
    const b = await agent(d.socket, 'unsized');
    await applied(b);
    assert.equal((await getStatus(d.url)).global.max_concurrent, 12);
    await Promise.all([a.end(), b.end()]);
  });
});

describe('error TTL after a disconnect', () => {
  test('with --error-ttl 0.5 the disconnected sessions are removed; a one-shot producer\'s session stays', async () => {
    await sendOnce(short.socket, { type: 'agent_start', session_key: 'ttl:oneshot' });
    const a = await agent(short.socket, 'short-lived');
    a.send({ type: 'agent_start', session_key: 'ttl:1' }, { type: 'tool_start', session_key: 'ttl:1', name: 'bash' }, { type: 'agent_start', session_key: 'ttl:2' });
    await applied(a);
    assert.equal((await getStatus(short.url)).sessions.length, 3);
    await a.end();
    const s = await untilStatus(short.url, (x) => !session(x, 'ttl:1') && !session(x, 'ttl:2'), 'the disconnected sessions removed');
    assert.deepEqual(view(s, 'ttl:oneshot'), { state: 'thinking', error_message: null, tool_name: null });
    assert.equal(s.global.state, 'active');
    assert.equal(s.global.active_sessions, 1);
  });
});
