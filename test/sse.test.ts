/**
 * The live stream (issue 3) against the real daemon: eventsource 4 as the client for behaviour, raw HTTP for framing.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { AgentStatusResponse } from '../protocol/snapshot.ts';
import { getStatus, Producer, sendOnce, startDaemon, waitFor, type TestDaemon } from './helpers/daemon.ts';
import { RawSse, seqOf, timeless } from './helpers/sse.ts';

const STREAM = '/api/v1/agent/status/stream';

interface Received {
  type: string;
  data: string;
  id: string;
}

/** An eventsource client that records every status/transition/reset event in order. */
function follow(url: string): { es: EventSource; events: Received[]; statuses: () => AgentStatusResponse[] } {
  const es = new EventSource(url);
  const events: Received[] = [];
  for (const type of ['status', 'transition', 'reset']) {
    es.addEventListener(type, (e: MessageEvent) => events.push({ type, data: String(e.data), id: e.lastEventId }));
  }
  const statuses = () => events.filter((e) => e.type === 'status').map((e) => AgentStatusResponse.parse(JSON.parse(e.data)));
  return { es, events, statuses };
}

describe('SSE stream', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--sse-heartbeat', '0.3', '--sse-min-interval', '50'] });
  });
  after(() => d.stop());

  test('headers, retry, then the current snapshot with an id, the same JSON as REST', async () => {
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'hdr:1', title: 'Headers' });
    const sse = await RawSse.open(`${d.url}${STREAM}`);
    try {
      assert.equal(sse.status, 200);
      assert.equal(sse.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(sse.headers['cache-control'], 'no-cache');
      assert.equal(sse.headers['connection'], 'keep-alive');
      assert.equal(sse.headers['x-accel-buffering'], 'no');
      await sse.waitFor((s) => s.of('status').length >= 1, 'first status');
      // The first block is a real event that carries retry: (an event-less retry block is an empty event to some clients).
      const first = sse.messages[0]!;
      assert.equal(first.event, 'status', 'the first block is the status event');
      assert.notEqual(first.data, '', 'with its data');
      assert.equal(first.retry, 2000, 'and retry: inside it');
      assert.ok(sse.messages.every((m) => m.event !== 'message'), 'no block without an event name');
      const status = sse.of('status')[0]!;
      assert.match(status.id ?? '', /^[\x21-\x7e]+$/, 'ASCII id');
      assert.doesNotMatch(status.data, /\n/);
      const rest = await getStatus(d.url);
      assert.deepEqual(timeless(status.data), timeless(JSON.stringify(rest)));
      AgentStatusResponse.parse(JSON.parse(status.data));
    } finally {
      sse.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'hdr:1' });
    }
  });

  test('an isolated change reaches every connected client, each with a full snapshot', async () => {
    const clients = [follow(`${d.url}${STREAM}`), follow(`${d.url}${STREAM}`), follow(`${d.url}${STREAM}`)];
    try {
      await waitFor(() => clients.every((c) => c.statuses().length >= 1), { what: 'initial snapshots' });
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'iso:1' }, { type: 'tool_start', session_key: 'iso:1', name: 'bash' });
      for (const c of clients) {
        await waitFor(() => c.statuses().some((s) => s.sessions.some((x) => x.session_key === 'iso:1' && x.tool_name === 'bash')), {
          what: 'the change on every client',
        });
      }
    } finally {
      clients.forEach((c) => c.es.close());
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'iso:1' });
    }
  });

  test('token counts, titles and error messages are changes; timing alone is not', async () => {
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'chg:1' }, { type: 'tool_start', session_key: 'chg:1', name: 'bash' });
    const c = follow(`${d.url}${STREAM}?session=chg:1`);
    try {
      await waitFor(() => c.statuses().length === 1, { what: 'initial snapshot' });
      const seen = () => c.statuses().at(-1)!.sessions[0]!;
      await sendOnce(d.socket, { type: 'token_usage', session_key: 'chg:1', input: 10, output: 2 });
      await waitFor(() => seen().token_usage?.input === 10, { what: 'token change' });
      await sendOnce(d.socket, { type: 'title', session_key: 'chg:1', title: 'Named' });
      await waitFor(() => seen().title === 'Named', { what: 'title change' });
      await sendOnce(d.socket, { type: 'error', session_key: 'chg:1', message: 'first' });
      await waitFor(() => seen().error_message === 'first', { what: 'error' });
      await sendOnce(d.socket, { type: 'error', session_key: 'chg:1', message: 'second' });
      await waitFor(() => seen().error_message === 'second', { what: 'error message change' });
      const before = c.statuses().length;
      // Only durations change: the same tool restarted, the same error again. Then a visible marker change.
      await sendOnce(d.socket, { type: 'error', session_key: 'chg:1', message: 'second' });
      await sendOnce(d.socket, { type: 'title', session_key: 'chg:1', title: 'Marker' });
      await waitFor(() => seen().title === 'Marker', { what: 'marker' });
      assert.equal(c.statuses().length, before + 1, 'the timing-only change sent nothing');
    } finally {
      c.es.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'chg:1' });
    }
  });

  test('keepalive comments arrive on a quiet stream and while changes it does not see keep coming', async () => {
    const noise = await Producer.connect(d.socket);
    // Started before the stream opens: later title changes leave `global` alone, so the filtered view stays the same.
    noise.send({ type: 'agent_start', session_key: 'noise:1' });
    await waitFor(async () => (await getStatus(d.url)).sessions.some((s) => s.session_key === 'noise:1'));
    const sse = await RawSse.open(`${d.url}${STREAM}?session=quiet:1`);
    try {
      await sse.waitFor((s) => s.of('status').length === 1, 'initial snapshot');
      await sse.waitFor((s) => s.comments.includes(': keepalive'), 'a keepalive on a quiet stream');
      const count = sse.comments.length;
      const timer = setInterval(() => noise.send({ type: 'title', session_key: 'noise:1', title: String(Math.random()) }), 20);
      try {
        await sse.waitFor((s) => s.comments.length >= count + 2, 'keepalives despite changes elsewhere');
      } finally {
        clearInterval(timer);
      }
      assert.equal(sse.of('status').length, 1, 'changes to other sessions do not reach a filtered stream');
    } finally {
      sse.close();
      noise.send({ type: 'agent_end', session_key: 'noise:1' });
      await noise.end();
    }
  });

  test('filters: ?session and ?channel limit sessions (any value of one, both must match); global stays global', async () => {
    await sendOnce(
      d.socket,
      { type: 'agent_start', session_key: 'tg:1' },
      { type: 'agent_start', session_key: 'tg:2' },
      { type: 'agent_start', session_key: 'dc:1' },
    );
    const both = follow(`${d.url}${STREAM}?channel=tg&channel=dc&session=tg:2&session=dc:1`);
    const one = follow(`${d.url}${STREAM}?channel=tg&transitions=1`);
    try {
      await waitFor(() => both.statuses().length >= 1 && one.statuses().length >= 1, { what: 'snapshots' });
      assert.deepEqual(both.statuses()[0]!.sessions.map((s) => s.session_key), ['tg:2', 'dc:1']);
      assert.equal(both.statuses()[0]!.global.active_sessions >= 3, true, 'global counts every session');
      assert.deepEqual(one.statuses()[0]!.sessions.map((s) => s.session_key), ['tg:1', 'tg:2']);
      await sendOnce(d.socket, { type: 'tool_start', session_key: 'dc:1', name: 'x' }, { type: 'tool_start', session_key: 'tg:1', name: 'y' });
      await waitFor(() => one.events.some((e) => e.type === 'transition' && e.data.includes('"tg:1"')), { what: 'tg transition' });
      assert.equal(one.events.some((e) => e.type === 'transition' && e.data.includes('"dc:1"')), false, 'dc transition filtered out');
    } finally {
      both.es.close();
      one.es.close();
      await sendOnce(d.socket, ...['tg:1', 'tg:2', 'dc:1'].map((k) => ({ type: 'agent_end', session_key: k })));
    }
  });
});

describe('SSE transitions and ids', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--sse-replay', '5', '--sse-min-interval', '50'] });
  });
  after(() => d.stop());

  test('every transition in order, each with its own id, sharing one increasing sequence with status events', async () => {
    const c = follow(`${d.url}${STREAM}?transitions=1&session=run:1`);
    try {
      await waitFor(() => c.statuses().length === 1, { what: 'initial snapshot' });
      const p = await Producer.connect(d.socket);
      p.send({ type: 'agent_start', session_key: 'run:1' }, { type: 'agent_start', session_key: 'run:1' });
      p.send({ type: 'tool_start', session_key: 'run:1', name: 'bash' });
      // A 200 ms tool run must show as its own transitions.
      await new Promise((r) => setTimeout(r, 200));
      p.send({ type: 'tool_result', session_key: 'run:1' }, { type: 'agent_end', session_key: 'run:1' });
      await p.end();
      await waitFor(() => c.events.filter((e) => e.type === 'transition').length >= 5, { what: '5 transitions' });
      const transitions = c.events.filter((e) => e.type === 'transition').map((e) => JSON.parse(e.data) as Record<string, unknown>);
      assert.deepEqual(
        transitions.map((t) => [t.from, t.to, t.tool_name]),
        [
          [null, 'thinking', null],
          ['thinking', 'thinking', null],
          ['thinking', 'tool_running', 'bash'],
          ['tool_running', 'streaming', null],
          ['streaming', null, null],
        ],
      );
      for (const t of transitions) {
        assert.deepEqual(Object.keys(t), ['session_key', 'from', 'to', 'tool_name', 'error_message', 'at']);
        assert.ok(!Number.isNaN(Date.parse(String(t.at))), 'at is an ISO time');
      }
      const seqs = c.events.map((e) => seqOf(e.id));
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `ids increase: ${seqs.join(',')}`);
    } finally {
      c.es.close();
    }
  });

  test('Last-Event-ID resumes: missed transitions in order, then the snapshot', async () => {
    const first = await RawSse.open(`${d.url}${STREAM}?transitions=1&session=res:1`);
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'res:1' });
    await first.waitFor((s) => s.of('transition').length === 1, 'first transition');
    const lastId = first.of('transition')[0]!.id!;
    first.close();
    await sendOnce(d.socket, { type: 'tool_start', session_key: 'res:1', name: 'a' }, { type: 'tool_result', session_key: 'res:1' });
    await waitFor(async () => (await getStatus(d.url)).sessions.some((s) => s.session_key === 'res:1' && s.state === 'streaming'));
    const second = await RawSse.open(`${d.url}${STREAM}?transitions=1&session=res:1`, { 'Last-Event-ID': lastId });
    try {
      await second.waitFor((s) => s.of('status').length === 1, 'snapshot after replay');
      const kinds = second.messages.filter((m) => m.event !== 'message').map((m) => m.event);
      assert.deepEqual(kinds, ['transition', 'transition', 'status']);
      assert.deepEqual(
        second.of('transition').map((m) => (JSON.parse(m.data) as { to: string }).to),
        ['tool_running', 'streaming'],
      );
      assert.ok(seqOf(second.of('transition')[0]!.id) > seqOf(lastId));
    } finally {
      second.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'res:1' });
    }
  });

  test('Last-Event-ID naming the current state: no snapshot again; ?last_event_id= works on first connect', async () => {
    const currentId = async () => {
      const probe = await RawSse.open(`${d.url}${STREAM}`);
      await probe.waitFor((s) => s.of('status').length === 1, 'snapshot');
      probe.close();
      return probe.of('status')[0]!.id!;
    };
    for (const via of ['header', 'query'] as const) {
      const id = await currentId();
      const again =
        via === 'header'
          ? await RawSse.open(`${d.url}${STREAM}`, { 'Last-Event-ID': id })
          : await RawSse.open(`${d.url}${STREAM}?last_event_id=${encodeURIComponent(id)}`);
      try {
        // Connected (RawSse.open waits for the headers), with nothing to send: not even an event-less retry: block.
        await new Promise((resolve) => setTimeout(resolve, 100));
        assert.equal(again.messages.length, 0, `${via}: nothing before the change`);
        // A visible change proves the stream is live; before it, no status may have arrived.
        await sendOnce(d.socket, { type: 'agent_start', session_key: 'cur:1' });
        await again.waitFor((s) => s.of('status').length >= 1, 'the change');
        assert.equal(again.messages[0]!.retry, 2000, `${via}: retry: rides in the first event`);
        const status = JSON.parse(again.of('status')[0]!.data) as AgentStatusResponse;
        assert.ok(status.sessions.some((s) => s.session_key === 'cur:1'), `${via}: the first status is the change, not the old state again`);
      } finally {
        again.close();
        await sendOnce(d.socket, { type: 'agent_end', session_key: 'cur:1' });
      }
    }
    const id = await currentId();
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'cur:2' });
    const stale = await RawSse.open(`${d.url}${STREAM}`, { 'Last-Event-ID': id });
    try {
      await stale.waitFor((s) => s.of('status').length === 1, 'a client behind gets the current snapshot');
    } finally {
      stale.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'cur:2' });
    }
  });

  test('an id older than what is kept gets event: reset, then the snapshot', async () => {
    const first = await RawSse.open(`${d.url}${STREAM}?transitions=1`);
    await first.waitFor((s) => s.of('status').length === 1, 'snapshot');
    const id = first.of('status')[0]!.id!;
    first.close();
    // --sse-replay is 5: seven transitions push the client's position out of the ring.
    await sendOnce(d.socket, ...Array.from({ length: 7 }, (_, i) => ({ type: 'tool_start', session_key: 'old:1', name: `t${i}` })).map((e, i) => (i === 0 ? { type: 'agent_start', session_key: 'old:1' } : e)));
    const again = await RawSse.open(`${d.url}${STREAM}?transitions=1`, { 'Last-Event-ID': id });
    try {
      await again.waitFor((s) => s.of('status').length === 1, 'snapshot after reset');
      const kinds = again.messages.filter((m) => m.event !== 'message').map((m) => m.event);
      assert.deepEqual(kinds, ['reset', 'status']);
      const reset = JSON.parse(again.of('reset')[0]!.data) as { reason: string; last_event_id: string };
      assert.match(reset.reason, /no longer kept/);
      assert.equal(reset.last_event_id, id);
    } finally {
      again.close();
      await sendOnce(d.socket, { type: 'agent_end', session_key: 'old:1' });
    }
  });
});

describe('SSE across restarts, limits and shutdown', () => {
  test('ids never repeat across restarts; an id from an earlier run gets reset; clients reconnect by themselves', async () => {
    const d1 = await startDaemon();
    const port = new URL(d1.url).port;
    const socket = d1.socket;
    const c = follow(`${d1.url}${STREAM}?transitions=1`);
    let d2: TestDaemon | null = null;
    try {
      await waitFor(() => c.statuses().length === 1, { what: 'initial snapshot' });
      await sendOnce(socket, { type: 'agent_start', session_key: 'rs:1' });
      await waitFor(() => c.events.some((e) => e.type === 'transition'), { what: 'transition before restart' });
      const idsBefore = new Set(c.events.map((e) => e.id));
      const lastBefore = c.events.at(-1)!.id;
      const stopped = await d1.stop();
      assert.equal(stopped.code, 0);
      d2 = await startDaemon({ args: ['--port', port], socket });
      await waitFor(() => c.events.some((e) => e.type === 'reset'), { what: 'reset after reconnecting', timeoutMs: 10_000 });
      const reset = c.events.find((e) => e.type === 'reset')!;
      assert.match((JSON.parse(reset.data) as { reason: string }).reason, /restarted/);
      assert.equal((JSON.parse(reset.data) as { last_event_id: string }).last_event_id, lastBefore);
      await waitFor(() => c.events.filter((e) => e.type === 'status').length >= 2, { what: 'snapshot after restart' });
      await sendOnce(socket, { type: 'agent_start', session_key: 'rs:2' });
      await waitFor(() => c.events.filter((e) => e.type === 'transition').length >= 2, { what: 'transition after restart' });
      const after = c.events.filter((e) => !idsBefore.has(e.id) && e.type !== 'reset');
      assert.ok(after.length >= 2);
      for (const e of after) assert.equal(idsBefore.has(e.id), false, `id ${e.id} repeated`);
    } finally {
      c.es.close();
      await d2?.stop();
      if (d1.proc.exitCode === null) await d1.stop();
    }
  });

  test('--max-sse-clients: one more gets 503 JSON with Retry-After; gone clients are forgotten', async () => {
    const d = await startDaemon({ args: ['--max-sse-clients', '3'] });
    try {
      for (let round = 0; round < 3; round++) {
        const open = await Promise.all([0, 1, 2].map(() => RawSse.open(`${d.url}${STREAM}`)));
        assert.deepEqual(open.map((s) => s.status), [200, 200, 200]);
        const extra = await RawSse.open(`${d.url}${STREAM}`);
        await waitFor(() => extra.ended, { what: 'the 503 body' });
        assert.equal(extra.status, 503);
        assert.equal(extra.headers['retry-after'], '5');
        assert.match(extra.headers['content-type'] ?? '', /application\/json/);
        assert.match((JSON.parse(extra.body) as { detail: string }).detail, /too many SSE clients/);
        open.forEach((s) => s.close());
        // When the closed clients are forgotten, a full set connects again (next round); else 503s.
        await waitFor(async () => {
          const probe = await RawSse.open(`${d.url}${STREAM}`);
          probe.close();
          return probe.status === 200;
        }, { what: 'slots freed' });
      }
    } finally {
      await d.stop();
    }
  });

  test('SIGTERM ends streams cleanly and exits 0', async () => {
    const d = await startDaemon();
    const sse = await RawSse.open(`${d.url}${STREAM}`);
    await sse.waitFor((s) => s.of('status').length === 1, 'snapshot');
    const { code } = await d.stop('SIGTERM');
    assert.equal(code, 0);
    await waitFor(() => sse.ended, { what: 'the stream to end' });
  });
});

describe('SSE coalescing and slow clients', () => {
  test('a burst sends the first change at once and then at most one status per interval, ending on the latest', async () => {
    const d = await startDaemon({ args: ['--sse-min-interval', '3000'] });
    try {
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'burst:1' });
      const c = follow(`${d.url}${STREAM}`);
      await waitFor(() => c.statuses().length === 1, { what: 'initial snapshot' });
      const p = await Producer.connect(d.socket);
      for (let i = 1; i <= 30; i++) {
        p.send({ type: 'title', session_key: 'burst:1', title: `T${i}` });
        await new Promise((r) => setImmediate(r));
      }
      await p.end();
      await waitFor(() => c.statuses().at(-1)?.sessions[0]?.title === 'T30', { what: 'the latest title', timeoutMs: 10_000 });
      // Initial snapshot, the leading edge, and the trailing latest state: 30 changes became at most 3 events.
      assert.ok(c.statuses().length <= 3, `got ${c.statuses().length} status events`);
      c.es.close();
    } finally {
      await d.stop();
    }
  });

  test('a client that never reads does not delay the others, and is dropped when its writes stall', async () => {
    const d = await startDaemon({ args: ['--sse-write-timeout', '1', '--sse-min-interval', '0'] });
    try {
      const slow = await RawSse.open(`${d.url}${STREAM}?transitions=1`);
      slow.pause();
      const fast = follow(`${d.url}${STREAM}?transitions=1`);
      await waitFor(() => fast.statuses().length === 1, { what: 'fast client connected' });
      const p = await Producer.connect(d.socket);
      // Thirty sessions with 60 kB titles make every snapshot about 1.8 MB: the slow client's socket buffers fill fast.
      const big = 'x'.repeat(60_000);
      for (let i = 0; i < 30; i++) p.send({ type: 'agent_start', session_key: `big:${i}`, title: `${i}${big}` });
      const n = 60;
      for (let i = 0; i < n; i++) {
        p.send({ type: 'tool_start', session_key: 'big:0', name: `t${i}` });
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor(() => fast.events.filter((e) => e.type === 'transition').length >= n + 30, {
        what: 'every transition on the reading client',
        timeoutMs: 30_000,
      });
      const tools = fast.events.filter((e) => e.type === 'transition').slice(30).map((e) => (JSON.parse(e.data) as { tool_name: string }).tool_name);
      assert.deepEqual(tools, Array.from({ length: n }, (_, i) => `t${i}`));
      // The stalled client was dropped: once it reads again, its stream ends instead of going on.
      await new Promise((r) => setTimeout(r, 1500));
      slow.resume();
      await waitFor(() => slow.ended, { what: 'the slow client to be cut off', timeoutMs: 10_000 });
      assert.ok(slow.of('transition').length < n + 30, 'the slow client did not get everything');
      await p.end();
      fast.es.close();
    } finally {
      await d.stop();
    }
  });
});

/** A raw connection that sends `head` and keeps every byte that comes back, as text. */
async function rawStream(url: string, head: string): Promise<{ text: () => string; close: () => void }> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write(head);
  return { text: () => text, close: () => socket.destroy() };
}

/** A chunked body decoded strictly: every chunk is `<hex size>\r\n<size bytes>\r\n`; returns the data and what is left. */
function dechunk(body: string): { data: string; rest: string } {
  let data = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return { data, rest: body.slice(at) };
    const size = body.slice(at, eol);
    assert.match(size, /^[0-9a-f]+$/, `a chunk size line, at ${at}: ${JSON.stringify(body.slice(at, at + 40))}`);
    const n = parseInt(size, 16);
    if (body.length < eol + 2 + n + 2) return { data, rest: body.slice(at) };
    assert.equal(body.slice(eol + 2 + n, eol + 4 + n), '\r\n', 'each chunk ends with CRLF');
    data += body.slice(eol + 2, eol + 2 + n);
    at = eol + 4 + n;
  }
}

describe('SSE framing on the wire', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ args: ['--sse-heartbeat', '0.2', '--sse-min-interval', '0'] });
  });
  after(() => d.stop());

  test('HTTP/1.1: every event, transitions and keepalives included, is one well-formed chunk', async () => {
    const { host } = new URL(d.url);
    const raw = await rawStream(d.url, `GET ${STREAM}?transitions=1 HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    try {
      await waitFor(() => raw.text().includes('\r\n\r\n'), { what: 'the headers' });
      for (let i = 0; i < 3; i++) {
        await sendOnce(d.socket, { type: 'agent_start', session_key: `wire:${i}`, title: `Wire ${i}` }, { type: 'tool_start', session_key: `wire:${i}`, name: 'bash' });
        await waitFor(() => dechunk(raw.text().slice(raw.text().indexOf('\r\n\r\n') + 4)).data.includes(`"session_key":"wire:${i}","from"`), { what: `the transitions of wire:${i}` });
      }
      // A keepalive comment after the events (--sse-heartbeat 0.2).
      const body = () => dechunk(raw.text().slice(raw.text().indexOf('\r\n\r\n') + 4));
      const before = body().data.length;
      await waitFor(() => body().data.slice(before).includes(':'), { what: 'a keepalive' });
      const head = raw.text().slice(0, raw.text().indexOf('\r\n\r\n'));
      assert.match(head, /^HTTP\/1\.1 200 /);
      assert.match(head, /\r\ntransfer-encoding: chunked/i);
      const { data } = body();
      assert.ok(data.startsWith('retry: 2000\n'), 'the first event carries retry:');
      const events = data.split('\n\n').filter((block) => block.includes('event: '));
      assert.ok(events.filter((b) => b.includes('event: transition')).length >= 6, 'every transition arrived');
      for (const block of events) assert.match(block, /(^|\n)id: \S+\nevent: (status|transition)\ndata: \{/, block.slice(0, 80));
    } finally {
      raw.close();
    }
  });

  test('HTTP/1.0 (no chunked encoding): the events arrive as a plain body', async () => {
    const { host } = new URL(d.url);
    const raw = await rawStream(d.url, `GET ${STREAM} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
    try {
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'plain:1', title: 'Plain' });
      await waitFor(() => raw.text().includes('"session_key":"plain:1"'), { what: 'a status with plain:1' });
      await sendOnce(d.socket, { type: 'agent_start', session_key: 'plain:2', title: 'Plain 2' });
      await waitFor(() => raw.text().includes('"session_key":"plain:2"'), { what: 'a status with plain:2' });
      const text = raw.text();
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      assert.doesNotMatch(head, /transfer-encoding/i);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      assert.ok(body.startsWith('retry: 2000\n'), body.slice(0, 40));
      for (const block of body.split('\n\n').filter(Boolean)) assert.match(block, /^(retry: 2000\n)?id: \S+\nevent: status\ndata: \{|^:/, block.slice(0, 80));
    } finally {
      raw.close();
    }
  });
});
