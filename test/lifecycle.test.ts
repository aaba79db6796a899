/**
 * The process and its socket file: the ready line, payload-free logs, stale and live socket files, the socket's mode
 * and folder, and a clean exit on SIGTERM/SIGINT that waits for no open connection.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

import { getStatus, Producer, runCli, startDaemon, tempDir, waitFor, type TestDaemon } from './helpers/daemon.ts';

function ready(d: TestDaemon): { http: string; socket: string; msg: string } {
  const line = d.logs().find((l) => l.msg.startsWith('ready'));
  assert.ok(line, 'a ready line');
  return line as unknown as { http: string; socket: string; msg: string };
}

/** Waits until every line sent so far on `p` has been applied (see test/ingest.test.ts). */
async function applied(p: Producer): Promise<void> {
  const from = p.replies.length;
  p.send('{"v":99,"type":"fence"}\n');
  await waitFor(() => p.replies.slice(from).some((r) => r.includes('version 99')), { timeoutMs: 20_000, what: 'the fence answer' });
}

describe('start-up', () => {
  test('the ready line is JSON on stderr naming the real HTTP address and the socket', async () => {
    const d = await startDaemon();
    try {
      const line = ready(d);
      const url = new URL(line.http);
      assert.equal(url.hostname, '127.0.0.1');
      assert.notEqual(url.port, '0');
      assert.ok(Number(url.port) > 0, `a real port: ${line.http}`);
      assert.equal(line.socket, d.socket);
      assert.ok(line.msg.includes(line.http) && line.msg.includes(d.socket), 'the message itself says where');
      assert.equal((await getStatus(line.http)).global.state, 'idle');
      // Every stderr line is one JSON object (pino).
      for (const l of d.stderr.filter(Boolean)) assert.doesNotThrow(() => JSON.parse(l), l);
    } finally {
      await d.stop();
    }
  });

  test('a missing parent folder is created; the socket is 0660 by default', async () => {
    const dir = tempDir();
    const socket = join(dir, 'a', 'b', 'ingest.sock');
    const d = await startDaemon({ socket });
    try {
      assert.ok(lstatSync(socket).isSocket());
      assert.equal(statSync(socket).mode & 0o777, 0o660);
    } finally {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--socket-mode 0600 is applied', async () => {
    const d = await startDaemon({ args: ['--socket-mode', '0600'] });
    try {
      assert.equal(statSync(d.socket).mode & 0o777, 0o600);
    } finally {
      await d.stop();
    }
  });

  test('a stale socket file (its owner was killed) is replaced', async () => {
    const dir = tempDir();
    const socket = join(dir, 'ingest.sock');
    try {
      // A process that binds the path and dies without cleaning up, as a crashed daemon does.
      const owner = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(process.argv[1], () => console.log('bound'))`, socket], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await once(owner.stdout!, 'data');
      owner.kill('SIGKILL');
      await once(owner, 'exit');
      assert.ok(lstatSync(socket).isSocket(), 'the stale file is there');

      const d = await startDaemon({ socket });
      try {
        const p = await Producer.connect(socket);
        p.send({ type: 'agent_start', session_key: 'stale:1' });
        await applied(p);
        assert.equal((await getStatus(d.url)).sessions[0]?.session_key, 'stale:1');
        await p.end();
      } finally {
        await d.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a second daemon on a live socket exits 1 and leaves the first one working', async () => {
    const first = await startDaemon();
    try {
      const second = await runCli(['serve', '--port', '0', '--socket', first.socket]);
      assert.equal(second.code, 1, second.stderr);
      assert.ok(second.stderr.includes(`another daemon is listening on ${first.socket}`), second.stderr);
      assert.doesNotMatch(second.stderr, /"msg":"ready/);
      assert.ok(lstatSync(first.socket).isSocket(), 'the first daemon\'s socket is still there');
      const p = await Producer.connect(first.socket);
      p.send({ type: 'agent_start', session_key: 'first:1' });
      await applied(p);
      assert.equal((await getStatus(first.url)).global.active_sessions, 1);
      await p.end();
    } finally {
      await first.stop();
    }
  });

  test('a path that exists and is not a socket is refused and left alone', async () => {
    const dir = tempDir();
    const path = join(dir, 'ingest.sock');
    writeFileSync(path, 'precious');
    try {
      const result = await runCli(['serve', '--port', '0', '--socket', path]);
      assert.equal(result.code, 1, result.stderr);
      assert.ok(result.stderr.includes(path) && result.stderr.includes('not a socket'), result.stderr);
      assert.equal(readFileSync(path, 'utf8'), 'precious');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a directory at the socket path is refused too', async () => {
    const dir = tempDir();
    const path = join(dir, 'ingest.sock');
    mkdirSync(path);
    try {
      const result = await runCli(['serve', '--port', '0', '--socket', path]);
      assert.equal(result.code, 1, result.stderr);
      assert.ok(result.stderr.includes('not a socket'), result.stderr);
      assert.ok(statSync(path).isDirectory());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('logs', () => {
  test('never contain event payloads, accepted or rejected', async () => {
    const marker = 'PAYLOAD_MARKER_7f3a';
    const d = await startDaemon();
    const p = await Producer.connect(d.socket);
    p.send(
      { type: 'hello', agent: `agent-${marker}`, version: `v-${marker}` },
      { type: 'agent_start', session_key: 'log:1', title: `title ${marker}` },
      { type: 'tool_start', session_key: 'log:1', name: `tool-${marker}` },
      { type: 'tool_result', session_key: 'log:1', name: 'agent', status: 'error', result: `result ${marker}` },
      { type: 'error', session_key: 'log:1', message: `message ${marker}` },
      { type: 'unknown_type', session_key: 'log:1', data: marker },
      `{"type":"title","session_key":"log:1","title":"${marker}"\n`,
      `["${marker}"]\n`,
      `{"type":"tool_start","session_key":"log:1","name":{"${marker}":1}}\n`,
      `{"v":"${marker}","type":"thinking","session_key":"log:1"}\n`,
      `{"type":"title","session_key":"log:1","title":"${marker}${'x'.repeat(70_000)}"}\n`,
      Buffer.concat([Buffer.from(`{"title":"${marker}`), Buffer.from([0xff]), Buffer.from('"}\n')]),
    );
    await applied(p);
    assert.ok(p.replies.length >= 6);
    // Closing an agent connection after rejected lines logs too.
    await p.end();
    await waitFor(() => d.logs().some((l) => /closed|disconnected/.test(l.msg)), { timeoutMs: 20_000, what: 'the disconnect log' });
    const { code } = await d.stop();
    assert.equal(code, 0);
    assert.ok(d.stderr.length >= 3, 'something was logged');
    const leaking = d.stderr.filter((l) => l.includes(marker));
    assert.deepEqual(leaking, []);
  });

  test('a producer repeating hello is logged once: lines cannot flood the log', async () => {
    const d = await startDaemon();
    const p = await Producer.connect(d.socket);
    for (let i = 0; i < 50; i++) p.send({ type: 'hello', agent: 'chatty' });
    await applied(p);
    await p.end();
    await d.stop();
    assert.equal(d.logs().filter((l) => l.msg === 'agent connected').length, 1);
  });

  test('agents connecting and leaving in a loop are logged 20 a window, not one line each', async () => {
    const d = await startDaemon();
    for (let i = 0; i < 30; i++) {
      const p = await Producer.connect(d.socket);
      p.send({ type: 'hello', agent: `loop-${i}` });
      await applied(p);
      await p.end();
    }
    await waitFor(() => d.logs().filter((l) => l.msg.startsWith('agent disconnected')).length >= 20, { what: 'the disconnects' });
    await d.stop();
    assert.equal(d.logs().filter((l) => l.msg === 'agent connected').length, 20);
    assert.equal(d.logs().filter((l) => l.msg.startsWith('agent disconnected')).length, 20);
  });
});

describe('shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal}: exit 0, socket file removed, open HTTP keep-alive and producer connections not waited for`, { timeout: 60_000 }, async () => {
      const d = await startDaemon();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`${d.url}/api/v1/agent/status`, { agent }, resolve).on('error', reject),
      );
      res.resume();
      await once(res, 'end');
      // The keep-alive socket is now idle and open; so is a producer that sent hello and then nothing.
      const p = await Producer.connect(d.socket);
      p.send({ type: 'hello', agent: 'idle' });
      await applied(p);

      const { code, signal: killedBy, socketLeft } = await d.stop(signal);
      assert.equal(code, 0);
      assert.equal(killedBy, null);
      assert.equal(socketLeft, false, 'the socket file is removed');
      const msgs = d.logs().map((l) => l.msg);
      assert.ok(msgs.includes('stopped'), `a clean stop, not the deadline: ${JSON.stringify(msgs)}`);
      assert.ok(!msgs.some((m) => m.includes('deadline')), `the shutdown deadline was not needed: ${JSON.stringify(msgs)}`);
      await p.closed;
      agent.destroy();
    });
  }
});
