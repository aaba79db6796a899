/**
 * SIGTERM under load: 1,000 SSE clients and 10 producers connected; the daemon drains and exits 0 on its own
 * (not through its hard deadline), removing the socket file it created.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { Producer, startDaemon, waitFor } from '../helpers/daemon.ts';
import { metric } from '../helpers/metrics.ts';

test('SIGTERM with 1,000 SSE clients and 10 producers exits 0 cleanly and removes the socket', async () => {
  const d = await startDaemon();
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const ended: boolean[] = [];
  const requests: http.ClientRequest[] = [];
  for (let i = 0; i < 1000; i++) {
    const index = i;
    ended.push(false);
    const req = http.get(`${d.url}/api/v1/agent/status/stream`, { agent }, (res) => {
      res.resume();
      res.on('end', () => (ended[index] = true));
      res.on('close', () => (ended[index] = true));
    });
    req.on('error', () => (ended[index] = true));
    requests.push(req);
  }
  const producers = await Promise.all(Array.from({ length: 10 }, () => Producer.connect(d.socket)));
  producers.forEach((p, i) => p.send({ type: 'hello', agent: `p${i}` }, { type: 'agent_start', session_key: `sig:${i}` }));
  await waitFor(async () => (await metric(d.url, 'pocketpaw_status_sse_clients_connected')) === 1000, { what: '1,000 streams', timeoutMs: 30_000 });
  assert.equal(await metric(d.url, 'pocketpaw_status_producers_connected'), 10);

  const { code, signal, socketLeft } = await d.stop('SIGTERM');
  assert.equal(signal, null);
  assert.equal(code, 0);
  assert.equal(socketLeft, false, 'the socket file is removed');
  const logs = d.logs().map((l) => l.msg);
  assert.ok(logs.includes('stopped'), 'the drain completed');
  assert.ok(!logs.some((m) => m.includes('deadline')), 'not cut short by the hard deadline');
  await waitFor(() => ended.every(Boolean), { what: 'every stream to end' });
  await Promise.all(producers.map((p) => p.closed));
  agent.destroy();
});

test('SIGTERM the moment the ready line appears still drains, exits 0 and removes the socket', async () => {
  // The ready line is logged before startDaemon() returns: the handlers must already be there.
  for (let i = 0; i < 5; i++) {
    const d = await startDaemon();
    const { code, signal, socketLeft } = await d.stop('SIGTERM');
    assert.deepEqual({ code, signal, socketLeft }, { code: 0, signal: null, socketLeft: false });
  }
});
