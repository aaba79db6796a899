/**
 * Ingest through the real socket: every rejected line is answered once on its own connection with its line number,
 * ignored lines are neither answered nor applied, and no producer (oversized, malformed, not reading) hurts another.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';

import { getStatus, Producer, sendOnce, session, startDaemon, waitFor, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

const MAX = 65536;
// Rejected for its version, a reason no other line in these tests has: its answer is unmistakable.
const FENCE = '{"v":99,"type":"fence"}\n';

let d: TestDaemon;

before(async () => {
  d = await startDaemon();
});
after(async () => {
  await d?.stop();
});

/** Polls with a bound generous enough for a busy 2-core machine; not a timing assertion. */
function until<T>(check: () => T | Promise<T>, what: string): Promise<T> {
  return waitFor(check, { timeoutMs: 20_000, what });
}

const seen = new WeakMap<Producer, number>();

/**
 * Sends a line the daemon must reject and waits for its answer. Lines are handled in order and answered as they are
 * handled, so once this answer is in, every earlier line on the connection has been applied and answered. Returns the
 * answers that came since the previous fence on this connection.
 */
async function fence(p: Producer): Promise<string[]> {
  const from = seen.get(p) ?? 0;
  p.send(FENCE);
  const at = await until(() => {
    const i = p.replies.findIndex((r, n) => n >= from && r.includes('unsupported protocol version 99'));
    return i >= 0 ? i + 1 : 0;
  }, 'the fence answer');
  seen.set(p, at);
  return p.replies.slice(from, at - 1);
}

function stripTiming(s: StatusBody): unknown {
  return {
    global: { ...s.global, uptime_seconds: 0 },
    sessions: s.sessions.map((x) => ({ ...x, duration_seconds: 0 })),
  };
}

/** A valid event line padded with an extra field to exactly `bytes` bytes, before its line ending. */
function paddedEvent(event: object, bytes: number): string {
  const base = JSON.stringify({ ...event, pad: '' });
  assert.ok(base.length <= bytes);
  return JSON.stringify({ ...event, pad: 'p'.repeat(bytes - base.length) });
}

describe('rejected lines', () => {
  test('each kind is answered once, with its line number, and the connection goes on', async () => {
    const key = 'ingest:after-rejects';
    const p = await Producer.connect(d.socket);
    p.send(
      Buffer.from([0xff, 0xfe, 0x0a]), // 1
      '\n', // 2: blank, counted
      '{"type":\n', // 3
      'null\n', // 4
      '42\n', // 5
      '"thinking"\n', // 6
      '[{"type":"agent_start","session_key":"ingest:in-array"}]\n', // 7
      '{"v":2,"type":"agent_start","session_key":"ingest:v2"}\n', // 8
      '{"type":"tool_start","session_key":"ingest:after-rejects","name":5}\n', // 9
      '{"type":"token_usage","session_key":"ingest:after-rejects","input_tokens":"x"}\n', // 10
      '{"type":"agent_start","session_key":5}\n', // 11
      `${paddedEvent({ type: 'agent_start', session_key: 'ingest:too-long' }, MAX + 1)}\n`, // 12
      '\r\n', // 13: blank with CRLF, counted
      '{"type":"agent_start"\r\n', // 14
      { type: 'agent_start', session_key: key, title: 'after the rejects' }, // 15
    );
    const replies = await fence(p);
    assert.deepEqual(replies, [
      '{"error":"line 1: invalid UTF-8"}',
      '{"error":"line 3: invalid JSON"}',
      '{"error":"line 4: expected a JSON object, got null"}',
      '{"error":"line 5: expected a JSON object, got number"}',
      '{"error":"line 6: expected a JSON object, got string"}',
      '{"error":"line 7: expected a JSON object, got an array"}',
      '{"error":"line 8: unsupported protocol version 2 (this daemon speaks v 1)"}',
      replies[7],
      replies[8],
      replies[9],
      `{"error":"line 12: line longer than ${MAX} bytes"}`,
      '{"error":"line 14: invalid JSON"}',
    ]);
    // The schema's wording may change; the line number and the field it names may not.
    const errors = replies.map((r) => (JSON.parse(r) as { error: string }).error);
    assert.match(errors[7]!, /^line 9: tool_start: field "name"/);
    assert.match(errors[8]!, /^line 10: token_usage: field "input_tokens"/);
    assert.match(errors[9]!, /^line 11: agent_start: field "session_key"/);
    for (const r of replies) assert.deepEqual(Object.keys(JSON.parse(r) as object), ['error']);

    const s = await getStatus(d.url);
    assert.equal(session(s, key)?.title, 'after the rejects');
    for (const rejectedKey of ['ingest:in-array', 'ingest:v2', 'ingest:too-long']) assert.equal(session(s, rejectedKey), undefined);

    // Same connection, still open and still read.
    assert.equal(p.socket.destroyed, false);
    p.send({ type: 'tool_start', session_key: key, name: 'bash' });
    assert.deepEqual(await fence(p), [], 'no answer for a valid line');
    assert.equal(session(await getStatus(d.url), key)?.state, 'tool_running');
    await p.end();
  });

  test('a line of exactly --max-line-bytes is accepted, with LF or CRLF; one byte more is not', async () => {
    const p = await Producer.connect(d.socket);
    p.send(
      `${paddedEvent({ type: 'agent_start', session_key: 'ingest:max-lf' }, MAX)}\n`,
      `${paddedEvent({ type: 'agent_start', session_key: 'ingest:max-crlf' }, MAX)}\r\n`,
      `${paddedEvent({ type: 'agent_start', session_key: 'ingest:max-plus-one' }, MAX + 1)}\n`,
    );
    assert.deepEqual(await fence(p), [`{"error":"line 3: line longer than ${MAX} bytes"}`]);
    const s = await getStatus(d.url);
    assert.ok(session(s, 'ingest:max-lf'));
    assert.ok(session(s, 'ingest:max-crlf'));
    assert.equal(session(s, 'ingest:max-plus-one'), undefined);
    await p.end();
  });

  test('a 10 MB line without a newline, then a valid line: one answer, and the valid line is applied', async () => {
    const key = 'ingest:after-10mb';
    const p = await Producer.connect(d.socket);
    const huge = Buffer.alloc(10 * 1024 * 1024, 0x61);
    if (!p.socket.write(huge)) await once(p.socket, 'drain');
    p.send('\n', { type: 'agent_start', session_key: key });
    assert.deepEqual(await fence(p), [`{"error":"line 1: line longer than ${MAX} bytes"}`]);
    assert.equal(session(await getStatus(d.url), key)?.state, 'thinking');
    await p.end();
  });

  test('a last line without a newline is still answered when the producer half-closes', async () => {
    const replies = await sendOnce(d.socket, '{"type":"agent_start","session_key":"ingest:x"}\n', '{"truncated');
    assert.deepEqual(replies, ['{"error":"line 2: invalid JSON"}']);
  });

  test('deep nesting cannot crash the daemon: 10,000 levels in an extra field, and in a failed run\'s result', async () => {
    const key = 'ingest:deep';
    const p = await Producer.connect(d.socket);
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    p.send(
      `{"type":"agent_start","session_key":"${key}","extra":${deep}}\n`,
      `{"type":"tool_start","session_key":"${key}","name":"bash","params":${deep}}\n`,
    );
    assert.deepEqual(await fence(p), []);
    assert.equal(session(await getStatus(d.url), key)?.tool_name, 'bash');

    // PocketPaw reports a failed run as tool_result{name:"agent",status:"error",result}; the result becomes the
    // error message. A result too deep to serialise once threw out of the fold and killed the daemon.
    p.send(`{"type":"tool_result","session_key":"${key}","name":"agent","status":"error","result":${deep}}\n`);
    p.send({ type: 'title', session_key: key, title: 'still here' });
    const replies = await fence(p);
    assert.ok(replies.length <= 1, `at most the deep line is answered: ${JSON.stringify(replies)}`);
    if (replies.length === 1) assert.match(replies[0]!, /^\{"error":"line 4: /);
    assert.equal(d.proc.exitCode, null, 'the daemon is still running');
    assert.equal(session(await getStatus(d.url), key)?.title, 'still here');
    await p.end();
  });
});

describe('ignored lines', () => {
  test('unknown type, no session_key, unknown session: no answer, no change', async () => {
    const known = 'ingest:known';
    const p = await Producer.connect(d.socket);
    p.send({ type: 'agent_start', session_key: known }, { type: 'tool_start', session_key: known, name: 'grep' });
    await fence(p);
    const before = stripTiming(await getStatus(d.url));

    p.send(
      { type: 'thinking_done', session_key: known },
      { type: 'mc_task_update', session_key: known, state: 'error' },
      { type: 'agents_md_loaded' },
      { type: 'thinking' },
      { type: 'error', message: 'no key' },
      { type: 'agent_start', session_key: '' },
      { type: 'tool_start', session_key: 'ingest:never-started', name: 'bash' },
      { type: 'error', session_key: 'ingest:never-started', message: 'Message blocked by injection scanner' },
      { type: 'token_usage', session_key: 'ingest:never-started', input: 5, output: 5 },
      { type: 'agent_end', session_key: 'ingest:never-started' },
    );
    assert.deepEqual(await fence(p), []);
    assert.deepEqual(stripTiming(await getStatus(d.url)), before);
    await p.end();
  });
});

describe('producers do not hurt each other', () => {
  test('a producer that never reads its answers, sending many bad lines, stops nobody', async () => {
    const badLines = 100_000;
    const quiet = net.connect({ path: d.socket });
    quiet.on('error', () => {});
    await once(quiet, 'connect');
    // Never read: the daemon's answers pile up in the kernel and then must be dropped, not buffered.
    quiet.pause();
    const bad = Buffer.from('x\n'.repeat(badLines));
    const last = `${JSON.stringify({ type: 'agent_start', session_key: 'ingest:quiet-last' })}\n`;
    if (!quiet.write(bad)) await once(quiet, 'drain');
    quiet.write(last);

    const other = await Producer.connect(d.socket);
    other.send({ type: 'agent_start', session_key: 'ingest:other' }, { type: 'tool_start', session_key: 'ingest:other', name: 'bash' });
    await fence(other);
    assert.equal(session(await getStatus(d.url), 'ingest:other')?.state, 'tool_running');

    // Its own last line arrives too: the daemon kept reading it although it could not write to it.
    await until(async () => session(await getStatus(d.url), 'ingest:quiet-last'), 'the non-reading producer\'s last event');

    // Now read what was kept for it: far less than one answer per bad line.
    let received = '';
    quiet.setEncoding('utf8');
    quiet.on('data', (chunk: string) => (received += chunk));
    quiet.resume();
    quiet.end();
    await once(quiet, 'close');
    const answers = received.split('\n').filter(Boolean);
    assert.ok(answers.length > 0, 'some answers were written');
    assert.ok(answers.length < badLines / 2, `only what fits the buffers is kept, got ${answers.length} of ${badLines}`);
    for (const a of answers) assert.match(a, /^\{"error":"line \d+: invalid JSON"\}$/);
    assert.ok(!answers.includes(`{"error":"line ${badLines}: invalid JSON"}`), 'the answers to the last bad lines were dropped');

    other.send({ type: 'thinking', session_key: 'ingest:other' });
    await fence(other);
    assert.equal(session(await getStatus(d.url), 'ingest:other')?.state, 'thinking');
    await other.end();
  });

  test('many producers at once, interleaved: every event lands in its session', async () => {
    const producers = await Promise.all(Array.from({ length: 20 }, () => Producer.connect(d.socket)));
    producers.forEach((p, i) => p.send({ type: 'agent_start', session_key: `many:${i}` }));
    producers.forEach((p, i) => p.send('{"broken\n', { type: 'tool_start', session_key: `many:${i}`, name: `tool-${i}` }));
    for (const p of producers) assert.deepEqual(await fence(p), ['{"error":"line 2: invalid JSON"}']);
    const s = await getStatus(d.url);
    producers.forEach((_, i) => assert.equal(session(s, `many:${i}`)?.tool_name, `tool-${i}`));
    await Promise.all(producers.map((p) => p.end()));
  });
});
