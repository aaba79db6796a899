/**
 * Whole Claude Code sessions replayed from the recorded fixtures through the real hook command (the dist/hook.js
 * bundle that --install writes into Claude Code's settings, built fresh here) into the real daemon, with the snapshot
 * checked after every step: a prompt, parallel tools, a subagent, permission prompts and questions, a blocked stop, a
 * background task, an interrupt, failures and the end. Plus token counts from a transcript, and a Claude Code
 * process that dies.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildHook } from '../scripts/build.ts';
import { assistant, prompt, toolResult, turnSum, usage, writeBigTranscript } from './helpers/claude-transcript.ts';
import { cleanEnv, getStatus, ROOT, session, startDaemon, tempDir, waitForStatus, type StatusBody, type TestDaemon } from './helpers/daemon.ts';

const FIXTURES = join(ROOT, 'test/fixtures/claude-code');
const payload = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, unknown>;

let hookFile: string;
let daemon: TestDaemon;
before(async () => {
  hookFile = await buildHook(tempDir());
  daemon = await startDaemon();
});
after(async () => {
  await daemon?.stop();
});

/** Runs the hook as Claude Code does: the payload on stdin; it must exit 0 and print nothing on stdout. */
async function runHook(input: Record<string, unknown>): Promise<void> {
  const proc = spawn(process.execPath, [hookFile, 'hook', 'claude-code', '--socket', daemon.socket], { cwd: ROOT, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  proc.stdin.end(JSON.stringify(input));
  const [code] = (await once(proc, 'exit')) as [number | null];
  assert.equal(code, 0, `exit code; stderr: ${stderr}`);
  assert.equal(stdout, '', 'a hook must print nothing on stdout');
}

type Expect = { state: string; tool?: string | null; title?: string | null; error?: string; tokens?: { input: number; output: number } | null } | null;

const matches = (s: StatusBody, key: string, want: Expect): boolean => {
  const x = session(s, key);
  if (want === null) return x === undefined;
  if (!x || x.state !== want.state) return false;
  if (want.tool !== undefined && x.tool_name !== want.tool) return false;
  if (want.title !== undefined && x.title !== want.title) return false;
  if (want.error !== undefined && x.error_message !== want.error) return false;
  if (want.tokens !== undefined && JSON.stringify(x.token_usage) !== JSON.stringify(want.tokens)) return false;
  return true;
};

let markers = 0;
/**
 * A session replayed step by step. Every step's payload is the fixture with this session's id (so the tests do not
 * share state). After a step that should change nothing, a marker session is sent through the same socket and
 * awaited first, so "unchanged" is checked after the daemon has read the step, not before.
 */
function replay(id: string) {
  const key = `claude-code:${id}`;
  return {
    key,
    async step(name: string, want: Expect, extra: Record<string, unknown> = {}): Promise<void> {
      await runHook({ ...payload(name), session_id: id, ...extra });
      const what = `${key} after ${name}: ${JSON.stringify(want)}`;
      try {
        await waitForStatus(daemon.url, (s) => matches(s, key, want), what);
      } catch (error) {
        throw new Error(`${(error as Error).message}; got ${JSON.stringify(session(await getStatus(daemon.url), key))}`);
      }
    },
    async unchanged(name: string, want: Expect, extra: Record<string, unknown> = {}): Promise<void> {
      await runHook({ ...payload(name), session_id: id, ...extra });
      const marker = `marker-${++markers}`;
      await runHook({ ...payload('user-prompt-submit'), session_id: marker });
      await waitForStatus(daemon.url, (s) => session(s, `claude-code:${marker}`) !== undefined, marker);
      await runHook({ ...payload('session-end'), session_id: marker });
      const got = session(await getStatus(daemon.url), key);
      assert.ok(matches(await getStatus(daemon.url), key, want), `${key} after ${name} should still be ${JSON.stringify(want)}; got ${JSON.stringify(got)}`);
    },
  };
}

const TITLE = (payload('user-prompt-submit').prompt as string).slice(0, 80);

describe('Claude Code sessions replayed through the real hook and daemon', () => {
  test('a prompt, parallel tools, a subagent, then Stop', async () => {
    const r = replay('replay-parallel');
    await r.step('user-prompt-submit', { state: 'thinking', title: TITLE, tool: null });
    await r.step('pre-tool-use', { state: 'tool_running', tool: 'Bash' });
    await r.step('pre-tool-use-read', { state: 'tool_running', tool: 'Read' }); // in parallel: the newest open call
    await r.step('post-tool-use-read', { state: 'tool_running', tool: 'Bash' }); // Bash is still running
    await r.step('post-tool-use', { state: 'thinking', tool: null }); // the last close
    await r.step('pre-tool-use-agent', { state: 'tool_running', tool: 'Agent' });
    await r.step('subagent-start', { state: 'tool_running', tool: 'Agent' });
    await r.step('subagent-pre-tool-use', { state: 'tool_running', tool: 'Grep' });
    await r.step('subagent-post-tool-use', { state: 'tool_running', tool: 'Agent' }); // never ends the parent's Agent call
    await r.step('subagent-stop', { state: 'tool_running', tool: 'Agent' });
    await r.step('post-tool-use-agent', { state: 'thinking', tool: null });
    await r.unchanged('pre-compact', { state: 'thinking', title: TITLE });
    await r.step('stop', null);
  });

  test('permission prompts, questions, elicitations and notifications that wait on nobody', async () => {
    const r = replay('replay-asks');
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.unchanged('notification-idle', { state: 'thinking' });
    await r.unchanged('notification-auth-success', { state: 'thinking' });
    await r.step('pre-tool-use', { state: 'tool_running', tool: 'Bash' });
    await r.step('permission-request', { state: 'waiting_for_user', tool: null });
    await r.unchanged('notification', { state: 'waiting_for_user' }); // permission_prompt: still the same wait
    // Approved: Claude Code says nothing until the tool ends.
    await r.step('post-tool-use', { state: 'thinking' });
    await r.step('pre-tool-use', { state: 'tool_running', tool: 'Bash' });
    await r.step('permission-request', { state: 'waiting_for_user' });
    await r.step('permission-denied', { state: 'thinking' });
    await r.step('pre-tool-use-ask-user-question', { state: 'waiting_for_user' });
    await r.unchanged('notification-idle', { state: 'waiting_for_user' });
    await r.step('post-tool-use-ask-user-question', { state: 'thinking' });
    await r.step('pre-tool-use-mcp', { state: 'tool_running', tool: 'mcp__orders__query' });
    await r.step('notification-elicitation-dialog', { state: 'waiting_for_user' });
    await r.step('notification-elicitation-complete', { state: 'tool_running', tool: 'mcp__orders__query' });
    await r.unchanged('notification-elicitation-response', { state: 'tool_running', tool: 'mcp__orders__query' }); // no wait of its own to end
    await r.step('notification-elicitation-dialog', { state: 'waiting_for_user' });
    await r.step('notification-elicitation-response', { state: 'tool_running', tool: 'mcp__orders__query' });
    await r.step('post-tool-use-mcp', { state: 'thinking' });
    await r.step('session-end', null);
  });

  test('a Stop blocked by another hook: the work that follows brings the session back', async () => {
    const r = replay('replay-blocked');
    await r.step('user-prompt-submit', { state: 'thinking', title: TITLE });
    await r.step('stop', null); // our hook cannot know another hook blocks this Stop
    await r.step('pre-tool-use', { state: 'tool_running', tool: 'Bash', title: null }); // back, not "unknown session"
    await r.step('post-tool-use', { state: 'thinking' });
    await r.step('stop-hook-active', null);
    // Without create_session a late event for an ended session is still ignored.
    await r.unchanged('post-tool-use', null);
  });

  test('a background subagent keeps the session busy after Stop, until a Stop without background tasks', async () => {
    const r = replay('replay-background');
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.step('pre-tool-use-agent-background', { state: 'tool_running', tool: 'Agent' });
    await r.step('subagent-start-background', { state: 'tool_running', tool: 'Agent' });
    await r.step('post-tool-use-agent-background', { state: 'tool_running', tool: 'Agent' }); // launched, still running
    await r.step('stop-background', { state: 'tool_running', tool: 'Agent' }); // the answer is done, the work is not
    await r.step('background-pre-tool-use', { state: 'tool_running', tool: 'Glob' });
    await r.step('background-post-tool-use', { state: 'tool_running', tool: 'Agent' });
    await r.step('subagent-stop-background', { state: 'thinking' });
    await r.step('stop', null);
  });

  test('a Stop with background tasks on a daemon that lost the session shows it busy again', async () => {
    const r = replay('replay-background-fresh');
    await r.step('stop-background', { state: 'tool_running', tool: 'Agent' });
    await r.step('session-end', null);
  });

  test('an interrupt (Esc during a tool) ends the turn', async () => {
    const r = replay('replay-interrupt');
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.step('pre-tool-use', { state: 'tool_running', tool: 'Bash' });
    await r.step('post-tool-use-failure-interrupt', null);
  });

  test('a tool failure is just the end of that call', async () => {
    const r = replay('replay-failure');
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.step('pre-tool-use-read', { state: 'tool_running', tool: 'Read' });
    await r.step('post-tool-use-failure', { state: 'thinking' });
    await r.step('stop', null);
  });

  test('StopFailure shows human text, never a bare code', async () => {
    const r = replay('replay-stop-failure');
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.step('stop-failure-auth', { state: 'error', error: 'Not logged in' });
    await r.step('user-prompt-submit', { state: 'thinking' });
    await r.step('stop-failure-message', { state: 'error', error: payload('stop-failure-message').last_assistant_message as string });
    await r.step('session-end', null);
  });

  test("the turn's token counts come from the transcript, each message once", async () => {
    const r = replay('replay-tokens');
    const a = usage(1200, 80, 300, 5000);
    const b = usage(900, 40, 0, 6500);
    const path = join(tempDir(), 'transcript.jsonl');
    writeFileSync(path, `${[prompt('old'), ...assistant('msg_old', usage(99_999, 9_999), 2), prompt('Fix the tests'), ...assistant('msg_a', a, 3)].join('\n')}\n`);
    await r.step('user-prompt-submit', { state: 'thinking', tokens: null }, { transcript_path: path });
    await r.step('pre-tool-use', { state: 'tool_running' }, { transcript_path: path });
    await r.step('post-tool-use', { state: 'thinking', tokens: turnSum([a]) }, { transcript_path: path });
    writeFileSync(path, `${[toolResult('toolu_a', 100), ...assistant('msg_b', b, 2)].join('\n')}\n`, { flag: 'a' });
    await r.step('pre-tool-use-read', { state: 'tool_running', tool: 'Read' }, { transcript_path: path });
    await r.step('post-tool-use-read', { state: 'thinking', tokens: turnSum([a, b]) }, { transcript_path: path });
    // A missing transcript costs only the counts: the state still changes, the totals stay.
    await r.step('pre-tool-use', { state: 'tool_running' }, { transcript_path: join(tempDir(), 'gone.jsonl') });
    await r.step('post-tool-use', { state: 'thinking', tokens: turnSum([a, b]) }, { transcript_path: join(tempDir(), 'gone.jsonl') });
    await r.step('stop', null);
  });

  test('with a generated 50 MB transcript the hook still reports the turn', async () => {
    const r = replay('replay-50mb');
    const a = usage(3000, 120, 2000, 80_000);
    const path = join(tempDir(), 'big.jsonl');
    writeBigTranscript(path, 50 * 1024 * 1024, [prompt('Now the gift card path'), ...assistant('msg_big_a', a, 4)]);
    await r.step('user-prompt-submit', { state: 'thinking' }, { transcript_path: path });
    await r.step('pre-tool-use', { state: 'tool_running' }, { transcript_path: path });
    await r.step('post-tool-use', { state: 'thinking', tokens: turnSum([a]) }, { transcript_path: path });
    await r.step('session-end', null);
  });
});

describe('a Claude Code process that dies', () => {
  test('its sessions turn to error "agent disconnected" within 2 s (the hook found its pid past the shell)', async () => {
    // The stand-in for Claude Code: a Node process that runs the hook through `sh -c`, as Claude Code does, then idles.
    const input = JSON.stringify({ ...payload('pre-tool-use'), session_id: 'replay-pid' });
    const script = `
      const { spawnSync } = require('node:child_process');
      const r = spawnSync('sh', ['-c', ${JSON.stringify(`"${process.execPath}" "$HOOK" hook claude-code --socket "$SOCK"; true`)}], { input: ${JSON.stringify(input)}, env: process.env });
      process.stdout.write('ran ' + r.status + '\\n');
      setInterval(() => {}, 1000);
    `;
    const claude = spawn(process.execPath, ['-e', script], { env: cleanEnv({ HOOK: hookFile, SOCK: daemon.socket }), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(claude.stdout.setEncoding('utf8'), 'data')) as [string];
      assert.equal(line.trim(), 'ran 0');
      const key = 'claude-code:replay-pid';
      await waitForStatus(daemon.url, (s) => session(s, key)?.state === 'tool_running', `${key} running`);
      // Alive: a few watch rounds later it is still running.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(session(await getStatus(daemon.url), key)?.state, 'tool_running');
      claude.kill('SIGKILL');
      await once(claude, 'exit');
      // The watch probes once a second, so this takes at most about 1 s; waitForStatus's bound is generous (no timing
      // assertion on a loaded machine), and the session would otherwise stay tool_running forever.
      const s = await waitForStatus(daemon.url, (x) => session(x, key)?.state === 'error', `${key} in error`);
      assert.equal(session(s, key)?.error_message, 'agent disconnected');
    } finally {
      claude.kill('SIGKILL');
    }
  });

  test('sessions without a pid are never touched by the watch', async () => {
    const { sendOnce } = await import('./helpers/daemon.ts');
    await sendOnce(daemon.socket, { type: 'agent_start', session_key: 'cli:no-pid' });
    await waitForStatus(daemon.url, (s) => session(s, 'cli:no-pid')?.state === 'thinking', 'cli:no-pid');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(session(await getStatus(daemon.url), 'cli:no-pid')?.state, 'thinking');
  });
});
