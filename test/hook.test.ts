/**
 * `pocketpaw-status hook claude-code`: recorded Claude Code payloads of each kind, through the real command into the
 * real daemon; and the promises to Claude Code: exit 0, nothing on stdout, daemon up or down, nothing heavy loaded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { claudeCodePid, mapClaudeCodeHook, wantsTokens } from '../daemon/cli/hook-claude-code.ts';
import { StatusEvent } from '../protocol/events.ts';
import { CLI, cleanEnv, ROOT, runCli, session, startDaemon, tempDir, waitForStatus, type TestDaemon } from './helpers/daemon.ts';

const FIXTURES = join(ROOT, 'test/fixtures/claude-code');
const fixture = (name: string): string => readFileSync(join(FIXTURES, `${name}.json`), 'utf8');
const payload = (name: string): Record<string, unknown> => JSON.parse(fixture(name)) as Record<string, unknown>;
const SESSION_ID = payload('user-prompt-submit').session_id as string;
const KEY = `claude-code:${SESSION_ID}`;
/** Every recorded payload kind. */
const ALL = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length));

/** Runs the hook exactly as Claude Code does: the payload on stdin, nothing else. */
async function hook(input: string, options: { socket?: string; env?: Record<string, string>; args?: string[] } = {}) {
  const args = ['hook', 'claude-code', ...(options.socket ? ['--socket', options.socket] : []), ...(options.args ?? [])];
  return runCli(args, { input, env: options.env });
}

async function hookOk(input: string, options: Parameters<typeof hook>[1] = {}): Promise<void> {
  const r = await hook(input, options);
  assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '', 'a hook must print nothing on stdout: Claude Code reads it');
}

describe('hook claude-code: the mapping of each recorded payload', () => {
  const k = { session_key: KEY };
  const go = { create_session: true };

  test('UserPromptSubmit starts a run titled with the first line of the prompt, cut to 80 characters', () => {
    const prompt = payload('user-prompt-submit').prompt as string;
    assert.ok(prompt.split('\n')[0]!.length > 80, 'the recorded prompt has a long first line and more lines');
    assert.deepEqual(mapClaudeCodeHook(payload('user-prompt-submit')), [{ type: 'agent_start', ...k, title: prompt.split('\n')[0]!.slice(0, 80) }]);
  });

  test('tool calls carry their tool_use_id; events that mean work goes on may create the session', () => {
    assert.deepEqual(mapClaudeCodeHook(payload('pre-tool-use')), [{ type: 'tool_start', ...k, name: 'Bash', call_id: 'toolu_01HXk7qJ2vPz9RbN4sWc8TmE', ...go }]);
    assert.deepEqual(mapClaudeCodeHook(payload('post-tool-use')), [{ type: 'tool_result', ...k, call_id: 'toolu_01HXk7qJ2vPz9RbN4sWc8TmE' }]);
    assert.deepEqual(mapClaudeCodeHook(payload('post-tool-use-failure')), [{ type: 'tool_result', ...k, call_id: 'toolu_01Ab3RkW9pLq2VtX7nYc4DsF' }]);
    assert.deepEqual(mapClaudeCodeHook(payload('post-tool-use-failure-interrupt')), [{ type: 'agent_end', ...k }], 'Esc ends the turn');
    assert.deepEqual(mapClaudeCodeHook(payload('permission-denied')), [{ type: 'tool_result', ...k, call_id: 'toolu_01HXk7qJ2vPz9RbN4sWc8TmE' }]);
    // Without a tool_use_id (older Claude Code) as before: the parent's call ends; a subagent's cannot be told apart.
    const { tool_use_id: _, ...old } = payload('post-tool-use');
    assert.deepEqual(mapClaudeCodeHook(old), [{ type: 'thinking', ...k }]);
    const { tool_use_id: __, ...oldSub } = payload('subagent-post-tool-use');
    assert.deepEqual(mapClaudeCodeHook(oldSub), []);
  });

  test('only what waits on the person asks: permission prompts, elicitation dialogs, asking tools', () => {
    assert.deepEqual(mapClaudeCodeHook(payload('permission-request')), [{ type: 'ask_user_question', ...k, ...go }]);
    assert.deepEqual(mapClaudeCodeHook(payload('notification')), [{ type: 'ask_user_question', ...k, ...go }]);
    assert.deepEqual(mapClaudeCodeHook(payload('notification-elicitation-dialog')), [{ type: 'ask_user_question', ...k, call_id: 'elicitation', ...go }]);
    for (const end of ['notification-elicitation-complete', 'notification-elicitation-response']) {
      assert.deepEqual(mapClaudeCodeHook(payload(end)), [{ type: 'tool_result', ...k, call_id: 'elicitation' }], end);
    }
    for (const none of ['notification-idle', 'notification-auth-success']) assert.deepEqual(mapClaudeCodeHook(payload(none)), [], none);
    assert.deepEqual(mapClaudeCodeHook({ ...payload('notification'), notification_type: 'something_new' }), []);
    assert.deepEqual(mapClaudeCodeHook(payload('pre-tool-use-ask-user-question')), [
      { type: 'ask_user_question', ...k, call_id: 'toolu_01Qa7Lm3NbVc9XsK2pRd5TeW', ...go },
    ]);
    assert.deepEqual(mapClaudeCodeHook({ ...payload('pre-tool-use-ask-user-question'), tool_name: 'ExitPlanMode' })[0]!.type, 'ask_user_question');
  });

  test('subagents are calls of their own; Stop with background tasks stays busy; Stop and SessionEnd end', () => {
    assert.deepEqual(mapClaudeCodeHook(payload('subagent-start')), [{ type: 'tool_start', ...k, name: 'Agent', call_id: 'agent:a91f3c2d', ...go }]);
    assert.deepEqual(mapClaudeCodeHook(payload('subagent-stop')), [{ type: 'tool_result', ...k, call_id: 'agent:a91f3c2d' }]);
    assert.deepEqual(mapClaudeCodeHook(payload('stop-background')), [{ type: 'tool_start', ...k, name: 'Agent', call_id: 'agent:b73e90aa', ...go }]);
    assert.deepEqual(
      mapClaudeCodeHook({ ...payload('stop'), background_tasks: [{ id: 'bx1', type: 'shell', status: 'running', command: 'npm run dev' }, { id: 'done', type: 'shell', status: 'completed' }] }),
      [{ type: 'tool_start', ...k, name: 'Bash', call_id: 'task:bx1', ...go }],
    );
    assert.deepEqual(mapClaudeCodeHook(payload('stop')), [{ type: 'agent_end', ...k }]);
    assert.deepEqual(mapClaudeCodeHook(payload('stop-hook-active')), [{ type: 'agent_end', ...k }]);
    assert.deepEqual(mapClaudeCodeHook(payload('session-end')), [{ type: 'agent_end', ...k }]);
    for (const ignored of ['session-start', 'pre-compact']) assert.deepEqual(mapClaudeCodeHook(payload(ignored)), [], ignored);
  });

  test('StopFailure says what happened in words: error_details, else the message shown, else the error type', () => {
    const error = (name: string, extra: Record<string, unknown> = {}) => mapClaudeCodeHook({ ...payload(name), ...extra })[0];
    assert.deepEqual(error('stop-failure'), { type: 'error', ...k, message: payload('stop-failure').error_details, ...go });
    assert.equal(error('stop-failure-message')?.message, payload('stop-failure-message').last_assistant_message);
    assert.equal(error('stop-failure-auth')?.message, 'Not logged in');
    assert.equal(error('stop-failure-auth', { error: 'rate_limit' })?.message, 'Rate limited');
    assert.equal(error('stop-failure-auth', { error: 'brand_new_kind' })?.message, 'The API request failed (brand new kind)');
    assert.equal(error('stop-failure-auth', { error: undefined })?.message, 'The API request failed');
  });

  test('the pid and the token counts ride along where they belong', () => {
    const ctx = { pid: 4242, tokens: { input: 1200, output: 80 } };
    assert.deepEqual(mapClaudeCodeHook(payload('post-tool-use'), ctx), [
      { type: 'tool_result', ...k, call_id: 'toolu_01HXk7qJ2vPz9RbN4sWc8TmE', pid: 4242 },
      { type: 'token_usage', ...k, input: 1200, output: 80 },
    ]);
    assert.deepEqual(mapClaudeCodeHook(payload('user-prompt-submit'), ctx)[0]!.pid, 4242);
    assert.deepEqual(mapClaudeCodeHook(payload('stop'), ctx), [{ type: 'agent_end', ...k }]);
    for (const name of ['post-tool-use', 'post-tool-use-failure', 'subagent-stop', 'stop-background']) assert.equal(wantsTokens(payload(name)), true, name);
    for (const name of ['pre-tool-use', 'stop', 'post-tool-use-failure-interrupt', 'user-prompt-submit']) assert.equal(wantsTokens(payload(name)), false, name);
  });

  test('a title is cut by characters, never inside an emoji; a blank first line is skipped', () => {
    const long = `${'🐛'.repeat(100)}\nmore`;
    const [event] = mapClaudeCodeHook({ hook_event_name: 'UserPromptSubmit', session_id: 'x', prompt: long });
    assert.equal(event?.title, '🐛'.repeat(80));
    const [blank] = mapClaudeCodeHook({ hook_event_name: 'UserPromptSubmit', session_id: 'x', prompt: '\n\n  Deploy it\nnow' });
    assert.equal(blank?.title, 'Deploy it');
    assert.deepEqual(mapClaudeCodeHook({ hook_event_name: 'UserPromptSubmit', session_id: 'x', prompt: '' }), [{ type: 'agent_start', session_key: 'claude-code:x' }]);
  });

  test('payloads without a session id, or that are not objects, map to nothing', () => {
    assert.deepEqual(mapClaudeCodeHook({ hook_event_name: 'PreToolUse', tool_name: 'Bash' }), []);
    assert.deepEqual(mapClaudeCodeHook({ hook_event_name: 'PreToolUse', session_id: '' }), []);
    assert.deepEqual(mapClaudeCodeHook(null), []);
    assert.deepEqual(mapClaudeCodeHook([1]), []);
    assert.deepEqual(mapClaudeCodeHook('Stop'), []);
  });

  test('every event the hook writes is valid protocol', () => {
    for (const name of readdirSync(FIXTURES)) {
      for (const event of mapClaudeCodeHook(payload(name.replace(/\.json$/, '')), { pid: 99, tokens: { input: 1, output: 2 } })) {
        const parsed = StatusEvent.safeParse(event);
        assert.ok(parsed.success, `${name}: ${JSON.stringify(event)}`);
      }
    }
  });
});

describe('hook claude-code: the Claude Code pid', () => {
  test('is the nearest ancestor that is not a shell; without /proc for a pid, none', async (t) => {
    if (!existsSync('/proc/self/stat')) return t.skip('no /proc on this system: the hook sends no pid here');
    // A shell whose parent is this (Node) process: walking up from the shell skips it and lands here.
    const sh = spawn('sh', ['-c', 'sleep 30; true'], { stdio: 'ignore' });
    try {
      await once(sh, 'spawn');
      assert.equal(claudeCodePid(sh.pid!), process.pid);
      assert.equal(claudeCodePid(process.pid), process.pid, 'a non-shell is itself');
      assert.equal(claudeCodePid(2 ** 30), null, 'a pid that does not exist');
    } finally {
      sh.kill('SIGKILL');
    }
  });
});

describe('hook claude-code through the real daemon', () => {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  const stateIs = (state: string | null, extra: (s: NonNullable<ReturnType<typeof session>>) => boolean = () => true) =>
    waitForStatus(daemon.url, (s) => {
      const x = session(s, KEY);
      return state === null ? x === undefined : x !== undefined && x.state === state && extra(x);
    }, `${KEY} in ${state ?? 'no state (removed)'}`);

  test('a whole Claude Code turn shows up state by state, and Stop removes it', async () => {
    const title = (payload('user-prompt-submit').prompt as string).slice(0, 80);
    await hookOk(fixture('user-prompt-submit'), { socket: daemon.socket });
    await stateIs('thinking', (x) => x.title === title && x.channel === 'claude-code' && x.session_id === SESSION_ID);
    await hookOk(fixture('pre-tool-use'), { socket: daemon.socket });
    await stateIs('tool_running', (x) => x.tool_name === 'Bash');
    await hookOk(fixture('post-tool-use'), { socket: daemon.socket });
    await stateIs('thinking', (x) => x.tool_name === null);
    await hookOk(fixture('pre-tool-use-read'), { socket: daemon.socket });
    await stateIs('tool_running', (x) => x.tool_name === 'Read');
    await hookOk(fixture('post-tool-use-failure'), { socket: daemon.socket });
    await stateIs('thinking');
    await hookOk(fixture('notification'), { socket: daemon.socket });
    await stateIs('waiting_for_user');
    await hookOk(fixture('pre-tool-use'), { socket: daemon.socket });
    await stateIs('tool_running');
    await hookOk(fixture('permission-request'), { socket: daemon.socket });
    await stateIs('waiting_for_user');
    // Hooks we do not report change nothing.
    for (const ignored of ['session-start', 'pre-compact', 'subagent-stop']) await hookOk(fixture(ignored), { socket: daemon.socket });
    await hookOk(fixture('notification'), { socket: daemon.socket });
    await stateIs('waiting_for_user', (x) => x.title === title);
    await hookOk(fixture('stop'), { socket: daemon.socket });
    await stateIs(null);
  });

  test('StopFailure shows the error; SessionEnd removes the session', async () => {
    await hookOk(fixture('user-prompt-submit'), { socket: daemon.socket });
    await stateIs('thinking');
    await hookOk(fixture('stop-failure'), { socket: daemon.socket });
    await stateIs('error', (x) => x.error_message === payload('stop-failure').error_details);
    await hookOk(fixture('session-end'), { socket: daemon.socket });
    await stateIs(null);
  });

  test('the socket comes from POCKETPAW_STATUS_SOCKET when --socket is not given', async () => {
    await hookOk(fixture('user-prompt-submit'), { env: { POCKETPAW_STATUS_SOCKET: daemon.socket } });
    await stateIs('thinking');
    await hookOk(fixture('stop'), { env: { POCKETPAW_STATUS_SOCKET: daemon.socket } });
    await stateIs(null);
  });
});

describe('hook claude-code never disturbs the agent', () => {
  test('with no daemon, every payload kind exits 0 and prints nothing', async () => {
    const socket = join(tempDir(), 'nobody-here.sock');
    for (const name of ALL) {
      const r = await hook(fixture(name), { socket });
      assert.equal(r.code, 0, name);
      assert.equal(r.stdout, '', name);
      assert.equal(r.stderr, '', name);
    }
  });

  test('garbage on stdin, an empty stdin and unknown arguments exit 0 and print nothing', async () => {
    const socket = join(tempDir(), 'nobody-here.sock');
    for (const input of ['', 'not json', '[1,2]', 'null', '{"hook_event_name":"Stop"}', '\u0000\u00ff']) {
      const r = await hook(input, { socket, args: ['--surprise', 'x'] });
      assert.equal(r.code, 0, JSON.stringify(input));
      assert.equal(r.stdout, '', JSON.stringify(input));
    }
  });

  test('a stdin that never closes does not hold the agent: the hook exits 0 by itself', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, 'hook', 'claude-code', '--socket', join(tempDir(), 'x.sock')], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stdin.write('{"hook_event_name":"PreToolUse",'); // and never more
    const [code] = (await once(proc, 'exit')) as [number | null];
    proc.stdin.destroy();
    assert.equal(code, 0);
    assert.equal(stdout, '');
  });

  test('its code path loads no schema library, HTTP server or logger, and no project module beyond its own', async () => {
    const dir = tempDir();
    const trace = join(dir, 'resolved.txt');
    writeFileSync(
      join(dir, 'trace-hooks.mjs'),
      `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(file, result.url + '\\n');
  return result;
}
`,
    );
    writeFileSync(
      join(dir, 'trace.mjs'),
      `import { register } from 'node:module';
register('./trace-hooks.mjs', import.meta.url, { data: { file: ${JSON.stringify(trace)} } });
`,
    );
    writeFileSync(trace, '');
    const proc = spawn(process.execPath, ['--import', 'tsx', '--import', join(dir, 'trace.mjs'), CLI, 'hook', 'claude-code', '--socket', join(dir, 'x.sock')], {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stdin.end(fixture('pre-tool-use'));
    proc.stdout.resume();
    proc.stderr.resume();
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0);
    const urls = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
    assert.ok(urls.some((u) => u.endsWith('/daemon/cli/hook-claude-code.ts')), `the trace saw the hook module: ${urls.join(', ')}`);
    const heavy = urls.filter((u) => /node_modules\/(zod|hono|@hono|pino|prom-client)\//.test(u));
    assert.deepEqual(heavy, [], 'no heavy dependency on the hook path');
    const project = [...new Set(urls.filter((u) => u.startsWith('file:') && !u.includes('/node_modules/')).map((u) => u.slice(u.indexOf(ROOT) + ROOT.length)))];
    assert.deepEqual(project.sort(), ['/daemon/cli.ts', '/daemon/cli/hook-claude-code.ts', '/daemon/cli/hook-transcript.ts', '/protocol/socket-path.ts']);
  });
});
