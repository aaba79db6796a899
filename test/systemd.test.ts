/**
 * The systemd units, the install script and the shell scripts: `systemd-analyze verify`, what the units must say,
 * `shellcheck`, and the install script run for real into a staging root (twice: idempotent) and as a dry run against
 * the live system (which must change nothing). CI installs systemd and shellcheck (.ci/run).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, chmodSync, constants, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultSocketPath, SERVE_OPTIONS } from '../daemon/config.ts';
import { ROOT, tempDir } from './helpers/daemon.ts';
import { skipWithout } from './helpers/tools.ts';

const SYSTEMD = join(ROOT, 'systemd');
const INSTALL = join(ROOT, 'scripts/install-systemd.sh');
const UNITS = ['pocketpaw-status.socket', 'pocketpaw-status-http.socket', 'pocketpaw-status.service'];


type Unit = Map<string, [key: string, value: string, line: number][]>;

/** Sections and their settings in file order (a key may repeat), with the line each is on. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section = '';
  text.split('\n').forEach((line, i) => {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) unit.set((section = header[1]!), []);
    const setting = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (setting) unit.get(section)!.push([setting[1]!, setting[2]!, i]);
  });
  return unit;
}

function get(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.filter(([k]) => k === key).at(-1)?.[1];
}

function readUnit(name: string): { text: string; unit: Unit } {
  const text = readFileSync(join(SYSTEMD, name), 'utf8');
  return { text, unit: parseUnit(text) };
}

function verify(dir: string): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', ...UNITS.map((u) => join(dir, u))], { encoding: 'utf8', cwd: dir });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** The units in a temporary directory; ExecStart's node pointed at this node when /usr/bin/node is absent. */
function copyUnits(edit: (name: string, text: string) => string = (_, t) => t): string {
  const dir = tempDir();
  let nodeExists = true;
  try {
    accessSync('/usr/bin/node', constants.X_OK);
  } catch {
    nodeExists = false;
  }
  for (const name of UNITS) {
    let text = readFileSync(join(SYSTEMD, name), 'utf8');
    // verify checks that ExecStart's binary exists; elsewhere than /usr/bin (nvm, a container) use this node.
    if (!nodeExists) text = text.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
    writeFileSync(join(dir, name), edit(name, text));
  }
  return dir;
}

test('systemd-analyze verify passes on the units, without a single warning', { skip: skipWithout('systemd-analyze', 'systemd') }, () => {
  const dir = copyUnits();
  try {
    const { status, output } = verify(dir);
    assert.equal(output, '', 'no warnings');
    assert.equal(status, 0);
    // The check can fail: the same run on a unit with a mistake in it reports it.
    const broken = copyUnits((name, text) => (name.endsWith('.service') ? text.replace(/^Type=exec$/m, 'Type=execc') : text));
    try {
      assert.match(verify(broken).output, /service type.*execc/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every setting of the units says why, on the line above it', () => {
  for (const name of UNITS) {
    const { text, unit } = readUnit(name);
    const lines = text.split('\n');
    for (const section of ['Socket', 'Service']) {
      for (const [key, , line] of unit.get(section) ?? []) {
        assert.match(lines[line - 1] ?? '', /^# \S/, `${name}: ${key}= has a comment above it`);
      }
    }
  }
});

test('the ingest socket: the daemon\'s default path under systemd, named ingest, 0660, group pocketpaw-status', () => {
  const { unit } = readUnit('pocketpaw-status.socket');
  const service = readUnit('pocketpaw-status.service').unit;
  const runtimeDir = `/run/${get(service, 'Service', 'RuntimeDirectory')}`;
  assert.equal(get(unit, 'Socket', 'ListenStream'), defaultSocketPath({ RUNTIME_DIRECTORY: runtimeDir }));
  assert.equal(get(unit, 'Socket', 'FileDescriptorName'), 'ingest');
  assert.equal(get(unit, 'Socket', 'SocketMode'), '0660', 'not systemd\'s default 0666: any local user could inject events');
  // The group the install script creates (sysusers.d), which agents' users join.
  const sysusers = readFileSync(join(SYSTEMD, 'pocketpaw-status.sysusers'), 'utf8');
  assert.match(sysusers, new RegExp(`^u ${get(unit, 'Socket', 'SocketGroup')} `, 'm'));
  // RuntimeDirectory= chowns what is inside /run/pocketpaw-status (the socket file too) to the service's User:Group
  // when the service starts: any other SocketGroup= would be undone then, locking the agents out.
  assert.equal(get(unit, 'Socket', 'SocketGroup'), get(service, 'Service', 'Group'));
  assert.equal(get(unit, 'Socket', 'Accept'), 'no');
  assert.equal(get(unit, 'Install', 'WantedBy'), 'sockets.target');
});

test('the HTTP socket: the daemon\'s default address, named http', () => {
  const { unit } = readUnit('pocketpaw-status-http.socket');
  assert.equal(get(unit, 'Socket', 'ListenStream'), `${SERVE_OPTIONS.host.default({})}:${SERVE_OPTIONS.port.default({})}`);
  assert.equal(get(unit, 'Socket', 'FileDescriptorName'), 'http');
  assert.equal(get(unit, 'Socket', 'Service'), 'pocketpaw-status.service');
  assert.equal(get(unit, 'Install', 'WantedBy'), 'sockets.target');
});

test('the service runs node directly on the installed bundle, as its own user, hardened, without MemoryDenyWriteExecute', () => {
  const { text, unit } = readUnit('pocketpaw-status.service');
  const s = (key: string) => get(unit, 'Service', key);
  assert.equal(s('Type'), 'exec');
  // The path install-systemd.sh installs the bundle to, run by node itself (no npm, no shell: LISTEN_PID must match).
  const prefix = /^PREFIX=\/opt\/\$NAME$/m.test(readFileSync(INSTALL, 'utf8')) ? '/opt/pocketpaw-status' : null;
  assert.equal(s('ExecStart'), `/usr/bin/node ${prefix}/dist/cli.js serve`);
  assert.deepEqual(s('Sockets')?.split(' '), ['pocketpaw-status.socket', 'pocketpaw-status-http.socket']);
  assert.equal(s('User'), 'pocketpaw-status');
  assert.equal(s('Group'), 'pocketpaw-status');
  assert.equal(s('RuntimeDirectory'), 'pocketpaw-status');
  assert.equal(s('RuntimeDirectoryPreserve'), 'yes', 'the socket file lives there and must outlive a stop of the service');
  // The state file (docs/state.md): systemd's StateDirectory= is the daemon's default --state-dir, and writable
  // under ProtectSystem=strict; 0700 because the daemon refuses a state folder others may write.
  assert.equal(s('StateDirectory'), 'pocketpaw-status');
  assert.equal(s('StateDirectoryMode'), '0700');
  assert.equal(SERVE_OPTIONS.stateDir.default({ STATE_DIRECTORY: `/var/lib/${s('StateDirectory')}` }), '/var/lib/pocketpaw-status');
  assert.equal(s('LoadCredential'), 'status-api-key:/etc/pocketpaw-status/status-api-key');
  assert.equal(s('Restart'), 'on-failure');
  assert.ok(Number(/^(\d+)s$/.exec(s('TimeoutStopSec') ?? '')?.[1]) >= 5, 'TimeoutStopSec covers the daemon\'s 2 s drain with room');
  const hardening: Record<string, string> = {
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
    CapabilityBoundingSet: '',
    LockPersonality: 'yes',
    SystemCallFilter: '@system-service',
  };
  for (const [key, value] of Object.entries(hardening)) assert.equal(s(key), value, `${key}=${value}`);
  assert.doesNotMatch(text, /^\s*MemoryDenyWriteExecute\s*=/m, 'MemoryDenyWriteExecute kills V8');
  assert.match(text, /Type=notify/, 'the unit says why it is not Type=notify');
  assert.match(text, /sd_notify/);
  for (const socket of ['pocketpaw-status.socket', 'pocketpaw-status-http.socket']) {
    assert.ok(get(unit, 'Unit', 'Requires')?.split(' ').includes(socket));
  }
});

test('shellcheck passes on every shell script', { skip: skipWithout('shellcheck', 'shellcheck') }, () => {
  // Every shell script under scripts/ (by extension or by shebang), however deep, and the CI script.
  const scripts = (readdirSync(join(ROOT, 'scripts'), { recursive: true }) as string[])
    .map((f) => join(ROOT, 'scripts', f))
    .filter((f) => statSync(f).isFile() && (f.endsWith('.sh') || /^#!.*\b(ba|da)?sh\b/.test(readFileSync(f, 'utf8').split('\n', 1)[0]!)));
  assert.ok(scripts.includes(INSTALL));
  const r = spawnSync('shellcheck', [...scripts, join(ROOT, '.ci/run')], { encoding: 'utf8' });
  assert.equal(`${r.stdout}${r.stderr}`, '');
  assert.equal(r.status, 0);
});

// --- the install script ---

function install(args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; stdout: string; stderr: string } {
  // Started from outside the checkout, as an administrator would.
  const r = spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8', env, cwd: tmpdir(), timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What a real install would touch on this machine, in enough detail to see any change. */
function fingerprint(): string {
  const paths = [
    '/etc/passwd',
    '/etc/group',
    '/etc/shadow',
    '/etc/gshadow',
    '/etc/sysusers.d',
    '/opt/pocketpaw-status',
    '/etc/pocketpaw-status',
    '/etc/systemd/system',
  ];
  const lines: string[] = [];
  const walk = (path: string, depth: number) => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      lines.push(`${path} absent`);
      return;
    }
    let detail = `${path} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs}`;
    if (st.isFile()) detail += ` ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
    if (st.isSymbolicLink()) detail += ` -> ${readlinkSync(path)}`;
    lines.push(detail);
    if (st.isDirectory() && depth > 0) for (const entry of readdirSync(path).sort()) walk(join(path, entry), depth - 1);
  };
  for (const path of paths) walk(path, 3);
  return lines.join('\n');
}

test('install-systemd.sh --dry-run prints every action and changes nothing on this machine', () => {
  // Every command that could change the system is replaced by one that records being called (and fails).
  const shims = tempDir();
  const calls = join(shims, 'calls.log');
  for (const cmd of ['useradd', 'groupadd', 'usermod', 'systemd-sysusers', 'systemctl', 'install', 'chmod', 'chown', 'mkdir', 'cp', 'mv', 'rm', 'ln', 'tee', 'mktemp', 'od', 'npm']) {
    writeFileSync(join(shims, cmd), `#!/bin/sh\necho "${cmd} $*" >> '${calls}'\nexit 1\n`);
    chmodSync(join(shims, cmd), 0o755);
  }
  const before = fingerprint();
  try {
    const r = install(['--dry-run'], { ...process.env, PATH: `${shims}:${process.env.PATH}` });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(calls) ? readFileSync(calls, 'utf8') : '', '', 'no command that changes anything was run');
    assert.equal(fingerprint(), before, 'users, groups, /opt, /etc/pocketpaw-status and the units are untouched');
    const out = r.stdout;
    for (const action of [
      /\[dry-run\] .*systemd-sysusers|user and group pocketpaw-status exist/,
      /\[dry-run\] .*scripts\/build\.ts --outdir/,
      /\[dry-run\] install .* \/opt\/pocketpaw-status\/dist\/cli\.js|unchanged: \/opt\/pocketpaw-status\/dist\/cli\.js/,
      /\[dry-run\] install .* \/etc\/systemd\/system\/pocketpaw-status\.service|unchanged: \/etc\/systemd\/system\/pocketpaw-status\.service/,
      /\[dry-run\] write a random 256-bit key .* mode 0600|kept: \/etc\/pocketpaw-status\/status-api-key/,
      /\[dry-run\] systemctl enable --now pocketpaw-status\.socket pocketpaw-status-http\.socket/,
    ]) {
      assert.match(out, action);
    }
    assert.doesNotMatch(out, /^\+ /m, 'nothing is reported as done');
  } finally {
    rmSync(shims, { recursive: true, force: true });
  }
});

test('install-systemd.sh into a staging root: user, bundle, units, a 0600 key, enabled sockets; a second run changes nothing', { skip: skipWithout('systemd-sysusers', 'systemd') }, () => {
  const root = tempDir();
  try {
    const first = install(['--root', root]);
    assert.equal(first.status, 0, `${first.stdout}\n${first.stderr}`);

    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^pocketpaw-status:x:\d+:\d+:[^:]*:[^:]*:\/usr\/sbin\/nologin$/m);
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^pocketpaw-status:x:\d+:/m);
    for (const name of UNITS) {
      assert.equal(readFileSync(join(root, 'etc/systemd/system', name), 'utf8'), readFileSync(join(SYSTEMD, name), 'utf8'), `${name} installed as is`);
    }
    for (const name of ['pocketpaw-status.socket', 'pocketpaw-status-http.socket']) {
      assert.ok(lstatSync(join(root, 'etc/systemd/system/sockets.target.wants', name)).isSymbolicLink(), `${name} enabled`);
    }
    const keyFile = join(root, 'etc/pocketpaw-status/status-api-key');
    const key = readFileSync(keyFile, 'utf8');
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, 'etc/pocketpaw-status')).mode & 0o777, 0o700);
    // The installed bundle is what the unit runs: it starts under plain node, from outside the checkout.
    const bundle = join(root, 'opt/pocketpaw-status/dist/cli.js');
    const help = spawnSync(process.execPath, [bundle, 'serve', '--help'], { encoding: 'utf8', cwd: root });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: pocketpaw-status serve/);
    // cli.js loads the rest of the build on demand (/metrics, the other commands, MQTT, the fleet): all of it is there.
    const loaded = [...readFileSync(bundle, 'utf8').matchAll(/import\("\.\/([\w.-]+\.js)"\)/g)].map((m) => m[1]!);
    assert.ok(loaded.includes('prom-client.js') && loaded.includes('cli-status.js'), `cli.js loads its parts by name: ${loaded.join(', ')}`);
    for (const file of loaded) assert.ok(existsSync(join(root, 'opt/pocketpaw-status/dist', file)), `${file} is installed beside cli.js`);
    const status = spawnSync(process.execPath, [bundle, 'status', '--help'], { encoding: 'utf8', cwd: root });
    assert.equal(status.status, 0, status.stderr);

    const mtimes = () => UNITS.map((u) => statSync(join(root, 'etc/systemd/system', u)).mtimeMs).concat(statSync(bundle).mtimeMs, statSync(keyFile).mtimeMs);
    const before = mtimes();
    const second = install(['--root', root]);
    assert.equal(second.status, 0, second.stderr);
    assert.doesNotMatch(second.stdout, /^\+ install /m, 'nothing reinstalled');
    assert.doesNotMatch(second.stdout, /^\+ .*sysusers/m, 'the user is not created again');
    assert.match(second.stdout, /kept: .*status-api-key/);
    assert.equal(readFileSync(keyFile, 'utf8'), key, 'the key is never replaced');
    assert.deepEqual(mtimes(), before);

    // A dry run against the staging root touches nothing either.
    const dry = install(['--root', root, '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.deepEqual(mtimes(), before);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('install-systemd.sh refuses what it cannot do, saying what to do instead', () => {
  const unknown = install(['--bogus']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown option --bogus \(see --help\)/);
  const root = tempDir();
  try {
    mkdirSync(join(root, 'etc'), { recursive: true });
    copyFileSync('/etc/hostname', join(root, 'etc/hostname'));
    const r = install(['--root', root, '--agent-user', 'no-such-agent-user']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /user no-such-agent-user does not exist/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
