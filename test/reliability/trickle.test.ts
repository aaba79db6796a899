/**
 * One-byte trickle (issue 13, item 2): producers that write an unterminated line one byte per read must cost about
 * the bytes they sent, not a Buffer object per read. With a 64 MB heap, 64 connections trickling 40,000 bytes each
 * (2.5 million reads) leave the daemon up, serving and ingesting.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { getStatus, sendOnce, startDaemon, waitForStatus, session } from '../helpers/daemon.ts';

const CONNECTIONS = 64;
const BYTES_EACH = 40_000;

test('64 connections trickling 40,000 bytes each, one byte per write, do not exhaust a 64 MB heap', { timeout: 600_000 }, async () => {
  const d = await startDaemon({
    env: { NODE_OPTIONS: '--max-old-space-size=64' },
    // The trickle is an unfinished line for a minute or more: keep --line-timeout out of the way (not under test here).
    args: ['--line-timeout', '600', '--producer-idle-timeout', '600'],
  });
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = net.connect({ path: d.socket });
      s.on('error', () => {});
      await once(s, 'connect');
      sockets.push(s);
    }
    const byte = Buffer.from('x');
    // Round robin, one byte per connection per turn of the event loop: the daemon reads each byte on its own.
    for (let sent = 0; sent < BYTES_EACH; sent++) {
      for (const s of sockets) s.write(byte);
      if (sockets.some((s) => s.writableNeedDrain)) await Promise.all(sockets.filter((s) => s.writableNeedDrain).map((s) => once(s, 'drain')));
      else await new Promise((r) => setTimeout(r, 1));
      if (d.proc.exitCode !== null || d.proc.signalCode !== null) break;
    }
    assert.equal(d.proc.exitCode, null, `the daemon died during the trickle; stderr:\n${d.stderr.slice(-20).join('\n')}`);
    assert.equal(d.proc.signalCode, null, `the daemon died during the trickle; stderr:\n${d.stderr.slice(-20).join('\n')}`);

    // Still serving and ingesting, with every trickling connection still open.
    assert.equal((await getStatus(d.url)).global.state, 'idle');
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'trickle:after' });
    await waitForStatus(d.url, (s) => session(s, 'trickle:after') !== undefined, 'the session sent after the trickle');
    assert.ok(sockets.every((s) => !s.destroyed), 'the trickling connections were not cut to survive');
  } finally {
    for (const s of sockets) s.destroy();
    await d.stop();
  }
});
