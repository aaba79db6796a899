/**
 * Issue 17: the status survives a daemon restart. Each test gives its daemons their own state folder.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, watch, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { EventSource } from 'eventsource';
import { RawSse } from './helpers/sse.ts';
import fc from 'fast-check';
import { defaultStateDir, parseServeConfig } from '../daemon/config.ts';
import {
  getStatus,
  Producer,
  sendOnce,
  session,
  sessionViews,
  startDaemon,
  tempDir,
  waitFor,
  waitForStatus,
  type StartOptions,
  type TestDaemon,
} from './helpers/daemon.ts';

function withState(dir: string, extra: string[] = [], options: StartOptions = {}): Promise<TestDaemon> {
  return startDaemon({ ...options, args: ['--state-dir', dir, ...extra, ...(options.args ?? [])] });
}

function badFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('state.json.bad-'));
}

describe('a clean restart (SIGTERM) changes nothing a client sees', { concurrency: false }, () => {
  test('same sessions, states, tools, tokens, titles and errors; durations continue', async () => {
    const dir = tempDir();
    const first = await withState(dir);
    await sendOnce(
      first.socket,
      { type: 'agent_start', session_key: 'claude-code:build', title: 'Run the 20-minute build' },
      { type: 'tool_start', session_key: 'claude-code:build', name: 'Bash' },
      { type: 'token_usage', session_key: 'claude-code:build', input: 1500, output: 230 },
      { type: 'agent_start', session_key: 'cli:chat', title: 'Chat' },
      { type: 'stream_start', session_key: 'cli:chat' },
      { type: 'agent_start', session_key: 'cli:broken' },
      { type: 'error', session_key: 'cli:broken', message: 'the build server is down' },
    );
    const before = await waitForStatus(first.url, (s) => s.sessions.length === 3);
    await sleep(1200);
    const beforeRead = await getStatus(first.url);
    const readAt = Date.now();
    const stopped = await first.stop('SIGTERM');
    assert.equal(stopped.code, 0);

    const second = await withState(dir);
    try {
      const after = await getStatus(second.url);
      const elapsed = (Date.now() - readAt) / 1000;
      assert.deepEqual(sessionViews(after), sessionViews(before));
      const build = session(after, 'claude-code:build')!;
      const buildBefore = session(beforeRead, 'claude-code:build')!;
      // The tool has been running since before the restart: its duration counts the restart too (0.1 s rounding).
      assert.ok(build.duration_seconds >= buildBefore.duration_seconds + elapsed - 0.2, `${build.duration_seconds} after ${buildBefore.duration_seconds} + ${elapsed}`);
      assert.ok(build.duration_seconds < buildBefore.duration_seconds + elapsed + 5);
      assert.equal(session(after, 'cli:broken')!.error_message, 'the build server is down');
      // The restored sessions are live: the next event moves them on.
      await sendOnce(second.socket, { type: 'tool_result', session_key: 'claude-code:build', name: 'Bash', result: 'ok', status: 'success' });
      await waitForStatus(second.url, (s) => session(s, 'claude-code:build')?.state === 'streaming');
    } finally {
      await second.stop();
    }
  });

  test("an error's TTL runs from when the error began, across the restart", async () => {
    const dir = tempDir();
    const ttl = 6;
    const first = await withState(dir, ['--error-ttl', String(ttl)]);
    await sendOnce(first.socket, { type: 'agent_start', session_key: 'cli:e' }, { type: 'error', session_key: 'cli:e', message: 'x' });
    await waitForStatus(first.url, (s) => session(s, 'cli:e')?.state === 'error');
    const erredAt = Date.now();
    await sleep(2000);
    await first.stop('SIGTERM');
    const second = await withState(dir, ['--error-ttl', String(ttl)]);
    try {
      const restored = await getStatus(second.url);
      if (Date.now() - erredAt < ttl * 1000 - 200) {
        assert.equal(session(restored, 'cli:e')?.error_message, 'x', 'restored while its TTL still runs');
      }
      await waitForStatus(second.url, (s) => s.sessions.length === 0, 'the error to expire');
      // Counted from the restart it would last until at least 2 + 6 s after the error: it goes at 6 s (+ polling).
      assert.ok(Date.now() - erredAt < (ttl + 1.5) * 1000, `removed ${Date.now() - erredAt} ms after the error`);
    } finally {
      await second.stop();
    }
  });
});

describe('a crash (SIGKILL) loses nothing written', { concurrency: false }, () => {
  test('1.5 s after the last event of a flood from several one-shot producers, a restart shows exactly the final state', async () => {
    const dir = tempDir();
    const first = await withState(dir);
    const events = fc.sample(fc.integer({ min: 20, max: 200 }), 1)[0]!;
    const producers = 5;
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        const key = `oneshot:p${p}`;
        await sendOnce(first.socket, { type: 'agent_start', session_key: key, title: `Producer ${p}` });
        for (let i = 0; i < events; i++) {
          const step = i % 4;
          const line =
            step === 0
              ? { type: 'tool_start', session_key: key, name: `tool-${i}` }
              : step === 1
                ? { type: 'token_usage', session_key: key, input: i * 10 + p, output: i }
                : step === 2
                  ? { type: 'thinking', session_key: key }
                  : { type: 'title', session_key: key, title: `Producer ${p} step ${i}` };
          await sendOnce(first.socket, line);
        }
        if (p % 2 === 0) await sendOnce(first.socket, { type: 'error', session_key: key, message: `failed at ${events}` });
        await sendOnce(first.socket, { type: 'title', session_key: key, title: `done ${p}` });
      }),
    );
    const final = await waitForStatus(first.url, (s) => s.sessions.length === producers && s.sessions.every((x) => x.title?.startsWith('done') ?? false));
    assert.equal(final.sessions.filter((x) => x.state === 'error').length, Math.ceil(producers / 2));
    await sleep(1500);
    await first.stop('SIGKILL');
    const second = await withState(dir);
    try {
      assert.deepEqual(sessionViews(await getStatus(second.url)), sessionViews(final));
      assert.deepEqual(badFiles(dir), []);
    } finally {
      await second.stop();
    }
  });

  test('SIGKILL during a write never leaves a file that loses the previous state', async () => {
    const dir = tempDir();
    let d = await withState(dir);
    // Many sessions make a write long enough (about a megabyte) for a kill to land in the middle of it.
    const many = Array.from({ length: 4000 }, (_, i) => ({ type: 'agent_start', session_key: `bulk:${i}`, title: `Session ${i} with a title long enough to weigh` }));
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'stable:a', title: 'kept' }, { type: 'tool_start', session_key: 'stable:a', name: 'make' }, ...many);
    const stable = await waitForStatus(d.url, (s) => s.sessions.length === many.length + 1);
    await sleep(1200); // written
    for (let round = 0; round < 3; round++) {
      // Kill the moment the writer touches the folder, then restart: the old file or the new one, never a broken one.
      const killed = new Promise<void>((resolve) => {
        const watcher = watch(dir, (_, name) => {
          if (!name?.startsWith('state.json') || name.includes('.bad-')) return;
          watcher.close();
          d.proc.kill('SIGKILL');
          resolve();
        });
      });
      await sendOnce(d.socket, { type: 'thinking', session_key: 'stable:a' }, { type: 'tool_start', session_key: 'stable:a', name: 'make' });
      await killed;
      await d.stop('SIGKILL');
      d = await withState(dir);
      assert.deepEqual(badFiles(dir), [], 'the file after a kill is always a whole one');
      assert.ok(!d.logs().some((l) => /was not restored/.test(l.msg)));
      const now = await getStatus(d.url);
      assert.deepEqual(sessionViews(now), sessionViews(stable));
      await sleep(1200); // the restored state's own first write has settled
    }
    await d.stop();
  });
});

describe('hello agents get --reconnect-grace to come back', { concurrency: false }, () => {
  async function agentSessions(dir: string): Promise<void> {
    const d = await withState(dir);
    const agent = await Producer.connect(d.socket);
    agent.send(
      { type: 'hello', agent: 'pocketpaw', max_concurrent: 5 },
      { type: 'agent_start', session_key: 'ws:one', title: 'One' },
      { type: 'tool_start', session_key: 'ws:one', name: 'bash' },
      { type: 'agent_start', session_key: 'ws:two', title: 'Two' },
    );
    await waitForStatus(d.url, (s) => session(s, 'ws:one')?.state === 'tool_running' && s.sessions.length === 2);
    await d.stop('SIGTERM');
  }

  test('an agent that reconnects and replays within the grace keeps its sessions, never in error', async () => {
    const dir = tempDir();
    await agentSessions(dir);
    const d = await withState(dir, ['--reconnect-grace', '2']);
    try {
      const restored = await getStatus(d.url);
      assert.equal(session(restored, 'ws:one')?.state, 'tool_running');
      assert.equal(session(restored, 'ws:two')?.state, 'thinking');
      const agent = await Producer.connect(d.socket);
      agent.send({ type: 'hello', agent: 'pocketpaw' }, { type: 'tool_start', session_key: 'ws:one', name: 'bash' }, { type: 'thinking', session_key: 'ws:two' });
      await sleep(3000); // past the grace
      const after = await getStatus(d.url);
      assert.equal(session(after, 'ws:one')?.state, 'tool_running');
      assert.equal(session(after, 'ws:two')?.state, 'thinking');
      assert.equal(session(after, 'ws:one')?.title, 'One');
      // And it owns them again: its connection closing is what turns them to error now.
      await agent.end();
      await waitForStatus(d.url, (s) => session(s, 'ws:one')?.error_message === 'agent disconnected');
    } finally {
      await d.stop();
    }
  });

  test('an agent that does not come back leaves its sessions in error / agent disconnected', async () => {
    const dir = tempDir();
    await agentSessions(dir);
    const d = await withState(dir, ['--reconnect-grace', '1']);
    try {
      assert.equal(session(await getStatus(d.url), 'ws:one')?.state, 'tool_running');
      const s = await waitForStatus(d.url, (x) => x.sessions.every((y) => y.state === 'error'), 'the grace to end');
      assert.deepEqual(s.sessions.map((x) => x.error_message), ['agent disconnected', 'agent disconnected']);
    } finally {
      await d.stop();
    }
  });
});

describe('a restored session names a pid (one-shot producers): checked at start', { concurrency: false }, () => {
  /** A real process to name as the agent, and a way to end it for good (reaped: a zombie still answers signal 0). */
  async function agentProcess(): Promise<{ pid: number; kill(): Promise<void> }> {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await once(child, 'spawn');
    return {
      pid: child.pid!,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      },
    };
  }

  /** A first daemon hears of a session running a tool for `pid`, from a one-shot connection, and stops cleanly. */
  async function sessionOf(dir: string, pid: number): Promise<void> {
    const d = await withState(dir);
    await sendOnce(
      d.socket,
      { type: 'agent_start', session_key: 'claude-code:pid', title: 'Watched', pid },
      { type: 'tool_start', session_key: 'claude-code:pid', name: 'Bash', pid },
    );
    await waitForStatus(d.url, (s) => session(s, 'claude-code:pid')?.state === 'tool_running');
    assert.equal((await d.stop('SIGTERM')).code, 0);
  }

  test('its pid died while the daemon was down: error / agent disconnected in the first snapshot after start', async () => {
    const dir = tempDir();
    const agent = await agentProcess();
    try {
      await sessionOf(dir, agent.pid);
    } finally {
      await agent.kill();
    }
    const d = await withState(dir);
    try {
      // Right after ready, before the once-a-second watch could have run: only the check at start explains it.
      const first = session(await getStatus(d.url), 'claude-code:pid');
      assert.equal(first?.state, 'error');
      assert.equal(first?.error_message, 'agent disconnected');
      assert.equal(first?.title, 'Watched');
    } finally {
      await d.stop();
    }
  });

  test('its pid still runs: the session comes back in its state, and turns error once the pid dies', async () => {
    const dir = tempDir();
    const agent = await agentProcess();
    try {
      await sessionOf(dir, agent.pid);
      const d = await withState(dir);
      try {
        const first = session(await getStatus(d.url), 'claude-code:pid');
        assert.equal(first?.state, 'tool_running');
        assert.equal(first?.tool_name, 'Bash');
        assert.equal(first?.error_message, null);
        // Still watched after the restart.
        await agent.kill();
        await waitForStatus(d.url, (s) => session(s, 'claude-code:pid')?.error_message === 'agent disconnected', 'the dead pid to be noticed');
      } finally {
        await d.stop();
      }
    } finally {
      await agent.kill();
    }
  });
});

describe('bad state files: moved aside, logged, start empty, never a crash', { concurrency: false }, () => {
  const valid = async (): Promise<string> => {
    const dir = tempDir();
    const d = await withState(dir);
    await sendOnce(d.socket, { type: 'agent_start', session_key: 'cli:x', title: 'x' });
    await waitForStatus(d.url, (s) => s.sessions.length === 1);
    await d.stop('SIGTERM');
    return readFileSync(join(dir, 'state.json'), 'utf8');
  };

  test('empty, truncated, corrupt, foreign-version and too-old files', async () => {
    const good = await valid();
    const doc = JSON.parse(good) as Record<string, unknown>;
    const [cut] = fc.sample(fc.integer({ min: 1, max: good.length - 2 }), 1);
    const [flipped] = fc.sample(
      fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.constant('\u0000')), { minLength: 3, maxLength: 10 }).map((flips) => {
        const chars = [...good];
        for (const [at, c] of flips) chars[at] = c;
        return chars.join('');
      }),
      1,
    );
    const cases: [string, string, RegExp, string[]?][] = [
      ['empty', '', /empty/],
      ['truncated', good.slice(0, cut), /not valid JSON|does not match/],
      // NUL is never valid JSON, in a string or between tokens.
      ['corrupt', flipped!, /not valid JSON/],
      ['foreign version', JSON.stringify({ ...doc, version: 99 }), /unknown format version 99/],
      ['too old', JSON.stringify({ ...doc, savedAt: Date.now() - 120_000 }), /older than --state-max-age/, ['--state-max-age', '60']],
    ];
    for (const [name, text, reason, extra] of cases) {
      const dir = tempDir();
      writeFileSync(join(dir, 'state.json'), text);
      const d = await withState(dir, extra);
      try {
        assert.equal((await getStatus(d.url)).sessions.length, 0, name);
        const bad = badFiles(dir);
        assert.equal(bad.length, 1, `${name}: moved aside`);
        assert.equal(readFileSync(join(dir, bad[0]!), 'utf8'), text, `${name}: kept as it was`);
        const line = d.logs().find((l) => /was not restored/.test(l.msg));
        assert.ok(line, `${name}: logged`);
        assert.match(String(line.reason), reason, name);
        // And the daemon goes on keeping state in a fresh file.
        await sendOnce(d.socket, { type: 'agent_start', session_key: 'cli:new' });
        await waitFor(() => existsSync(join(dir, 'state.json')) && readFileSync(join(dir, 'state.json'), 'utf8').includes('cli:new'), { what: `${name}: a new state file` });
      } finally {
        await d.stop();
      }
    }
  });

  test('a state file that cannot be written is logged once and retried; the daemon keeps serving', async () => {
    const dir = tempDir();
    const d = await withState(dir);
    try {
      // A non-empty folder where the file goes: rename() over it fails even for root.
      rmSync(join(dir, 'state.json'), { force: true });
      mkdirSync(join(dir, 'state.json', 'blocker'), { recursive: true });
      for (let i = 0; i < 3; i++) {
        await sendOnce(d.socket, { type: 'agent_start', session_key: `cli:${i}` });
        await sleep(1100);
      }
      assert.equal((await getStatus(d.url)).sessions.length, 3, 'still serving');
      const errors = d.logs().filter((l) => /cannot write the state file/.test(l.msg));
      assert.equal(errors.length, 1, 'logged once');
      rmSync(join(dir, 'state.json'), { recursive: true });
      await waitFor(() => d.logs().some((l) => /written again/.test(l.msg)), { what: 'the retry to succeed' });
      assert.ok(statSync(join(dir, 'state.json')).isFile());
      assert.match(readFileSync(join(dir, 'state.json'), 'utf8'), /cli:2/);
    } finally {
      await d.stop();
    }
  });

  test('a state folder another user may write, owned by another user, or a symlink is refused', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    await assert.rejects(withState(dir), /can be written by others/);
    const link = join(tempDir(), 'link');
    symlinkSync(tempDir(), link);
    await assert.rejects(withState(link), /is not a directory/);
    if (process.getuid?.() === 0) {
      // Only root can give a folder away; as another user this case needs no test (the folder is created as ours).
      const theirs = tempDir();
      chownSync(theirs, 65534, 65534);
      await assert.rejects(withState(theirs), /belongs to uid 65534/);
    }
  });

  test('the folder is created 0700', async () => {
    const dir = join(tempDir(), 'nested', 'state');
    const d = await withState(dir);
    await d.stop();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
  });
});

describe('SSE across a restart', { concurrency: false }, () => {
  test('an eventsource client connected across a clean restart sees no reset and the right state', async () => {
    const dir = tempDir();
    const first = await withState(dir);
    const port = new URL(first.url).port;
    const seen: { type: string; data: string; id: string }[] = [];
    const es = new EventSource(`${first.url}/api/v1/agent/status/stream?transitions=1`);
    for (const type of ['status', 'transition', 'reset']) {
      es.addEventListener(type, (e) => seen.push({ type, data: e.data, id: e.lastEventId }));
    }
    let second: TestDaemon | null = null;
    try {
      await waitFor(() => seen.some((e) => e.type === 'status'), { what: 'the first status' });
      await sendOnce(first.socket, { type: 'agent_start', session_key: 'cli:sse', title: 'Across' }, { type: 'tool_start', session_key: 'cli:sse', name: 'grep' });
      await waitFor(() => seen.some((e) => e.type === 'status' && e.data.includes('tool_running')), { what: 'the tool in a status event' });
      await waitFor(() => seen.filter((e) => e.type === 'transition').length >= 2, { what: 'the transitions' });
      const lastIdBefore = seen.at(-1)!.id;
      const count = seen.length;
      await first.stop('SIGTERM');
      second = await withState(dir, ['--port', port]);
      // The client reconnects by itself (retry: 2000) with its Last-Event-ID.
      await waitFor(() => seen.length > count, { what: 'an event after the restart', timeoutMs: 15_000 });
      await sendOnce(second.socket, { type: 'tool_result', session_key: 'cli:sse', name: 'grep', result: 'x', status: 'success' });
      await waitFor(() => seen.some((e, i) => i >= count && e.type === 'transition'), { what: 'a transition after the restart' });
      assert.deepEqual(seen.filter((e) => e.type === 'reset'), [], 'no reset');
      const afterRestart = seen.slice(count);
      const firstStatus = afterRestart.find((e) => e.type === 'status')!;
      const body = JSON.parse(firstStatus.data) as { sessions: { session_key: string; state: string; title: string }[] };
      assert.deepEqual(body.sessions.map((s) => [s.session_key, s.state, s.title]), [['cli:sse', 'tool_running', 'Across']]);
      // Ids continue: same run, larger seq.
      const [runBefore, seqBefore] = lastIdBefore.split('-');
      for (const e of afterRestart) {
        const [run, seq] = e.id.split('-');
        assert.equal(run, runBefore);
        assert.ok(Number(seq) > Number(seqBefore));
      }
    } finally {
      es.close();
      await second?.stop();
    }
  });
});

describe('state flags', () => {
  test('--state-dir defaults: systemd, then XDG, then ~/.local/state; none keeps nothing; each flag has its variable', () => {
    assert.equal(defaultStateDir({ STATE_DIRECTORY: '/var/lib/pocketpaw-status:/var/lib/other', XDG_STATE_HOME: '/x' }), '/var/lib/pocketpaw-status');
    assert.equal(defaultStateDir({ XDG_STATE_HOME: '/home/u/.state' }), '/home/u/.state/pocketpaw-status');
    assert.equal(defaultStateDir({ XDG_STATE_HOME: 'relative', HOME: '/home/u' }), '/home/u/.local/state/pocketpaw-status');
    assert.equal(defaultStateDir({ HOME: '/home/u' }), '/home/u/.local/state/pocketpaw-status');
    const config = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const c = parseServeConfig(argv, env);
      assert.notEqual(c, 'help');
      return c as Exclude<typeof c, 'help'>;
    };
    assert.equal(config(['--state-dir', 'none']).stateDir, null);
    assert.equal(config([], { POCKETPAW_STATUS_STATE_DIR: 'none' }).stateDir, null);
    assert.equal(config([], { POCKETPAW_STATUS_STATE_DIR: '/srv/s' }).stateDir, '/srv/s');
    assert.equal(config([]).stateMaxAge, 86_400);
    assert.equal(config([]).reconnectGrace, 5);
    assert.equal(config([], { POCKETPAW_STATUS_STATE_MAX_AGE: '3600', POCKETPAW_STATUS_RECONNECT_GRACE: '0' }).stateMaxAge, 3600);
    assert.throws(() => config(['--state-max-age', '0']), /--state-max-age/);
    assert.throws(() => config(['--reconnect-grace', 'soon']), /--reconnect-grace/);
  });
});

describe('Last-Event-ID from before a restart', { concurrency: false }, () => {
  test('reset only when transitions the client asked for are gone: an older id after a clean restart, any id after a crash', async () => {
    const dir = tempDir();
    const first = await withState(dir);
    const url = `${first.url}/api/v1/agent/status/stream?transitions=1`;
    const before = await RawSse.open(url);
    await before.waitFor((s) => s.of('status').length > 0, 'the first status');
    await sendOnce(first.socket, { type: 'agent_start', session_key: 'cli:r' });
    await before.waitFor((s) => s.of('transition').length >= 1, 'the first transition');
    const olderId = before.of('transition')[0]!.id!;
    await sendOnce(first.socket, { type: 'tool_start', session_key: 'cli:r', name: 'bash' });
    await before.waitFor((s) => s.of('transition').length >= 2 && s.of('status').some((m) => m.data.includes('tool_running')), 'the second transition');
    const latestId = before.messages.at(-1)!.id!;
    before.close();
    await first.stop('SIGTERM');

    const second = await withState(dir);
    const streamUrl = `${second.url}/api/v1/agent/status/stream?transitions=1`;
    try {
      const current = await RawSse.open(streamUrl, { 'Last-Event-ID': latestId });
      await current.waitFor((s) => s.of('status').length > 0, 'the snapshot after the restart');
      assert.equal(current.of('reset').length, 0, 'nothing it saw is lost');
      assert.match(current.of('status')[0]!.data, /tool_running/);
      current.close();
      const older = await RawSse.open(streamUrl, { 'Last-Event-ID': olderId });
      await older.waitFor((s) => s.of('reset').length > 0 && s.of('status').length > 0, 'a reset, then the snapshot');
      assert.match(older.of('reset')[0]!.data, /restarted/);
      older.close();
    } finally {
      await second.stop('SIGKILL');
    }
    // After a crash the ids issued since the last write are unknown: a new run, and a reset for anyone resuming.
    const third = await withState(dir);
    try {
      const after = await RawSse.open(`${third.url}/api/v1/agent/status/stream?transitions=1`, { 'Last-Event-ID': latestId });
      await after.waitFor((s) => s.of('reset').length > 0 && s.of('status').length > 0, 'a reset after the crash');
      assert.notEqual(after.of('status')[0]!.id!.split('-')[0], latestId.split('-')[0], 'a new run');
      assert.match(after.of('status')[0]!.data, /tool_running/, 'the state itself survived the crash');
      after.close();
    } finally {
      await third.stop();
    }
  });
});
