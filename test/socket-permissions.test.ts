/**
 * Who may write events (issue 4): the ingest socket's mode (`--socket-mode`, default 0660) and group
 * (`--socket-group`), checked on the file and end to end by connecting as another user.
 *
 * Giving a file to a group the daemon's user is not in, and switching users, need root (the CI container runs the
 * tests as root); as another user these tests are skipped with that reason, not faked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli, startDaemon, waitForStatus, session } from './helpers/daemon.ts';

const asRoot = process.getuid?.() === 0;
const needsRoot = asRoot ? false : 'needs root: chown to a group the user is not in, and connecting as another user';

const dir = mkdtempSync(join(tmpdir(), 'pps-perm-'));
// Other users must be able to walk to the sockets below (the test connects as one).
chmodSync(dir, 0o755);
after(() => rmSync(dir, { recursive: true, force: true }));

/** A group from /etc/group other than the daemon's own (gid 0 as root): `nogroup`, else `daemon`. */
function otherGroup(): { name: string; gid: number } {
  const lines = readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':'));
  for (const name of ['nogroup', 'daemon', 'users']) {
    const line = lines.find((f) => f[0] === name && /^\d+$/.test(f[2] ?? ''));
    if (line && Number(line[2]) !== process.getgid?.()) return { name, gid: Number(line[2]) };
  }
  throw new Error('no group other than the current one in /etc/group');
}

let n = 0;
function socketPath(): string {
  return join(dir, `case-${n++}`, 'run', 'ingest.sock');
}

/** Connects to `path` as uid 65534 with primary group `gid` (no supplementary groups) and sends one event. */
async function connectAs(gid: number, path: string, sessionKey: string): Promise<string> {
  const script = `
    const s = require('node:net').connect(process.argv[1]);
    s.on('connect', () => s.end(JSON.stringify({ type: 'agent_start', session_key: process.argv[2] }) + '\\n', () => console.log('connected')));
    s.on('error', (e) => console.log(e.code));`;
  const child = spawn(process.execPath, ['-e', script, path, sessionKey], { uid: 65534, gid, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  await once(child, 'exit');
  return out.trim();
}

describe('the ingest socket file', () => {
  test('default mode 0660, the daemon\'s own group', async () => {
    const d = await startDaemon({ socket: socketPath() });
    try {
      const st = statSync(d.socket);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660);
      assert.equal(st.gid, process.getgid?.());
    } finally {
      await d.stop();
    }
  });

  test('--socket-group NAME gives the socket, and the folder the daemon created for it, to that group', { skip: needsRoot }, async () => {
    const group = otherGroup();
    const d = await startDaemon({ socket: socketPath(), args: ['--socket-group', group.name] });
    try {
      const st = statSync(d.socket);
      assert.equal(st.gid, group.gid);
      assert.equal(st.mode & 0o777, 0o660);
      const folder = statSync(join(d.socket, '..'));
      assert.equal(folder.gid, group.gid, 'the created folder has the group too, or members could not reach the socket');
      assert.equal(folder.mode & 0o777, 0o750);
      assert.equal(statSync(join(d.socket, '../..')).gid, group.gid, 'every folder created for it');
      assert.notEqual(statSync(dir).gid, group.gid, 'a folder that existed before is left alone');
    } finally {
      await d.stop();
    }
  });

  test('a numeric gid, from POCKETPAW_STATUS_SOCKET_GROUP, with --socket-mode', { skip: needsRoot }, async () => {
    const d = await startDaemon({ socket: socketPath(), args: ['--socket-mode', '0620'], env: { POCKETPAW_STATUS_SOCKET_GROUP: '4242' } });
    try {
      const st = statSync(d.socket);
      assert.equal(st.gid, 4242);
      assert.equal(st.mode & 0o777, 0o620);
    } finally {
      await d.stop();
    }
  });

  test('an existing folder keeps its group and mode; only the socket changes', { skip: needsRoot }, async () => {
    const group = otherGroup();
    const path = socketPath();
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o711 });
    chmodSync(join(path, '..'), 0o711);
    const d = await startDaemon({ socket: path, args: ['--socket-group', group.name] });
    try {
      assert.equal(statSync(path).gid, group.gid);
      const folder = statSync(join(path, '..'));
      assert.equal(folder.mode & 0o777, 0o711);
      assert.notEqual(folder.gid, group.gid);
    } finally {
      await d.stop();
    }
  });

  test('an unknown group stops the start (exit 2), naming the flag or the variable', async () => {
    const flag = await runCli(['serve', '--port', '0', '--socket', socketPath(), '--socket-group', 'no-such-group-pps']);
    assert.equal(flag.code, 2, flag.stderr);
    assert.match(flag.stderr.split('\n')[0]!, /--socket-group "no-such-group-pps": no group named no-such-group-pps/);
    const env = await runCli(['serve', '--port', '0', '--socket', socketPath()], { env: { POCKETPAW_STATUS_SOCKET_GROUP: 'no-such-group-pps' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr.split('\n')[0]!, /POCKETPAW_STATUS_SOCKET_GROUP/);
  });
});

describe('who may write events, end to end', () => {
  test('another user in the socket group can write; the same user outside it cannot', { skip: needsRoot }, async () => {
    const group = otherGroup();
    const outsider = group.gid === 4343 ? 4344 : 4343;
    const d = await startDaemon({ socket: socketPath(), args: ['--socket-group', String(group.gid)] });
    try {
      assert.equal(await connectAs(group.gid, d.socket, 'member:1'), 'connected');
      await waitForStatus(d.url, (s) => session(s, 'member:1') !== undefined, 'the member\'s event');
      assert.equal(await connectAs(outsider, d.socket, 'outsider:1'), 'EACCES');
    } finally {
      await d.stop();
    }
  });

  test('without --socket-group, another user cannot write at all', { skip: needsRoot }, async () => {
    const d = await startDaemon({ socket: socketPath() });
    try {
      assert.equal(await connectAs(otherGroup().gid, d.socket, 'stranger:1'), 'EACCES');
    } finally {
      await d.stop();
    }
  });
});
