/**
 * SSE amplification (issue 13 item 5): many streams with their own filters, or streams that never read, cost the
 * daemon bounded work and bounded memory, and never the other clients their updates.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSource } from 'eventsource';
import { Producer, startDaemon, waitFor } from '../helpers/daemon.ts';
import { metric } from '../helpers/metrics.ts';
import { RawSse } from '../helpers/sse.ts';

const STREAM = '/api/v1/agent/status/stream';

/** An eventsource client that records the status and transition events it gets. */
function follow(url: string): { es: EventSource; statuses: string[]; transitions: string[] } {
  const es = new EventSource(url);
  const statuses: string[] = [];
  const transitions: string[] = [];
  es.addEventListener('status', (e: MessageEvent) => statuses.push(String(e.data)));
  es.addEventListener('transition', (e: MessageEvent) => transitions.push(String(e.data)));
  return { es, statuses, transitions };
}

test('clients whose filters differ only in order or repetition share one rendering per change', async () => {
  const d = await startDaemon({ args: ['--sse-min-interval', '0'] });
  const clients: ReturnType<typeof follow>[] = [];
  try {
    const p = await Producer.connect(d.socket);
    p.send({ type: 'agent_start', session_key: 'a:1' }, { type: 'agent_start', session_key: 'b:2' }, { type: 'agent_start', session_key: 'c:3' });
    for (const query of ['session=a:1&session=b:2', 'session=b:2&session=a:1', 'session=a:1&session=b:2&session=a:1', 'channel=a&channel=b&session=a:1&session=b:2', 'channel=b&session=b:2&channel=a&session=a:1']) {
      clients.push(follow(`${d.url}${STREAM}?${query}`));
    }
    await waitFor(() => clients.every((c) => c.statuses.some((s) => s.includes('"b:2"'))), { what: 'every client shows its sessions' });
    const before = await metric(d.url, 'pocketpaw_status_sse_renderings_total');

    p.send({ type: 'tool_start', session_key: 'a:1', name: 'bash' });
    await waitFor(() => clients.every((c) => c.statuses.at(-1)?.includes('"tool_name":"bash"')), { what: 'every client shows the change' });
    // Two distinct filters (sessions a:1, b:2; the same with channels a, b): two renderings for five clients.
    assert.equal((await metric(d.url, 'pocketpaw_status_sse_renderings_total')) - before, 2);
    assert.equal(await metric(d.url, 'pocketpaw_status_sse_views'), 2);
    for (const c of clients) assert.doesNotMatch(c.statuses.at(-1)!, /"c:3"/);
    await p.end();
  } finally {
    for (const c of clients) c.es.close();
    await d.stop();
  }
});

test('a stream that never reads is dropped past --sse-max-client-bytes while a reading one gets every event', async () => {
  // No write timeout to speak of: only the byte bound can drop the client here.
  const d = await startDaemon({ args: ['--sse-write-timeout', '3600', '--sse-min-interval', '0', '--sse-max-client-bytes', '65536'] });
  try {
    const slow = await RawSse.open(`${d.url}${STREAM}?transitions=1`);
    slow.pause();
    const fast = follow(`${d.url}${STREAM}?transitions=1`);
    await waitFor(() => fast.statuses.length === 1, { what: 'the reading client connected' });
    const p = await Producer.connect(d.socket);
    // Thirty sessions with 60 kB titles make every snapshot about 1.8 MB: the slow client's socket buffers fill fast.
    const big = 'x'.repeat(60_000);
    for (let i = 0; i < 30; i++) p.send({ type: 'agent_start', session_key: `big:${i}`, title: `${i}${big}` });
    const n = 600; // ~110 kB of transition frames: past the bound, and fewer than --sse-replay (1,000)
    for (let i = 0; i < n; i++) {
      p.send({ type: 'tool_start', session_key: 'big:0', name: `t${i}` });
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => fast.transitions.length >= n + 30, { what: 'every transition on the reading client', timeoutMs: 30_000 });
    const tools = fast.transitions.slice(30).map((t) => (JSON.parse(t) as { tool_name: string }).tool_name);
    assert.deepEqual(tools, Array.from({ length: n }, (_, i) => `t${i}`));
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_clients_dropped_total', { reason: 'bytes_overflow' })) === 1, {
      what: 'the never-reading client dropped for its bytes',
    });
    assert.equal(await metric(d.url, 'pocketpaw_status_sse_clients_connected'), 1, 'the reading client is still connected');
    slow.resume();
    await waitFor(() => slow.ended, { what: 'the slow stream to end once read', timeoutMs: 10_000 });
    assert.ok(await metric(d.url, 'pocketpaw_status_sse_queued_bytes') >= 0);
    await p.end();
    fast.es.close();
  } finally {
    await d.stop();
  }
});

test('past --sse-max-total-bytes the streams paused longest are dropped (logged once), the total is reported, and a reading stream carries on', async () => {
  const d = await startDaemon({ args: ['--sse-write-timeout', '3600', '--sse-min-interval', '0', '--sse-max-total-bytes', '1000000', '--sse-heartbeat', '0.2'] });
  try {
    // Three never-reading streams, each with its own filter (three renderings per change).
    const slow = await Promise.all(['channel=big', 'channel=big&channel=x', 'channel=big&channel=y'].map((q) => RawSse.open(`${d.url}${STREAM}?${q}`)));
    for (const s of slow) s.pause();
    const fast = follow(`${d.url}${STREAM}?transitions=1`);
    await waitFor(() => fast.statuses.length === 1, { what: 'the reading client connected' });
    const p = await Producer.connect(d.socket);
    const big = 'x'.repeat(60_000);
    for (let i = 0; i < 30; i++) p.send({ type: 'agent_start', session_key: `big:${i}`, title: `${i}${big}` });
    for (let i = 0; i < 100; i++) {
      p.send({ type: 'title', session_key: 'big:0', title: `0-${i}${big}` });
      await new Promise((r) => setTimeout(r, 10));
    }
    // Each paused stream holds the rest of a ~1.8 MB snapshot: together past 1 MB, so all but what fits are dropped.
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_clients_dropped_total', { reason: 'hub_bytes_overflow' })) >= 2, {
      what: 'paused streams dropped for the total',
      timeoutMs: 20_000,
    });
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_queued_bytes')) <= 1_000_000 + 2_000_000, { what: 'the total reported within bounds' });
    const dropLines = d.logs().filter((l) => l.msg.startsWith('dropped a slow SSE client') && l.reason === 'hub_bytes_overflow');
    assert.equal(dropLines.length, 1, 'drops are logged once per reason per 10 s, not once per client');
    p.send({ type: 'title', session_key: 'big:0', title: 'last' });
    await waitFor(() => fast.statuses.at(-1)?.includes('"title":"last"'), { what: 'the reading client sees the last change', timeoutMs: 20_000 });
    assert.equal(fast.es.readyState, EventSource.OPEN);
    await p.end();
    fast.es.close();
    for (const s of slow) s.resume();
  } finally {
    await d.stop();
  }
});
