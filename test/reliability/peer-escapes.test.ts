/**
 * Terminal escapes from a peer (issue 13, item 8): whatever a daemon (or something posing as one) answers, the CLI
 * prints it cleaned as `status` cleans its table: no ESC, BEL, C1 control or bidi override reaches the terminal.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, sendOnce, session, startDaemon, tempDir, waitForStatus } from '../helpers/daemon.ts';

// ESC, BEL, the one-byte CSI (0x9b), DEL and a right-to-left override.
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const NASTY = '\u001b]0;owned\u0007\u001b[2J\u009b31m\u202eevil\u007f';

/** A socket that answers every connection with `answer` and closes once the client has finished writing. */
async function answeringSocket(answer: string): Promise<{ path: string; close: () => void }> {
  const path = join(tempDir(), 'fake.sock');
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.resume();
    s.on('end', () => s.end(answer));
  });
  server.listen(path);
  await once(server, 'listening');
  return { path, close: () => server.close() };
}

test('emit prints a daemon\'s error answer without its escape sequences', async () => {
  for (const answer of [`${JSON.stringify({ error: `line 1: ${NASTY}` })}\n`, `${JSON.stringify({ error: NASTY })}\n`, `not json ${NASTY}\n`]) {
    const fake = await answeringSocket(answer);
    try {
      const res = await runCli(['emit', 'agent_start', '--session', 'x:1', '--socket', fake.path]);
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, /owned/, 'the answer is still shown');
      assert.doesNotMatch(res.stderr, TERMINAL_CONTROLS, JSON.stringify(res.stderr));
      // From stdin too.
      const stdin = await runCli(['emit', '--socket', fake.path], { input: '{"type":"agent_start","session_key":"x:2"}\n' });
      assert.equal(stdin.code, 2);
      assert.doesNotMatch(stdin.stderr, TERMINAL_CONTROLS, JSON.stringify(stdin.stderr));
    } finally {
      fake.close();
    }
  }
});

test('status prints an unexpected HTTP answer without its escape sequences', async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`oops ${NASTY}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as net.AddressInfo;
    const res = await runCli(['status', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(res.code, 3);
    assert.match(res.stderr, /HTTP 500: oops/);
    assert.doesNotMatch(res.stderr, TERMINAL_CONTROLS, JSON.stringify(res.stderr));
  } finally {
    server.close();
  }
});

test('status --json writes C1 controls and bidi overrides in a title as \\u escapes (the same JSON data)', async () => {
  const d = await startDaemon();
  try {
    const title = `t ${NASTY}`;
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'esc:1', title });
    await waitForStatus(d.url, (s) => session(s, 'esc:1') !== undefined);
    for (const args of [['--json'], []]) {
      const res = await runCli(['status', '--url', d.url, ...args]);
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stdout, TERMINAL_CONTROLS, JSON.stringify(res.stdout));
      if (args.length > 0) {
        const parsed = JSON.parse(res.stdout) as { sessions: { title: string }[] };
        assert.equal(parsed.sessions[0]!.title, title, 'the data is unchanged');
      }
    }
  } finally {
    await d.stop();
  }
});
