import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { once } from 'node:events';
import { LISTEN_FDS_START, pickSockets, takeListenFds, unixSocketPath } from './listen-fds.ts';

const PID = 4242;

test('descriptors meant for this process are numbered from 3 with their names', () => {
  const env = { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'ingest:http', OTHER: 'x' };
  assert.deepEqual(takeListenFds(env, PID), [
    { fd: LISTEN_FDS_START, name: 'ingest' },
    { fd: LISTEN_FDS_START + 1, name: 'http' },
  ]);
});

test('the variables are removed whether or not they were meant for this process', () => {
  for (const forPid of [String(PID), '1']) {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: forPid, LISTEN_FDS: '1', LISTEN_FDNAMES: 'ingest', OTHER: 'x' };
    takeListenFds(env, PID);
    assert.deepEqual(env, { OTHER: 'x' });
  }
});

test('descriptors meant for another process, or no LISTEN_PID at all, are ignored', () => {
  assert.deepEqual(takeListenFds({ LISTEN_PID: '1', LISTEN_FDS: '2', LISTEN_FDNAMES: 'ingest:http' }, PID), []);
  assert.deepEqual(takeListenFds({ LISTEN_FDS: '2', LISTEN_FDNAMES: 'ingest:http' }, PID), []);
  assert.deepEqual(takeListenFds({ LISTEN_PID: `${PID}x`, LISTEN_FDS: '2' }, PID), []);
});

test('descriptors without names are called "unknown", as sd_listen_fds_with_names(3) does', () => {
  assert.deepEqual(takeListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '1' }, PID), [{ fd: 3, name: 'unknown' }]);
});

test('inconsistent variables are refused with a message that says where to look', () => {
  assert.throws(() => takeListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: 'two' }, PID), /LISTEN_FDS .*socket units/);
  assert.throws(() => takeListenFds({ LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'ingest' }, PID), /names 1 descriptors but LISTEN_FDS is 2/);
});

test('the sockets are picked by name, in whatever order systemd passed them', () => {
  assert.deepEqual(pickSockets([]), { ingest: null, http: null, unknown: [] });
  assert.deepEqual(
    pickSockets([
      { fd: 3, name: 'http' },
      { fd: 4, name: 'ingest' },
    ]),
    { ingest: 4, http: 3, unknown: [] },
  );
  // Only the ingest socket from systemd: HTTP binds --host/--port as usual.
  assert.deepEqual(pickSockets([{ fd: 3, name: 'ingest' }]), { ingest: 3, http: null, unknown: [] });
  assert.deepEqual(
    pickSockets([
      { fd: 3, name: 'ingest' },
      { fd: 4, name: 'metrics' },
    ]),
    { ingest: 3, http: null, unknown: [{ fd: 4, name: 'metrics' }] },
  );
});

test('sockets the daemon cannot tell apart are refused, naming FileDescriptorName=', () => {
  assert.throws(() => pickSockets([{ fd: 3, name: 'unknown' }, { fd: 4, name: 'unknown' }]), /FileDescriptorName=ingest/);
  assert.throws(() => pickSockets([{ fd: 3, name: 'ingest' }, { fd: 4, name: 'ingest' }]), /several sockets named ingest/);
});

test('the path of a listening Unix socket is found from its descriptor; anything else gives null', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pps-fds-'));
  const path = join(dir, 'ingest.sock');
  const server = net.createServer().listen(path);
  await once(server, 'listening');
  try {
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    assert.equal(unixSocketPath(fd), path);
    assert.equal(unixSocketPath(0), null); // stdin is not a Unix socket here (it may be a pipe or /dev/null)
    assert.equal(unixSocketPath(99_999), null);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
