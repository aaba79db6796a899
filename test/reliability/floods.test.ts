/**
 * Floods: many producers, SSE connection churn, and REST polling during an event flood.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { AgentStatusResponse } from '../../protocol/snapshot.ts';
import { getStatus, Producer, startDaemon, waitFor } from '../helpers/daemon.ts';
import { metric } from '../helpers/metrics.ts';

test('1,000 agents at once; --max-producers refuses one more with a line saying why', async () => {
  const d = await startDaemon({ args: ['--max-producers', '1000'] });
  const producers: Producer[] = [];
  // Agents (hello): at the limit a newcomer would otherwise take the place of the longest-idle non-agent connection.
  const agent = async () => {
    const p = await Producer.connect(d.socket);
    p.send({ type: 'hello', agent: 'flood' });
    return p;
  };
  try {
    for (let i = 0; i < 1000; i += 100) {
      producers.push(...(await Promise.all(Array.from({ length: 100 }, agent))));
      await waitFor(async () => (await metric(d.url, 'pocketpaw_status_producers_connected')) === producers.length);
    }
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_producers_connected')) === 1000, { what: '1,000 producers' });
    // Counted, not read from the log: 'agent connected' lines are rate-limited (20 a window, then summed up).
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_events_ingested_total', { type: 'hello' })) === 1000, { what: '1,000 hellos', timeoutMs: 30_000 });
    const extra = await Producer.connect(d.socket);
    await extra.closed;
    assert.equal(extra.replies.length, 1);
    assert.match((JSON.parse(extra.replies[0]!) as { error: string }).error, /too many producers connected \(limit 1000\)/);
    assert.equal(await metric(d.url, 'pocketpaw_status_producers_refused_total'), 1);

    producers.forEach((p, i) => p.send({ type: 'agent_start', session_key: `flood:${i}` }));
    await waitFor(async () => (await getStatus(d.url)).global.active_sessions === 1000, { what: 'a session from every producer' });
  } finally {
    await Promise.all(producers.map((p) => p.end()));
    await d.stop();
  }
});

test('10,000 SSE connect and disconnect cycles leave no client behind and memory where it was', async () => {
  const d = await startDaemon({ instrumented: true });
  try {
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const cycle = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.get(`${d.url}/api/v1/agent/status/stream?transitions=1`, { agent }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? resolve() : reject(e)));
      });
    const run = async (count: number) => {
      for (let i = 0; i < count; i += 50) await Promise.all(Array.from({ length: 50 }, cycle));
    };
    await run(500); // warm-up: JIT, pools and buffers reach their working size
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_clients_connected')) === 0, { what: 'warm-up clients gone' });
    const start = await d.memory();
    await run(10_000);
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_clients_connected')) === 0, { what: 'no client left' });
    assert.equal(await metric(d.url, 'pocketpaw_status_sse_clients_total'), 10_500);
    const end = await d.memory();
    assert.ok(end.heapUsed <= start.heapUsed * 1.2, `heap ${start.heapUsed} -> ${end.heapUsed}`);
    agent.destroy();
  } finally {
    await d.stop();
  }
});

test('100,000 REST requests while 1,000,000 events stream in: every response is a valid snapshot', async () => {
  const d = await startDaemon();
  try {
    const producer = net.connect({ path: d.socket });
    await once(producer, 'connect');
    const sessions = 20;
    const chunk = Buffer.from(
      Array.from({ length: 10_000 }, (_, i) => {
        const key = `rest:${i % sessions}`;
        const kind = Math.floor(i / sessions) % 4;
        const event =
          kind === 0
            ? { type: 'agent_start', session_key: key, title: `run ${i}` }
            : kind === 1
              ? { type: 'tool_start', session_key: key, name: 'bash' }
              : kind === 2
                ? { type: 'token_usage', session_key: key, input_tokens: i, output_tokens: Math.floor(i / 2) }
                : { type: 'tool_result', session_key: key, status: 'success' };
        return `${JSON.stringify(event)}\n`;
      }).join(''),
    );
    let chunksSent = 0;
    const sendChunk = async () => {
      if (chunksSent >= 100) return;
      chunksSent++;
      if (!producer.write(chunk)) await once(producer, 'drain');
    };

    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    let done = 0;
    let invalid = 0;
    const get = () =>
      new Promise<void>((resolve, reject) => {
        http
          .get(`${d.url}/api/v1/agent/status`, { agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => {
              if (res.statusCode !== 200 || !AgentStatusResponse.safeParse(JSON.parse(body)).success) invalid++;
              done++;
              resolve();
            });
          })
          .on('error', reject);
      });
    // Interleave: every 1,000 responses, another 10,000 events, so polling and the flood overlap throughout.
    for (let batch = 0; batch < 100; batch++) {
      await Promise.all([sendChunk(), ...Array.from({ length: 1000 }, get)]);
    }
    while (chunksSent < 100) await sendChunk();
    producer.end();
    assert.equal(done, 100_000);
    assert.equal(invalid, 0);
    await waitFor(async () => (await metric(d.url, 'pocketpaw_status_events_ingested_total')) === 1_000_000, {
      what: 'all 1,000,000 events ingested',
      timeoutMs: 60_000,
    });
    assert.equal(await metric(d.url, 'pocketpaw_status_lines_rejected_total'), 0);
    agent.destroy();
  } finally {
    await d.stop();
  }
});
