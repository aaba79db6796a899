/**
 * The Python package (protocol/python): built into a wheel with Debian's own tools (pip wheel --no-build-isolation,
 * python3-setuptools and python3-wheel; no index, nothing downloaded), installed into a fresh virtualenv, which then
 * reports a session to a real daemon through the PocketPaw bridge, `pocketpaw_status.pocketpaw`.
 *
 * Debian's /usr/bin/python3 on purpose: a pyenv or other python3 on PATH may lack Debian's setuptools and wheel.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, cleanEnv, startDaemon, tempDir, waitFor, waitForStatus } from './helpers/daemon.ts';
import { IN_CI, skipWithout } from './helpers/tools.ts';

const PYTHON = '/usr/bin/python3';

/** Skips (or fails under CI) unless Debian's python3 has venv, setuptools, wheel and pip. */
function skipReason(): string | false {
  const missing = skipWithout(PYTHON, 'python3');
  if (missing) return missing;
  const modules: [string, string][] = [['ensurepip', 'python3-venv'], ['setuptools', 'python3-setuptools'], ['wheel', 'python3-wheel'], ['pip', 'python3-pip']];
  const absent = modules.filter(([module]) => spawnSync(PYTHON, ['-c', `import ${module}`]).status !== 0).map(([, pkg]) => pkg);
  if (absent.length === 0) return false;
  const why = `needs ${absent.join(', ')}: apt-get install ${absent.join(' ')}`;
  if (IN_CI) throw new Error(`${why} (CI=true: .ci/run must install it)`);
  return why;
}

function run(command: string, args: string[], env: Record<string, string> = {}): string {
  // PYTHONPATH from the machine would let the checkout's module stand in for the installed one.
  const { PYTHONPATH: _, PYTHONHOME: __, ...base } = cleanEnv(env);
  const r = spawnSync(command, args, { env: base, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('the wheel installs into a fresh virtualenv and its PocketPaw bridge reports a session to the daemon', { skip: skipReason(), timeout: 300_000 }, async () => {
  const dir = tempDir();
  // Built from a copy: a build writes build/ and *.egg-info next to the sources.
  const src = join(dir, 'src');
  cpSync(join(ROOT, 'protocol/python'), src, { recursive: true, filter: (path) => !path.includes('__pycache__') });
  run(PYTHON, ['-m', 'pip', 'wheel', '--no-build-isolation', '--no-deps', '--no-index', '-w', join(dir, 'wheels'), src]);
  const wheel = readdirSync(join(dir, 'wheels')).find((f) => /^pocketpaw_status-.*-py3-none-any\.whl$/.test(f));
  assert.ok(wheel, 'a pure-Python wheel');

  const venv = join(dir, 'venv');
  run(PYTHON, ['-m', 'venv', venv]);
  run(join(venv, 'bin/pip'), ['install', '--no-index', '--disable-pip-version-check', join(dir, 'wheels', wheel)]);

  const d = await startDaemon();
  try {
    // PocketPaw's bus, as far as the bridge sees it: subscribe_system(callback), then SystemEvent(event_type, data).
    const script = `
import asyncio, os, sys, types
import pocketpaw_status
from pocketpaw_status.pocketpaw import bridge
assert os.path.realpath(pocketpaw_status.__file__).startswith(os.path.realpath(sys.prefix)), pocketpaw_status.__file__

class Bus:
    def subscribe_system(self, callback):
        self.callback = callback

bus = Bus()
status = bridge(bus=bus)
async def publish():
    for event_type, data in [
        ("agent_start", {"session_key": "websocket:wheel", "title": "From the wheel"}),
        ("tool_start", {"session_key": "websocket:wheel", "name": "bash", "params": {"cmd": "ls"}}),
        ("thinking_done", {"session_key": "websocket:wheel"}),
    ]:
        await bus.callback(types.SimpleNamespace(event_type=event_type, data=data))
asyncio.run(publish())
print("sent", status.dropped, flush=True)
sys.stdin.read()  # the agent lives until the test has looked
status.close()
`;
    const { PYTHONPATH: _, PYTHONHOME: __, ...env } = cleanEnv({ POCKETPAW_STATUS_SOCKET: d.socket });
    const agent = spawn(join(venv, 'bin/python'), ['-c', script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    agent.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
    agent.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
    const exited = once(agent, 'exit');
    await waitFor(() => out.includes('\n') || agent.exitCode !== null, { timeoutMs: 30_000, what: 'the agent to publish' });
    assert.equal(out.trim(), 'sent 0', err);
    const s = await waitForStatus(d.url, (x) => x.sessions.some((y) => y.session_key === 'websocket:wheel' && y.state === 'tool_running'), 'the session');
    const session = s.sessions.find((y) => y.session_key === 'websocket:wheel')!;
    assert.equal(session.title, 'From the wheel');
    assert.equal(session.tool_name, 'bash');
    agent.stdin.end();
    assert.deepEqual(await exited, [0, null], err);
  } finally {
    await d.stop();
  }
});
