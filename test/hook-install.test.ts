/**
 * `pocketpaw-status hook claude-code --install | --uninstall | --print` on temporary Claude Code settings files:
 * idempotent, keeps everything else, backs up, refuses invalid JSON without touching anything, and the command it
 * installs really reports to the daemon.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HOOK_EVENTS } from '../daemon/cli/hook-install.ts';
import { CLI, cleanEnv, ROOT, session, startDaemon, tempDir, waitForStatus, type TestDaemon } from './helpers/daemon.ts';

async function cli(args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string } = {}) {
  // tsx by its resolved URL: the working directory may be a project without node_modules.
  const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, ...args], { cwd: options.cwd ?? ROOT, env: cleanEnv(options.env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  proc.stdin.end(options.input ?? '');
  const [code] = (await once(proc, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

const install = (...args: string[]) => cli(['hook', 'claude-code', '--install', ...args]);
const uninstall = (...args: string[]) => cli(['hook', 'claude-code', '--uninstall', ...args]);
type Settings = { hooks: Record<string, { matcher?: string; hooks: { type: string; command: string; timeout?: number }[] }[]>; [k: string]: unknown };
const read = (path: string): Settings => JSON.parse(readFileSync(path, 'utf8')) as Settings;
const ours = (command: string) => / hook claude-code( |$)/.test(command);
const ourCommands = (s: Settings): string[] => Object.values(s.hooks ?? {}).flatMap((groups) => groups.flatMap((g) => g.hooks.map((h) => h.command).filter(ours)));

/** A settings file a person already has: other keys, other hooks, a matcher group of their own. */
const EXISTING = {
  model: 'opus',
  permissions: { allow: ['Bash(npm test:*)'] },
  hooks: {
    PreToolUse: [{ matcher: 'Bash', hooks: [{ type: 'command', command: '/usr/local/bin/audit-bash', timeout: 3 }] }],
    Stop: [{ hooks: [{ type: 'command', command: 'notify-send done' }] }],
    PostCompact: [{ hooks: [{ type: 'command', command: 'echo compacted' }] }],
  },
};

describe('hook claude-code --install', () => {
  test('into a missing file: every mapped event, this installation\'s command, no backup', async () => {
    const path = join(tempDir(), 'nested', 'settings.json');
    const r = await install('--settings', path);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Added the pocketpaw-status hook/);
    const s = read(path);
    assert.deepEqual(Object.keys(s.hooks).sort(), HOOK_EVENTS.map((e) => e.event).sort());
    for (const { event, tools } of HOOK_EVENTS) {
      const groups = s.hooks[event]!;
      assert.equal(groups.length, 1, event);
      assert.equal(groups[0]!.matcher, tools ? '*' : undefined, event);
      assert.equal(groups[0]!.hooks[0]!.type, 'command');
      assert.equal(groups[0]!.hooks[0]!.timeout, 5);
    }
    const command = s.hooks.PreToolUse![0]!.hooks[0]!.command;
    assert.ok(command.startsWith(process.execPath), command);
    assert.ok(command.endsWith(' hook claude-code'), command);
    assert.equal(existsSync(`${path}.bak`), false);
  });

  test('keeps every other key and hook, writes a backup, and twice is once', async () => {
    const path = join(tempDir(), 'settings.json');
    const original = `${JSON.stringify(EXISTING, null, 4)}\n`;
    writeFileSync(path, original);
    const first = await install('--settings', path);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(readFileSync(`${path}.bak`, 'utf8'), original, 'the backup is the file as it was');
    const s = read(path);
    assert.equal(s.model, 'opus');
    assert.deepEqual(s.permissions, EXISTING.permissions);
    assert.deepEqual(s.hooks.PreToolUse![0], EXISTING.hooks.PreToolUse[0]);
    assert.deepEqual(s.hooks.Stop![0], EXISTING.hooks.Stop[0]);
    assert.deepEqual(s.hooks.PostCompact, EXISTING.hooks.PostCompact);
    assert.equal(ourCommands(s).length, HOOK_EVENTS.length);
    const after1 = readFileSync(path, 'utf8');
    const second = await install('--settings', path);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /already in .*nothing changed/);
    assert.equal(readFileSync(path, 'utf8'), after1, 'the second install changes nothing');
    assert.equal(readFileSync(`${path}.bak`, 'utf8'), original, 'and leaves the backup alone');
  });

  test('--socket goes into the command; installing again with another socket replaces our entries in place', async () => {
    const path = join(tempDir(), 'settings.json');
    writeFileSync(path, JSON.stringify(EXISTING));
    const sock1 = join(tempDir(), 'a b', 'ingest.sock');
    assert.equal((await install('--settings', path, '--socket', sock1)).code, 0);
    assert.ok(ourCommands(read(path)).every((c) => c.endsWith(`--socket '${sock1}'`)), ourCommands(read(path))[0]);
    const sock2 = join(tempDir(), 'ingest.sock');
    assert.equal((await install('--settings', path, `--socket=${sock2}`)).code, 0);
    const s = read(path);
    assert.equal(ourCommands(s).length, HOOK_EVENTS.length, 'no duplicates');
    assert.ok(ourCommands(s).every((c) => c.endsWith(`--socket ${sock2}`)));
    assert.equal(s.hooks.PreToolUse![0]!.matcher, 'Bash', 'the person\'s own group stays first');
  });

  test('--print shows the resulting settings and writes nothing', async () => {
    const path = join(tempDir(), 'settings.json');
    const original = JSON.stringify(EXISTING);
    writeFileSync(path, original);
    const r = await install('--settings', path, '--print');
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as Settings;
    assert.equal(ourCommands(shown).length, HOOK_EVENTS.length);
    assert.equal(shown.model, 'opus');
    assert.equal(readFileSync(path, 'utf8'), original);
    assert.equal(existsSync(`${path}.bak`), false);
  });

  test('invalid JSON is refused with a clear error, exit 1, and nothing changes', async () => {
    for (const bad of ['{"hooks": {', '[1, 2]', '{"hooks": []}', '{"hooks": {"Stop": {"hooks": []}}}']) {
      const path = join(tempDir(), 'settings.json');
      writeFileSync(path, bad);
      for (const r of [await install('--settings', path), await uninstall('--settings', path)]) {
        assert.equal(r.code, 1, bad);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, /(not valid JSON|JSON object|not an object|not a list).*Nothing was changed\.\n$/s, r.stderr);
        assert.match(r.stderr, new RegExp(path.replace(/[/.]/g, '\\$&')));
      }
      assert.equal(readFileSync(path, 'utf8'), bad);
      assert.equal(existsSync(`${path}.bak`), false);
    }
  });

  test('the default is ~/.claude/settings.json; --project is .claude/settings.json here', async () => {
    const home = tempDir();
    const project = tempDir();
    assert.equal((await cli(['hook', 'claude-code', '--install'], { env: { HOME: home }, cwd: project })).code, 0);
    assert.equal(ourCommands(read(join(home, '.claude', 'settings.json'))).length, HOOK_EVENTS.length);
    assert.equal(existsSync(join(project, '.claude')), false);
    assert.equal((await cli(['hook', 'claude-code', '--install', '--project'], { env: { HOME: home }, cwd: project })).code, 0);
    assert.equal(ourCommands(read(join(project, '.claude', 'settings.json'))).length, HOOK_EVENTS.length);
  });

  test('bad flags are a usage error (exit 2) and touch nothing', async () => {
    const path = join(tempDir(), 'settings.json');
    for (const args of [['--settings'], ['--settings', path, '--project'], ['--settings', path, '--bogus'], ['--settings', path, '--uninstall']]) {
      const r = await install(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /pocketpaw-status hook claude-code: /);
    }
    assert.equal(existsSync(path), false);
  });
});

describe('hook claude-code --uninstall', () => {
  test('removes only our entries (and the groups and events it empties), with a backup; twice is once', async () => {
    const path = join(tempDir(), 'settings.json');
    writeFileSync(path, JSON.stringify(EXISTING));
    assert.equal((await install('--settings', path)).code, 0);
    // The person adds a hook of their own into our group.
    const s = read(path);
    s.hooks.Notification![0]!.hooks.push({ type: 'command', command: 'notify-send "Claude needs you"' });
    writeFileSync(path, JSON.stringify(s));
    const before = readFileSync(path, 'utf8');
    const r = await uninstall('--settings', path);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Removed the pocketpaw-status hook/);
    assert.equal(readFileSync(`${path}.bak`, 'utf8'), before);
    const left = read(path);
    assert.deepEqual(ourCommands(left), []);
    assert.deepEqual(left.hooks.PreToolUse, EXISTING.hooks.PreToolUse);
    assert.deepEqual(left.hooks.Stop, EXISTING.hooks.Stop);
    assert.deepEqual(left.hooks.PostCompact, EXISTING.hooks.PostCompact);
    assert.deepEqual(left.hooks.Notification, [{ hooks: [{ type: 'command', command: 'notify-send "Claude needs you"' }] }]);
    assert.equal(left.hooks.SessionEnd, undefined, 'an event only we used is gone');
    assert.equal(left.model, 'opus');
    const again = await uninstall('--settings', path);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /No pocketpaw-status hook .*nothing changed/);
  });
});

describe('the installed command reports to the daemon', () => {
  let daemon: TestDaemon;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  test('running the PreToolUse command from the settings, as Claude Code does (sh -c), shows the session', async () => {
    const path = join(tempDir(), 'settings.json');
    assert.equal((await install('--settings', path, '--socket', daemon.socket)).code, 0);
    const commandOf = (event: string) => read(path).hooks[event]![0]!.hooks[0]!.command;
    const run = async (command: string, payload: object) => {
      const proc = spawn('sh', ['-c', command], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      proc.stderr.resume();
      proc.stdin.end(JSON.stringify(payload));
      const [code] = (await once(proc, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.equal(stdout, '');
    };
    const base = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/claude-code/pre-tool-use.json'), 'utf8')) as Record<string, unknown>;
    await run(commandOf('PreToolUse'), { ...base, session_id: 'installed' });
    await waitForStatus(daemon.url, (s) => session(s, 'claude-code:installed')?.tool_name === 'Bash', 'the installed hook reported');
    await run(commandOf('SessionEnd'), { ...base, hook_event_name: 'SessionEnd', session_id: 'installed' });
    await waitForStatus(daemon.url, (s) => session(s, 'claude-code:installed') === undefined, 'removed');
  });
});
