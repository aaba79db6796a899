/**
 * `pocketpaw-status hook claude-code --install | --uninstall [--print]`: adds this hook to Claude Code's settings (or
 * takes it out again), for every event the adapter maps, with the command path of this installation.
 *
 * Settings files are the person's: every other key and hook is kept as it is, the file is rewritten only when
 * something changes (installing twice is installing once), a backup of the old file is written next to it first, and a
 * file that is not valid JSON is refused (exit 1) without touching anything. Our own entries are the command hooks
 * whose command runs `hook claude-code`; nothing else is ever removed.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every event the adapter maps; tool events get `"matcher": "*"` (every tool), the others need none. */
export const HOOK_EVENTS: readonly { readonly event: string; readonly tools: boolean }[] = [
  { event: 'UserPromptSubmit', tools: false },
  { event: 'PreToolUse', tools: true },
  { event: 'PostToolUse', tools: true },
  { event: 'PostToolUseFailure', tools: true },
  { event: 'PermissionRequest', tools: true },
  { event: 'PermissionDenied', tools: true },
  { event: 'Notification', tools: false },
  { event: 'SubagentStart', tools: false },
  { event: 'SubagentStop', tools: false },
  { event: 'Stop', tools: false },
  { event: 'StopFailure', tools: false },
  { event: 'SessionEnd', tools: false },
];
/** Seconds Claude Code waits for the hook; it exits by itself within 2 s anyway. */
const HOOK_TIMEOUT_S = 5;
const OURS = /(^|\s|['"])hook claude-code(\s|$|['"])/;

type Json = Record<string, unknown>;

export class InstallError extends Error {}

interface InstallOptions {
  readonly mode: 'install' | 'uninstall';
  readonly settings: string;
  readonly socket: string | null;
  readonly print: boolean;
}

/** Parses the flags; throws InstallError with a message a person can act on. */
export function parseInstallArgs(argv: readonly string[], cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): InstallOptions {
  let mode: 'install' | 'uninstall' | null = null;
  let settings: string | null = null;
  let project = false;
  let socket: string | null = null;
  let print = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (flag: string): string => {
      const eq = arg.startsWith(`${flag}=`) ? arg.slice(flag.length + 1) : null;
      const v = eq ?? argv[++i];
      if (v === undefined || v === '') throw new InstallError(`${flag} needs a path`);
      return v;
    };
    if (arg === '--install' || arg === '--uninstall') {
      const m = arg === '--install' ? 'install' : 'uninstall';
      if (mode !== null && mode !== m) throw new InstallError('use either --install or --uninstall, not both');
      mode = m;
    } else if (arg === '--print') print = true;
    else if (arg === '--project') project = true;
    else if (arg === '--settings' || arg.startsWith('--settings=')) settings = value('--settings');
    else if (arg === '--socket' || arg.startsWith('--socket=')) socket = value('--socket');
    else throw new InstallError(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (settings !== null && project) throw new InstallError('use either --settings PATH or --project, not both');
  if (mode === 'uninstall' && socket !== null) throw new InstallError('--socket belongs to --install');
  const home = env.HOME && env.HOME !== '' ? env.HOME : homedir();
  return {
    mode: mode ?? 'install',
    settings: settings !== null ? resolve(cwd, settings) : project ? join(cwd, '.claude', 'settings.json') : join(home, '.claude', 'settings.json'),
    socket: socket !== null ? resolve(cwd, socket) : null,
    print,
  };
}

/**
 * The command Claude Code runs: this Node and this installation's hook, by absolute paths. The dedicated bundle
 * (dist/hook.js, built by `npm run build`) starts fastest; without a build, the sources through the bin script.
 */
export function hookCommandLine(socket: string | null): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'hook.js'), resolve(here, '../../dist/hook.js')];
  const script = candidates.find((c) => existsSync(c)) ?? resolve(here, '../../scripts/pocketpaw-status.js');
  const args = [process.execPath, script, 'hook', 'claude-code', ...(socket !== null ? ['--socket', socket] : [])];
  return args.map(shellQuote).join(' ');
}

function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function isOurs(hook: unknown): boolean {
  return typeof hook === 'object' && hook !== null && typeof (hook as Json).command === 'string' && OURS.test((hook as Json).command as string);
}

/** The settings with our entries for every event (in place where they were, else appended). Pure. */
export function withHook(settings: Json, command: string, where = 'the settings'): Json {
  const hooks = hooksOf(settings, where);
  const next: Json = { ...hooks };
  for (const { event, tools } of HOOK_EVENTS) {
    const ours = { type: 'command', command, timeout: HOOK_TIMEOUT_S };
    const group: Json = tools ? { matcher: '*', hooks: [ours] } : { hooks: [ours] };
    const groups = groupsOf(hooks, event, where);
    let placed = false;
    const out: unknown[] = [];
    for (const g of groups) {
      const list = hookList(g);
      if (list === null || !list.some(isOurs)) {
        out.push(g);
        continue;
      }
      const sameMatcher = (g as Json).matcher === group.matcher;
      const kept: unknown[] = [];
      for (const h of list) {
        if (!isOurs(h)) kept.push(h);
        else if (!placed && sameMatcher) {
          kept.push(ours);
          placed = true;
        }
      }
      if (kept.length > 0) out.push({ ...(g as Json), hooks: kept });
    }
    if (!placed) out.push(group);
    next[event] = out;
  }
  return { ...settings, hooks: next };
}

/** The settings without any of our entries; groups and events we empty go too, everything else stays. Pure. */
export function withoutHook(settings: Json, where = 'the settings'): Json {
  if (settings.hooks === undefined) return settings;
  const hooks = hooksOf(settings, where);
  const next: Json = {};
  for (const event of Object.keys(hooks)) {
    const groups = groupsOf(hooks, event, where);
    const out: unknown[] = [];
    for (const g of groups) {
      const list = hookList(g);
      if (list === null || !list.some(isOurs)) out.push(g);
      else {
        const kept = list.filter((h) => !isOurs(h));
        if (kept.length > 0) out.push({ ...(g as Json), hooks: kept });
      }
    }
    if (out.length > 0 || groups.length === 0) next[event] = out;
  }
  return { ...settings, hooks: next };
}

function hooksOf(settings: Json, where: string): Json {
  const hooks = settings.hooks ?? {};
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) throw new InstallError(`"hooks" in ${where} is not an object`);
  return hooks as Json;
}

function groupsOf(hooks: Json, event: string, where: string): unknown[] {
  const groups = hooks[event] ?? [];
  if (!Array.isArray(groups)) throw new InstallError(`"hooks.${event}" in ${where} is not a list`);
  return groups;
}

function hookList(group: unknown): unknown[] | null {
  if (typeof group !== 'object' || group === null) return null;
  const list = (group as Json).hooks;
  return Array.isArray(list) ? list : null;
}

/** Reads a settings file: {} when it does not exist or is blank; InstallError when it is not a JSON object. */
export function readSettings(path: string): { settings: Json; existed: boolean } {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { settings: {}, existed: false };
    throw new InstallError(`cannot read ${path}: ${(error as Error).message}`);
  }
  if (raw.trim() === '') return { settings: {}, existed: true };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new InstallError(`${path} is not valid JSON (${(error as Error).message}). Fix it, or move it away, and run this again`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new InstallError(`${path} does not hold a JSON object`);
  return { settings: parsed as Json, existed: true };
}

/** Writes the new settings: a backup of the old file first (PATH.bak), then an atomic replace keeping its mode. */
function writeSettings(path: string, settings: Json, existed: boolean): string | null {
  mkdirSync(dirname(path), { recursive: true });
  let backup: string | null = null;
  let mode = 0o644;
  if (existed) {
    backup = `${path}.bak`;
    copyFileSync(path, backup);
    mode = statSync(path).mode & 0o777;
  }
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(settings, null, 2)}\n`, { mode });
  chmodSync(temp, mode);
  renameSync(temp, path);
  return backup;
}

/** The whole command; prints what it did on stdout, problems on stderr (exit 1: bad settings; exit 2: bad flags). */
export function installCommand(argv: readonly string[]): void {
  let options: InstallOptions;
  try {
    options = parseInstallArgs(argv);
  } catch (error) {
    process.stderr.write(`pocketpaw-status hook claude-code: ${(error as Error).message}\nRun 'pocketpaw-status hook --help' for the options.\n`);
    process.exit(2);
  }
  const flag = `--${options.mode}`;
  try {
    const { settings, existed } = readSettings(options.settings);
    const next = options.mode === 'install' ? withHook(settings, hookCommandLine(options.socket), options.settings) : withoutHook(settings, options.settings);
    if (options.print) {
      process.stdout.write(`${JSON.stringify(next, null, 2)}\n`);
      return;
    }
    if (JSON.stringify(next) === JSON.stringify(settings)) {
      process.stdout.write(
        options.mode === 'install'
          ? `The pocketpaw-status hook is already in ${options.settings}: nothing changed.\n`
          : `No pocketpaw-status hook in ${options.settings}: nothing changed.\n`,
      );
      return;
    }
    const backup = writeSettings(options.settings, next, existed);
    const saved = backup ? ` (the previous file is in ${backup})` : '';
    process.stdout.write(
      options.mode === 'install'
        ? `Added the pocketpaw-status hook to ${options.settings} for ${HOOK_EVENTS.length} Claude Code events${saved}. New Claude Code sessions report to the daemon.\n`
        : `Removed the pocketpaw-status hook from ${options.settings}${saved}.\n`,
    );
  } catch (error) {
    const message = error instanceof InstallError ? error.message : `could not update ${options.settings}: ${(error as Error).message}`;
    process.stderr.write(`pocketpaw-status hook claude-code ${flag}: ${message}. Nothing was changed.\n`);
    process.exit(1);
  }
}
