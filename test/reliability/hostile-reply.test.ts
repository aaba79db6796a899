/**
 * No reply may stop an emitter (issue 13, item 6): a fake daemon answers every connection with 100,000 `[` (which
 * made the Python emitter's reader raise RecursionError and end its thread for good); then it goes away, the real
 * daemon starts on the same socket, and the emitter reports its session there.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { StatusEmitter } from '../../protocol/emitter.ts';
import { cleanEnv, ROOT, session, startDaemon, tempDir, waitFor, waitForStatus } from '../helpers/daemon.ts';
import { skipWithout } from '../helpers/tools.ts';

const HOSTILE = `${'['.repeat(100_000)}\n`;

/** Answers every connection with the hostile reply at once; counts the connections. */
async function hostileDaemon(path: string): Promise<{ connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.write(HOSTILE);
  });
  server.listen(path);
  await once(server, 'listening');
  return {
    connections: () => connections,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

test('the Python emitter survives a hostile reply and reports to the real daemon when it returns', { skip: skipWithout('python3', 'python3') }, async () => {
  const socket = join(tempDir(), 'ingest.sock');
  const fake = await hostileDaemon(socket);
  const script = String.raw`
import sys, time
from pocketpaw_status import StatusEmitter
e = StatusEmitter(socket_path=sys.argv[1], agent="hostile-reply", max_backoff=0.1)
e.emit({"type": "agent_start", "session_key": "py:hostile", "title": "still here"})
sys.stdin.read()
e.close(0.5)
`;
  const child = spawn('python3', ['-c', script, socket], {
    cwd: ROOT,
    env: cleanEnv({ PYTHONPATH: join(ROOT, 'protocol/python') }),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let d: Awaited<ReturnType<typeof startDaemon>> | null = null;
  try {
    // It came back for more: the reader's exception dropped the connection instead of ending the thread.
    await waitFor(() => fake.connections() >= 2, { what: 'the emitter to reconnect after the hostile reply', timeoutMs: 10_000 });
    await fake.close();
    d = await startDaemon({ socket });
    await waitForStatus(d.url, (s) => session(s, 'py:hostile')?.title === 'still here', 'the Python emitter\'s session on the real daemon');
  } finally {
    child.stdin.end();
    await once(child, 'exit');
    await d?.stop();
  }
  assert.doesNotMatch(stderr, /Traceback/);
});

test('the TypeScript emitter survives a hostile reply and reports to the real daemon when it returns', async () => {
  const socket = join(tempDir(), 'ingest.sock');
  const fake = await hostileDaemon(socket);
  const emitter = new StatusEmitter({ socket, agent: 'hostile-reply', maxBackoffMs: 100 });
  let d: Awaited<ReturnType<typeof startDaemon>> | null = null;
  try {
    emitter.emit({ type: 'agent_start', session_key: 'ts:hostile', title: 'still here' });
    await waitFor(() => fake.connections() >= 1 && emitter.rejected >= 1, { what: 'the hostile reply to arrive' });
    await fake.close();
    d = await startDaemon({ socket });
    await waitForStatus(d.url, (s) => session(s, 'ts:hostile')?.title === 'still here', 'the TypeScript emitter\'s session on the real daemon');
    assert.equal(emitter.dropped, 0);
  } finally {
    await emitter.close(500);
    await d?.stop();
  }
});
