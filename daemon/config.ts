/**
 * Configuration of `serve`: each option from its flag, else its environment variable, else its default.
 *
 * The table below is the single source for parsing, validation, the environment names and `--help`. Every
 * environment variable is `POCKETPAW_STATUS_` plus the flag in capitals with `-` as `_`.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';

export class ConfigError extends Error {}

type Parser<T> = (raw: string) => T;

interface Option<T> {
  readonly flag: string;
  readonly arg: string;
  readonly help: string;
  /** Shown in --help. */
  readonly defaultText: string;
  readonly default: (env: NodeJS.ProcessEnv) => T;
  readonly parse: Parser<T>;
  readonly boolean?: true;
}

function option<T>(o: Option<T>): Option<T> {
  return o;
}

function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`expected a whole number from ${min} to ${max}`);
    const n = Number(raw.trim());
    if (n < min || n > max) throw new ConfigError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

function seconds(raw: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new ConfigError('expected a number of seconds, 0 or more');
  return n;
}

function positiveSeconds(raw: string): number {
  const n = seconds(raw);
  if (n === 0) throw new ConfigError('expected a number of seconds greater than 0');
  return n;
}

function octalMode(raw: string): number {
  if (!/^0?[0-7]{3}$/.test(raw.trim())) throw new ConfigError('expected an octal file mode such as 0660');
  return parseInt(raw.trim(), 8);
}

function nonEmpty(raw: string): string {
  if (raw.trim() === '') throw new ConfigError('expected a non-empty value');
  return raw;
}

function bool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on', ''].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError('expected 1 or 0 (true or false)');
}

export function defaultSocketPath(env: NodeJS.ProcessEnv): string {
  if (env.RUNTIME_DIRECTORY) return join(env.RUNTIME_DIRECTORY.split(':')[0]!, 'ingest.sock');
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'pocketpaw-status', 'ingest.sock');
  return join('/tmp', `pocketpaw-status-${process.getuid?.() ?? 'user'}`, 'ingest.sock');
}

export const SERVE_OPTIONS = {
  socket: option({
    flag: 'socket',
    arg: 'PATH',
    help: 'Unix socket that agents write NDJSON events to',
    defaultText: '$RUNTIME_DIRECTORY/ingest.sock, else $XDG_RUNTIME_DIR/pocketpaw-status/ingest.sock, else /tmp/pocketpaw-status-<uid>/ingest.sock',
    default: defaultSocketPath,
    parse: nonEmpty,
  }),
  socketMode: option({
    flag: 'socket-mode',
    arg: 'OCTAL',
    help: 'file mode of the ingest socket: who may write events',
    defaultText: '0660',
    default: () => 0o660,
    parse: octalMode,
  }),
  host: option({
    flag: 'host',
    arg: 'HOST',
    help: 'address the HTTP API listens on',
    defaultText: '127.0.0.1',
    default: () => '127.0.0.1',
    parse: nonEmpty,
  }),
  port: option({
    flag: 'port',
    arg: 'N',
    help: 'HTTP port (0 picks a free port; the ready log line says which)',
    defaultText: '8780',
    default: () => 8780,
    parse: integer(0, 65535),
  }),
  maxConcurrent: option({
    flag: 'max-concurrent',
    arg: 'N',
    help: 'reported as global.max_concurrent (an agent\'s hello may replace it)',
    defaultText: '5',
    default: () => 5,
    parse: integer(1, 1_000_000),
  }),
  errorTtl: option({
    flag: 'error-ttl',
    arg: 'SECONDS',
    help: 'how long a session stays listed in error before it is removed',
    defaultText: '30',
    default: () => 30,
    parse: seconds,
  }),
  maxLineBytes: option({
    flag: 'max-line-bytes',
    arg: 'N',
    help: 'longest accepted event line; longer lines are dropped and answered with an error',
    defaultText: '65536',
    default: () => 65536,
    parse: integer(64, 64 * 1024 * 1024),
  }),
  maxProducers: option({
    flag: 'max-producers',
    arg: 'N',
    help: 'most producer connections at once; one more is refused with a line saying why',
    defaultText: '1024',
    default: () => 1024,
    parse: integer(1, 1_000_000),
  }),
  sseHeartbeat: option({
    flag: 'sse-heartbeat',
    arg: 'SECONDS',
    help: 'write a `: keepalive` comment to a stream silent this long (keep it under 45 s for polyfills)',
    defaultText: '15',
    default: () => 15,
    parse: positiveSeconds,
  }),
  sseMinInterval: option({
    flag: 'sse-min-interval',
    arg: 'MS',
    help: 'at most one status event per client per this many milliseconds; a burst ends with the latest state',
    defaultText: '100',
    default: () => 100,
    parse: integer(0, 60_000),
  }),
  sseReplay: option({
    flag: 'sse-replay',
    arg: 'N',
    help: 'transitions kept for clients resuming with Last-Event-ID; also the most one client may fall behind',
    defaultText: '1000',
    default: () => 1000,
    parse: integer(1, 1_000_000),
  }),
  sseWriteTimeout: option({
    flag: 'sse-write-timeout',
    arg: 'SECONDS',
    help: 'close a stream whose pending write makes no progress for this long',
    defaultText: '30',
    default: () => 30,
    parse: positiveSeconds,
  }),
  maxSseClients: option({
    flag: 'max-sse-clients',
    arg: 'N',
    help: 'most SSE streams at once; one more gets 503 with Retry-After',
    defaultText: '10000',
    default: () => 10000,
    parse: integer(1, 1_000_000),
  }),
} as const;

type Options = typeof SERVE_OPTIONS;
export type ServeConfig = { readonly [K in keyof Options]: Options[K] extends Option<infer T> ? T : never };

export function envName(flag: string): string {
  return `POCKETPAW_STATUS_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Parses `serve`'s arguments and environment. Throws ConfigError with a message naming the flag. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig | 'help' {
  const entries = Object.entries(SERVE_OPTIONS) as [keyof Options, Option<unknown>][];
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(entries.map(([, o]) => [o.flag, { type: o.boolean ? 'boolean' : 'string' } as const])),
      },
    });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new ConfigError(describeArgError(error));
  }
  if (values.help) return 'help';

  const config: Record<string, unknown> = {};
  for (const [key, o] of entries) {
    const fromFlag = values[o.flag];
    const fromEnv = env[envName(o.flag)];
    const source = fromFlag !== undefined ? `--${o.flag}` : fromEnv !== undefined ? envName(o.flag) : null;
    const raw = fromFlag !== undefined ? (typeof fromFlag === 'boolean' ? '1' : fromFlag) : fromEnv;
    if (raw === undefined || source === null) {
      config[key] = o.default(env);
      continue;
    }
    try {
      config[key] = o.parse(raw);
    } catch (error) {
      const why = error instanceof ConfigError ? error.message : String(error);
      throw new ConfigError(`invalid ${source} ${JSON.stringify(raw)}: ${why}`);
    }
  }
  return config as ServeConfig;
}

function describeArgError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /Option '([^']+)' argument missing/.exec(message);
  if (missing) return `option ${missing[1]!.split(',')[0]!.replace(/^-\w, /, '')} needs a value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `unexpected argument ${JSON.stringify(positional[1])}`;
  return message;
}

export function serveHelp(): string {
  const rows = Object.values(SERVE_OPTIONS).map((o: Option<unknown>) => {
    const left = o.boolean ? `--${o.flag}` : `--${o.flag} ${o.arg}`;
    return `  ${left.padEnd(26)} ${o.help}\n  ${''.padEnd(26)} env ${envName(o.flag)}; default ${o.defaultText}`;
  });
  return [
    'Usage: pocketpaw-status serve [options]',
    '',
    'Runs the daemon: agents write NDJSON lifecycle events to the Unix socket; the HTTP API serves',
    'GET /api/v1/agent/status (the snapshot).',
    '',
    'Each option is taken from its flag, else its environment variable, else its default.',
    '',
    'Options:',
    ...rows,
    `  ${'--help, -h'.padEnd(26)} show this help`,
    '',
    'Exit codes: 0 stopped by SIGINT/SIGTERM; 1 could not start (e.g. another daemon listens on the socket);',
    '2 invalid configuration.',
    '',
  ].join('\n');
}
