/**
 * Configuration of `serve`: each option from its flag, else its environment variable, else its default.
 *
 * The table below is the single source for parsing, validation, the environment names and `--help`. Every
 * environment variable is `POCKETPAW_STATUS_` plus the flag in capitals with `-` as `_`.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkKeyFile } from './auth/key.ts';
import { parseOriginList } from './http/cors.ts';
import { parseAllowedHostList } from './http/host.ts';
import { resolveGroup, type SocketGroup } from './ingest/socket-group.ts';
import { checkCaFile, checkPasswordFile, defaultNodeId, parseMqttUrl, parseNodeId, parseTopicPrefix, redactUrlPassword } from './mqtt/settings.ts';
import { defaultSocketPath } from '../protocol/socket-path.ts';

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
  /** A boolean that is on by default: `--no-<flag>` (or the variable set to 0) turns it off. */
  readonly negatable?: true;
  /** How an invalid value is quoted in the error (hides what must not reach a log, such as a password). */
  readonly redact?: (raw: string) => string;
  /** Repeatable flag: its values are joined with `,` and parsed as one comma-separated list (the variable's form). */
  readonly multiple?: true;
  /** Environment variables read instead of the rule's name, first set wins (for documented exceptions). */
  readonly env?: readonly string[];
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

/** Wraps a parser from another module: its Error message becomes the ConfigError's "why". */
function checked<T>(parse: (raw: string) => T): Parser<T> {
  return (raw) => {
    try {
      return parse(raw);
    } catch (error) {
      throw new ConfigError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** For switches that weaken a safeguard: an empty value (a template whose variable went missing) is not "on". */
function explicitBool(raw: string): boolean {
  if (raw.trim() === '') throw new ConfigError('expected 1 or 0 (true or false)');
  return bool(raw);
}

function bool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on', ''].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError('expected 1 or 0 (true or false)');
}

/**
 * Where the state file lives by default: systemd's StateDirectory= (the first, if it lists several), else the XDG
 * state folder (only if absolute, as the XDG spec requires), else ~/.local/state.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const systemd = env.STATE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  const xdg = env.XDG_STATE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.local', 'state'), 'pocketpaw-status');
}

// The default lives with the protocol: emitters, `emit` and the hook must find the same socket as `serve`.
export { defaultSocketPath };

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
  socketGroup: option<SocketGroup | null>({
    flag: 'socket-group',
    arg: 'GROUP',
    help: 'group (name or numeric gid) given the ingest socket: with mode 0660 its members may write events',
    defaultText: 'the daemon\'s own group',
    default: () => null,
    parse: checked((raw) => resolveGroup(raw)),
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
  apiKeyFile: option<string | null>({
    flag: 'api-key-file',
    arg: 'PATH',
    help: 'file holding the status API key (trailing newline stripped), re-read on SIGHUP; without it the systemd credential status-api-key, else POCKETPAW_STATUS_API_KEY; no key at all means open access',
    defaultText: 'none',
    default: () => null,
    parse: checked(checkKeyFile),
  }),
  allowOpen: option({
    flag: 'allow-open',
    arg: '',
    boolean: true,
    help: 'serve without an API key on an address other machines can reach (without it the daemon refuses to start)',
    defaultText: 'off',
    default: () => false,
    parse: explicitBool,
  }),
  corsOrigin: option<readonly string[]>({
    flag: 'cors-origin',
    arg: 'ORIGIN',
    multiple: true,
    env: ['POCKETPAW_STATUS_CORS_ORIGINS', 'POCKETPAW_STATUS_CORS_ORIGIN'],
    help: 'origin (scheme://host[:port]) whose browser pages may read the API; repeatable; the variable takes a comma-separated list; never *',
    defaultText: 'none',
    default: () => [],
    parse: checked(parseOriginList),
  }),
  // --- hostile input (issue 13) ---
  allowedHost: option<readonly string[]>({
    flag: 'allowed-host',
    arg: 'NAME',
    multiple: true,
    env: ['POCKETPAW_STATUS_ALLOWED_HOSTS', 'POCKETPAW_STATUS_ALLOWED_HOST'],
    help: 'a name (besides IP addresses, localhost and this machine\'s hostname) that HTTP requests may give in Host; others get 421 (DNS rebinding); repeatable; the variable takes a comma-separated list',
    defaultText: 'none',
    default: () => [],
    parse: checked(parseAllowedHostList),
  }),
  lineTimeout: option({
    flag: 'line-timeout',
    arg: 'SECONDS',
    help: 'close a producer connection that has not completed a line this long after connecting or starting one (hello agents are exempt)',
    defaultText: '10',
    default: () => 10,
    parse: positiveSeconds,
  }),
  producerIdleTimeout: option({
    flag: 'producer-idle-timeout',
    arg: 'SECONDS',
    help: 'close a producer connection that has sent nothing this long (hello agents are never closed for idling)',
    defaultText: '60',
    default: () => 60,
    parse: positiveSeconds,
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
  // --- MQTT output (docs/mqtt.md); the MQTT library itself is loaded only when --mqtt-url is set ---
  mqttUrl: option<URL | null>({
    flag: 'mqtt-url',
    arg: 'URL',
    help: 'publish the status to this MQTT broker (mqtt://host[:1883] or mqtts://host[:8883]); without it nothing of MQTT is loaded',
    defaultText: 'none',
    default: () => null,
    parse: checked(parseMqttUrl),
    redact: redactUrlPassword,
  }),
  mqttCaFile: option<string | null>({
    flag: 'mqtt-ca-file',
    arg: 'PATH',
    help: 'PEM file of the certificate authority that signed the broker\'s certificate (mqtts:// only)',
    defaultText: 'the system\'s trusted authorities',
    default: () => null,
    parse: checked(checkCaFile),
  }),
  mqttUsername: option<string | null>({
    flag: 'mqtt-username',
    arg: 'NAME',
    help: 'user name for the broker',
    defaultText: 'none',
    default: () => null,
    parse: nonEmpty,
  }),
  mqttPasswordFile: option<string | null>({
    flag: 'mqtt-password-file',
    arg: 'PATH',
    help: 'file holding the broker password (trailing newline stripped); without it the systemd credential mqtt-password; never on the command line',
    defaultText: 'none',
    default: () => null,
    parse: checked(checkPasswordFile),
  }),
  mqttNodeId: option({
    flag: 'mqtt-node-id',
    arg: 'ID',
    help: 'names this machine in topics and in Home Assistant (letters, digits, _ and -)',
    defaultText: 'the hostname, reduced to [a-z0-9_-]',
    default: () => defaultNodeId(),
    parse: checked(parseNodeId),
  }),
  mqttTopicPrefix: option<string | null>({
    flag: 'mqtt-topic-prefix',
    arg: 'TOPIC',
    help: 'topics are published under this prefix (no + or #, no leading or trailing /)',
    defaultText: 'pocketpaw-status/<node-id>',
    default: () => null,
    parse: checked(parseTopicPrefix),
  }),
  mqttMinInterval: option({
    flag: 'mqtt-min-interval',
    arg: 'MS',
    help: 'at most one state/status publish per this many milliseconds; a burst ends with the latest state',
    defaultText: '250',
    default: () => 250,
    parse: integer(0, 60_000),
  }),
  haDiscovery: option({
    flag: 'ha-discovery',
    arg: '',
    boolean: true,
    negatable: true,
    help: 'publish Home Assistant MQTT discovery (one device per node); --no-ha-discovery turns it off',
    defaultText: 'on',
    default: () => true,
    parse: bool,
  }),
  haDiscoveryPrefix: option({
    flag: 'ha-discovery-prefix',
    arg: 'TOPIC',
    help: 'Home Assistant\'s discovery prefix',
    defaultText: 'homeassistant',
    default: () => 'homeassistant',
    parse: checked(parseTopicPrefix),
  }),
  // --- state kept across restarts (docs/state.md) ---
  stateDir: option<string | null>({
    flag: 'state-dir',
    arg: 'DIR',
    help: 'folder for the state file that lets sessions survive a restart (created 0700, must be the daemon user\'s own); none keeps nothing',
    defaultText: '$STATE_DIRECTORY, else $XDG_STATE_HOME/pocketpaw-status, else ~/.local/state/pocketpaw-status',
    default: defaultStateDir,
    parse: (raw) => (nonEmpty(raw).trim() === 'none' ? null : resolve(raw)),
  }),
  stateMaxAge: option({
    flag: 'state-max-age',
    arg: 'SECONDS',
    help: 'a state file older than this is not restored (it is moved aside); 86400 is a day',
    defaultText: '86400',
    default: () => 86_400,
    parse: positiveSeconds,
  }),
  reconnectGrace: option({
    flag: 'reconnect-grace',
    arg: 'SECONDS',
    help: 'after a restart, how long restored sessions of a hello agent wait for it to reconnect before turning error',
    defaultText: '5',
    default: () => 5,
    parse: seconds,
  }),
  // --- limits against exhaustion (issue 13): sessions, SSE bytes ---
  maxSessions: option({
    flag: 'max-sessions',
    arg: 'N',
    help: 'most live sessions; an agent_start for a new key beyond it is refused with an error line (live sessions are never evicted)',
    defaultText: '10000',
    default: () => 10000,
    parse: integer(1, 10_000_000),
  }),
  sseMaxClientBytes: option({
    flag: 'sse-max-client-bytes',
    arg: 'N',
    help: 'most bytes held for one SSE stream that is not reading, beyond the event being written; past it the stream is closed (it can resume)',
    defaultText: '4194304 (4 MiB)',
    default: () => 4 * 1024 * 1024,
    parse: integer(65536, 1024 * 1024 * 1024),
  }),
  sseMaxTotalBytes: option({
    flag: 'sse-max-total-bytes',
    arg: 'N',
    help: 'most bytes held for all SSE streams together; past it the streams holding the most are closed (they can resume)',
    defaultText: '67108864 (64 MiB)',
    default: () => 64 * 1024 * 1024,
    parse: integer(65536, 16 * 1024 * 1024 * 1024),
  }),
} as const;

type Options = typeof SERVE_OPTIONS;
type ConfigOf<O> = { readonly [K in keyof O]: O[K] extends Option<infer T> ? T : never };
export type ServeConfig = ConfigOf<Options>;

// --- `fleet` (daemon/fleet/): serve's HTTP and SSE options, shared by definition, and the broker to read ---

export const FLEET_OPTIONS = {
  // The broker and its credentials: serve's own definitions (daemon/mqtt/settings.ts); --mqtt-url is required here.
  mqttUrl: SERVE_OPTIONS.mqttUrl,
  mqttCaFile: SERVE_OPTIONS.mqttCaFile,
  mqttUsername: SERVE_OPTIONS.mqttUsername,
  mqttPasswordFile: SERVE_OPTIONS.mqttPasswordFile,
  mqttTopicBase: option({
    flag: 'mqtt-topic-base',
    arg: 'TOPIC',
    help: 'topic under which every daemon publishes as <base>/<node-id>/... (their --mqtt-topic-prefix less the node id)',
    defaultText: 'pocketpaw-status',
    default: () => 'pocketpaw-status',
    parse: checked(parseTopicPrefix),
  }),
  maxNodes: option({
    flag: 'max-nodes',
    arg: 'N',
    help: 'most nodes the fleet keeps; messages naming a further node are dropped and counted',
    defaultText: '10000',
    default: () => 10000,
    parse: integer(1, 1_000_000),
  }),
  host: SERVE_OPTIONS.host,
  // Another default than serve's 8780, so that an aggregator can run beside a daemon on one machine.
  port: { ...SERVE_OPTIONS.port, defaultText: '8781', default: () => 8781 },
  apiKeyFile: SERVE_OPTIONS.apiKeyFile,
  allowOpen: SERVE_OPTIONS.allowOpen,
  corsOrigin: SERVE_OPTIONS.corsOrigin,
  sseHeartbeat: SERVE_OPTIONS.sseHeartbeat,
  sseMinInterval: SERVE_OPTIONS.sseMinInterval,
  sseReplay: SERVE_OPTIONS.sseReplay,
  sseWriteTimeout: SERVE_OPTIONS.sseWriteTimeout,
  maxSseClients: SERVE_OPTIONS.maxSseClients,
  sseMaxClientBytes: SERVE_OPTIONS.sseMaxClientBytes,
  sseMaxTotalBytes: SERVE_OPTIONS.sseMaxTotalBytes,
  allowedHost: SERVE_OPTIONS.allowedHost,
} as const;

export type FleetConfig = ConfigOf<typeof FLEET_OPTIONS>;

export function parseFleetConfig(argv: readonly string[], env: NodeJS.ProcessEnv): FleetConfig | 'help' {
  const config = parseOptions(FLEET_OPTIONS, argv, env);
  if (config === 'help') return config;
  checkMqttCombination(config);
  if (config.mqttUrl === null) {
    throw new ConfigError('the fleet reads its nodes from an MQTT broker: give --mqtt-url (or POCKETPAW_STATUS_MQTT_URL), e.g. mqtt://localhost:1883');
  }
  return config;
}

export function fleetHelp(): string {
  return [
    'Usage: pocketpaw-status fleet --mqtt-url URL [options]',
    '',
    'Runs the fleet aggregator: reads what every daemon (serve --mqtt-url) publishes to the broker and serves',
    'GET /api/v1/fleet/status (every node), GET /api/v1/agent/status (all nodes\' sessions, keys prefixed',
    '<node-id>/), their streams and the status page, with the same key rules, CORS and limits as serve.',
    '',
    'Each option is taken from its flag, else its environment variable, else its default.',
    '',
    'Options:',
    ...optionRows(FLEET_OPTIONS),
    `  ${'--help, -h'.padEnd(28)} show this help`,
    '',
    'Exit codes: 0 stopped by SIGINT/SIGTERM; 1 could not start; 2 invalid configuration.',
    '',
  ].join('\n');
}

export function envName(flag: string): string {
  return `POCKETPAW_STATUS_${flag.toUpperCase().replace(/-/g, '_')}`;
}

/** The variables an option reads: the rule's name, unless the option documents an exception. */
export function envNames(o: Pick<Option<unknown>, 'flag' | 'env'>): readonly string[] {
  return o.env ?? [envName(o.flag)];
}

/** Parses `serve`'s arguments and environment. Throws ConfigError with a message naming the flag. */
export function parseServeConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServeConfig | 'help' {
  const config = parseOptions(SERVE_OPTIONS, argv, env);
  if (config !== 'help') checkMqttCombination(config);
  return config;
}

function parseOptions<O extends Record<string, Option<unknown>>>(table: O, argv: readonly string[], env: NodeJS.ProcessEnv): ConfigOf<O> | 'help' {
  const entries = Object.entries(table) as [keyof O, Option<unknown>][];
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    const valued = new Set(entries.filter(([, o]) => !o.boolean).map(([, o]) => `--${o.flag}`));
    const parsed = parseArgs({
      args: attachNegativeValues(argv, valued),
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(entries.map(([, o]) => [o.flag, { type: o.boolean ? 'boolean' : 'string', multiple: o.multiple === true } as const])),
        // Node 20's parseArgs has no allowNegative: each negatable switch gets its `--no-` form as a switch of its own.
        ...Object.fromEntries(entries.filter(([, o]) => o.negatable).map(([, o]) => [`no-${o.flag}`, { type: 'boolean' } as const])),
      },
    });
    values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  } catch (error) {
    throw new ConfigError(describeArgError(error));
  }
  if (values.help) return 'help';

  const config: Partial<Record<keyof O, unknown>> = {};
  for (const [key, o] of entries) {
    if (o.negatable && values[`no-${o.flag}`] !== undefined) {
      if (values[o.flag] !== undefined) throw new ConfigError(`--${o.flag} and --no-${o.flag} contradict each other; give one`);
      values[o.flag] = '0';
    }
    const fromFlag = values[o.flag];
    const envVar = envNames(o).find((name) => env[name] !== undefined);
    const fromEnv = envVar === undefined ? undefined : env[envVar];
    const source = fromFlag !== undefined ? (fromFlag === '0' && o.negatable ? `--no-${o.flag}` : `--${o.flag}`) : envVar ?? null;
    const raw = fromFlag !== undefined ? (typeof fromFlag === 'boolean' ? '1' : Array.isArray(fromFlag) ? fromFlag.join(',') : fromFlag) : fromEnv;
    if (raw === undefined || source === null) {
      config[key] = o.default(env);
      continue;
    }
    try {
      config[key] = o.parse(raw);
    } catch (error) {
      const why = error instanceof ConfigError ? error.message : String(error);
      throw new ConfigError(`invalid ${source} ${JSON.stringify(o.redact ? o.redact(raw) : raw)}: ${why}`);
    }
  }
  return config as ConfigOf<O>;
}

/** Options that only make sense together, said before anything starts. */
function checkMqttCombination(config: Pick<ServeConfig, 'mqttCaFile' | 'mqttUrl' | 'mqttPasswordFile' | 'mqttUsername'>): void {
  if (config.mqttCaFile !== null && config.mqttUrl !== null && config.mqttUrl.protocol !== 'mqtts:') {
    throw new ConfigError(`--mqtt-ca-file is for TLS: use an mqtts:// --mqtt-url (got ${config.mqttUrl.protocol}//)`);
  }
  if (config.mqttPasswordFile !== null && config.mqttUsername === null) {
    throw new ConfigError('--mqtt-password-file needs --mqtt-username too (MQTT 3.1.1 sends a password only with a user name)');
  }
}

/**
 * `--error-ttl -1` is a flag with an invalid value, and should be reported as one; parseArgs would instead call the
 * value an ambiguous option and tell the user to write `--error-ttl=-XYZ`.
 */
function attachNegativeValues(argv: readonly string[], valued: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (valued.has(arg) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function describeArgError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown option ${unknown[1]}`;
  const missing = /Option '([^']+)' argument missing/.exec(message);
  if (missing) return `option ${missing[1]!.split(',')[0]!.replace(/^-\w, /, '').replace(/ <value>$/, '')} needs a value`;
  const positional = /Unexpected argument '([^']+)'/.exec(message);
  if (positional) return `unexpected argument ${JSON.stringify(positional[1])}`;
  return message;
}

function optionRows(table: Record<string, Option<unknown>>): string[] {
  return Object.values(table).map((o: Option<unknown>) => {
    // A negatable switch's help says what its --no- form does.
    const left = o.boolean ? `--${o.flag}` : `--${o.flag} ${o.arg}`;
    return `  ${left.padEnd(28)} ${o.help}\n  ${''.padEnd(28)} env ${envNames(o).join(' or ')}; default ${o.defaultText}`;
  });
}

export function serveHelp(): string {
  const rows = optionRows(SERVE_OPTIONS);
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
    `  ${'--help, -h'.padEnd(28)} show this help`,
    '',
    'API key: from --api-key-file, else the systemd credential $CREDENTIALS_DIRECTORY/status-api-key, else',
    'POCKETPAW_STATUS_API_KEY. Clients present it as ?key=, X-Status-Key or Authorization: Bearer. SIGHUP re-reads',
    'the file or credential. Without a key, a --host other than loopback needs --allow-open.',
    '',
    'Exit codes: 0 stopped by SIGINT/SIGTERM; 1 could not start (e.g. another daemon listens on the socket);',
    '2 invalid configuration (including a key source that cannot be used, or an open non-loopback listener).',
    '',
  ].join('\n');
}
