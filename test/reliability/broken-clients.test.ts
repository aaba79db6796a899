/**
 * Slow and broken HTTP clients: none of them may delay anyone else, and the daemon's memory stays bounded.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { getStatus, Producer, startDaemon, waitFor, type TestDaemon } from '../helpers/daemon.ts';
import { series, scrape } from '../helpers/metrics.ts';
import { RawSse } from '../helpers/sse.ts';

const STREAM = '/api/v1/agent/status/stream';

/** Sends raw bytes on a fresh TCP connection and collects the answer until the server closes it. */
function raw(url: string, bytes: string | Buffer, options: { end?: boolean } = {}): { answer: Promise<string>; socket: net.Socket } {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (answer += d));
  socket.on('error', () => {});
  socket.write(bytes);
  if (options.end) socket.end();
  return { socket, answer: new Promise((resolve) => socket.on('close', () => resolve(answer))) };
}

function jsonBodyOf(answer: string): { status: number; contentType: string; body: unknown } {
  const [head, body] = answer.split('\r\n\r\n', 2) as [string, string];
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const contentType = /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '';
  return { status, contentType, body: JSON.parse(body) as unknown };
}

describe('broken HTTP clients', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.stop());

  test('headers over the limit: 431 with a JSON body', async () => {
    const { answer } = raw(d.url, `GET /api/v1/agent/status HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    const r = jsonBodyOf(await answer);
    assert.equal(r.status, 431);
    assert.match(r.contentType, /application\/json/);
    assert.ok(typeof (r.body as { detail: unknown }).detail === 'string');
  });

  test('a malformed request line, URL or query: 400 with a JSON body', async () => {
    for (const request of [
      'GARBAGE\r\n\r\n',
      'GET /api/v1/agent/status?session=%E0%A4%A HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      'GET /%%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    ]) {
      const r = jsonBodyOf(await raw(d.url, request).answer);
      assert.equal(r.status, 400, request);
      assert.match(r.contentType, /application\/json/);
      assert.match((r.body as { detail: string }).detail, /Malformed/);
    }
  });

  test('1 MB sent to GET routes is answered or closed; other requests carry on', async () => {
    const body = Buffer.alloc(1024 * 1024, 'x');
    const withBody = raw(d.url, Buffer.concat([Buffer.from(`GET /api/v1/agent/status HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
    const longUrl = raw(d.url, `GET /api/v1/agent/status?session=${'a'.repeat(1024 * 1024)} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    const streamWithBody = raw(d.url, Buffer.concat([Buffer.from(`GET ${STREAM} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    assert.equal((await getStatus(d.url)).global.state, 'idle', 'the daemon answers others meanwhile');
    assert.match(await withBody.answer, /^HTTP\/1\.1 200 /);
    assert.match(await longUrl.answer, /^HTTP\/1\.1 431 /);
    await waitFor(() => streamWithBody.socket.bytesRead > 0, { what: 'the stream to answer' });
    streamWithBody.socket.destroy();
  });

  test('a request that stops half-way delays nobody and is closed by the server', async () => {
    const stalled = raw(d.url, 'GET /api/v1/agent/status HTTP/1.1\r\nHost: localhost\r\nX-Half');
    for (let i = 0; i < 20; i++) assert.equal((await getStatus(d.url)).global.state, 'idle');
    const answer = await stalled.answer; // the headers timeout closes it
    if (answer !== '') assert.match(answer, /^HTTP\/1\.1 408 /);
  });
});

describe('a client that never reads beside 100 that do', () => {
  test('the readers get every change; the daemon buffers nothing without bound', async () => {
    const d = await startDaemon({ instrumented: true, args: ['--sse-min-interval', '0', '--sse-write-timeout', '600'] });
    const readers: RawSse[] = [];
    try {
      const p = await Producer.connect(d.socket);
      // Twenty sessions with 50 kB titles: every status event is about 1 MB.
      const big = 'y'.repeat(50_000);
      for (let i = 0; i < 20; i++) p.send({ type: 'agent_start', session_key: `slow:${i}`, title: `${i}${big}` });
      await waitFor(async () => (await getStatus(d.url)).global.active_sessions === 20, { what: '20 sessions' });

      const slow = await RawSse.open(`${d.url}${STREAM}?transitions=1`);
      slow.pause();
      for (let i = 0; i < 100; i++) readers.push(await RawSse.open(`${d.url}${STREAM}?transitions=1&session=slow:0`));
      await waitFor(() => readers.every((r) => r.of('status').length === 1), { what: 'readers connected' });
      const baseline = await d.memory();

      const n = 200;
      for (let i = 0; i < n; i++) {
        p.send({ type: 'tool_start', session_key: 'slow:0', name: `t${i}` }, { type: 'title', session_key: `slow:${i % 20}`, title: `${i}${big}` });
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor(() => readers.every((r) => r.of('transition').length === n), { what: 'every transition on every reader', timeoutMs: 30_000 });
      for (const r of readers) {
        assert.deepEqual(
          r.of('transition').map((m) => (JSON.parse(m.data) as { tool_name: string }).tool_name),
          Array.from({ length: n }, (_, i) => `t${i}`),
        );
      }
      const loaded = await d.memory();
      // Unbounded buffering would hold ~n megabytes of status frames for the slow client.
      const grown = loaded.heapUsed + loaded.external - (baseline.heapUsed + baseline.external);
      assert.ok(grown < 40 * 1024 * 1024, `memory grew by ${(grown / 1048576).toFixed(1)} MB`);
      const text = await scrape(d.url);
      assert.equal(series(text, 'pocketpaw_status_sse_clients_connected'), 101, 'the slow client is still connected, not dropped');
      slow.close();
      await p.end();
    } finally {
      readers.forEach((r) => r.close());
      await d.stop();
    }
  });
});
