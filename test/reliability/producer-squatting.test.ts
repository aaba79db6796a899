/**
 * Producers against a squatted default socket (issue 13, item 1): `emit`, the Claude Code hook and both emitters
 * refuse a default-path socket whose folder or file belongs to another uid than theirs or root, and say so (the hook
 * says nothing: it never writes to the terminal).
 *
 * The squatter is uid 65534 (nobody); a fake "daemon" bound in its folder counts who connects. Giving files to
 * another user needs root (the CI container has it); otherwise these tests are skipped with that reason.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StatusEmitter } from '../../protocol/emitter.ts';
import { cleanEnv, ROOT, runCli, tempDir, waitFor } from '../helpers/daemon.ts';
import { skipWithout } from '../helpers/tools.ts';

const asRoot = process.getuid?.() === 0;
const needsRoot = asRoot ? false : 'needs root: giving the socket folder to another user (uid 65534)';
const OTHER_UID = 65534;

/** A listening socket at `path` that records the bytes each connection sends. */
class FakeDaemon {
  readonly received: string[] = [];
  connections = 0;
  private readonly server = net.createServer((s) => {
    this.connections++;
    s.setEncoding('utf8').on('data', (d: string) => this.received.push(d));
    s.on('error', () => {});
  });
  async listen(path: string): Promise<void> {
    this.server.listen(path);
    await once(this.server, 'listening');
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** XDG_RUNTIME_DIR whose pocketpaw-status folder (and the socket in it) is owned as given. */
async function squatted(folderOwner: number, socketOwner: number): Promise<{ xdg: string; socket: string; fake: FakeDaemon }> {
  const xdg = tempDir();
  chmodSync(xdg, 0o755);
  const folder = join(xdg, 'pocketpaw-status');
  mkdirSync(folder);
  chmodSync(folder, 0o777);
  const socket = join(folder, 'ingest.sock');
  const fake = new FakeDaemon();
  await fake.listen(socket);
  chmodSync(socket, 0o666);
  chownSync(folder, folderOwner, folderOwner);
  chownSync(socket, socketOwner, socketOwner);
  return { xdg, socket, fake };
}

const producerEnv = (xdg: string) => ({ XDG_RUNTIME_DIR: xdg, RUNTIME_DIRECTORY: '' });

describe('producers refuse a default-path socket another user owns', { skip: needsRoot }, () => {
  let squat: Awaited<ReturnType<typeof squatted>>;
  let fileOnly: Awaited<ReturnType<typeof squatted>>;
  before(async () => {
    squat = await squatted(OTHER_UID, OTHER_UID);
    // The folder is root's; only the socket file is another user's.
    fileOnly = await squatted(0, OTHER_UID);
  });
  after(async () => {
    await squat.fake.close();
    await fileOnly.fake.close();
  });

  test('emit: exit 1, saying whose folder it is and what to do; nothing sent', async () => {
    const res = await runCli(['emit', 'agent_start', '--session', 'secret:1', '--title', 'a private prompt'], { env: producerEnv(squat.xdg) });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /socket folder .*pocketpaw-status belongs to uid 65534, not to this user/);
    assert.match(res.stderr, /POCKETPAW_STATUS_SOCKET/);
    const file = await runCli(['emit', 'agent_start', '--session', 'secret:2'], { env: producerEnv(fileOnly.xdg) });
    assert.equal(file.code, 1);
    assert.match(file.stderr, /socket file .*ingest\.sock belongs to uid 65534/);
    assert.equal(squat.fake.connections + fileOnly.fake.connections, 0);
  });

  test('a socket given by path elsewhere is the user\'s choice and is not checked', async () => {
    const other = new FakeDaemon();
    const path = join(squat.xdg, 'pocketpaw-status', 'chosen.sock');
    await other.listen(path);
    try {
      chownSync(path, OTHER_UID, OTHER_UID);
      const res = await runCli(['emit', 'agent_start', '--session', 'chosen:1', '--socket', path], { env: producerEnv(squat.xdg) });
      assert.equal(res.code, 0, res.stderr);
      await waitFor(() => other.received.join('').includes('chosen:1'), { what: 'the event on the chosen socket' });
    } finally {
      await other.close();
    }
  });

  test('the Claude Code hook: exit 0, nothing on stdout or stderr, nothing sent; the reason is in its log', async () => {
    const before = squat.fake.connections;
    const state = tempDir();
    const payload = JSON.stringify({ hook_event_name: 'UserPromptSubmit', session_id: 's1', prompt: 'a private prompt' });
    const res = await runCli(['hook', 'claude-code'], { env: { ...producerEnv(squat.xdg), XDG_STATE_HOME: state }, input: payload });
    assert.equal(res.code, 0);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, '');
    assert.equal(squat.fake.connections, before);
    const log = readFileSync(join(state, 'pocketpaw-status', 'hook.log'), 'utf8');
    assert.match(log, /hook claude-code: .*belongs to uid 65534/);
    assert.doesNotMatch(log, /a private prompt/);
  });

  test('the TypeScript emitter never connects, says why in lastError, and connects once the folder is the user\'s', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, producerEnv(fileOnly.xdg));
    delete process.env.POCKETPAW_STATUS_SOCKET;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const emitter = new StatusEmitter({ agent: 'squat-test', maxBackoffMs: 100 });
    try {
      emitter.emit({ type: 'agent_start', session_key: 'secret:3', title: 'a private prompt' });
      await waitFor(() => emitter.lastError !== null, { what: 'the refusal' });
      assert.match(emitter.lastError!, /socket file .*ingest\.sock belongs to uid 65534/);
      await waitFor(() => warnings.length > 0, { what: 'the process warning' });
      assert.equal(fileOnly.fake.connections, 0);
      // The same socket, once it is the user's (the real daemon's), is used: the refusal was about the owner.
      chownSync(fileOnly.socket, 0, 0);
      await waitFor(() => fileOnly.fake.received.join('').includes('secret:3'), { what: 'the emitter to connect' });
      assert.equal(warnings.length, 1, 'said once, not on every retry');
    } finally {
      await emitter.close(200);
      process.off('warning', onWarning);
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('the Python emitter never connects and says why in last_error', { skip: skipWithout('python3', 'python3') }, async () => {
    const script = String.raw`
import json, time
from pocketpaw_status import StatusEmitter
e = StatusEmitter(agent="squat-test", max_backoff=0.1)
e.emit({"type": "agent_start", "session_key": "secret:4", "title": "a private prompt"})
deadline = time.time() + 10
while e.last_error is None and time.time() < deadline:
    time.sleep(0.05)
print(json.dumps({"last_error": e.last_error, "connected": e.connected}), flush=True)
e.close(0.2)
`;
    const child = spawn('python3', ['-c', script], {
      cwd: ROOT,
      env: cleanEnv({ PYTHONPATH: join(ROOT, 'protocol/python'), ...producerEnv(squat.xdg) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const before = squat.fake.connections;
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, err);
    const result = JSON.parse(out) as { last_error: string | null; connected: boolean };
    assert.match(result.last_error ?? '', /socket folder .*pocketpaw-status belongs to uid 65534, not to this user/);
    assert.equal(result.connected, false);
    assert.match(err, /belongs to uid 65534/, 'logged as a warning');
    assert.equal(squat.fake.connections, before);
  });
});
