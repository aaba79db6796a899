/**
 * `pocketpaw-status status`: PocketPaw's `pocketpaw status`, telling the truth (pocketpaw-behaviour.md §11, §14
 * defect 16): a daemon URL and key of your choice; "not running" only when nothing answers, a rejected key said as such; stdout
 * holds only the table or the JSON; `--watch` follows the SSE stream instead of polling, and reconnects by itself.
 */
import { parseArgs } from 'node:util';
import * as z from 'zod/mini';
import { clean, FLEET_VIEW_HEADER, renderStatus, terminalJson, type RenderableSnapshot } from './render.ts';
import { openSse, type SseStream } from './sse-client.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8780';
const STATUS_PATH = '/api/v1/agent/status';
const STREAM_PATH = '/api/v1/agent/status/stream';
/** How long a request may wait for an answer, as upstream's 5 s. */
const REQUEST_TIMEOUT_MS = 5000;
/** A stream silent this long (no event, no keepalive comment) is taken for dead: a sleeping laptop, a lost route. */
const IDLE_TIMEOUT_MS = 90_000;
const DEFAULT_RETRY_MS = 2000;
const MAX_RETRY_MS = 10_000;

export const STATUS_USAGE = `Usage: pocketpaw-status status [--url URL] [--key KEY] [--json] [--watch]

Shows what the agents are doing, from a running pocketpaw-status daemon.

Options:
  --url URL    the daemon's HTTP address; env POCKETPAW_STATUS_URL; default ${DEFAULT_URL}
  --key KEY    the status API key, sent as X-Status-Key; env POCKETPAW_STATUS_API_KEY
  --json       print the snapshot as JSON (the REST body, pretty-printed) and nothing else on stdout
  --watch      follow the live stream (SSE) until Ctrl+C: on a terminal the table is redrawn in place; with --json,
               one compact snapshot per line (NDJSON), without escape codes, for pipes. Reconnects by itself when
               the daemon restarts, saying so on stderr.
  --help, -h   show this help

Colour is used only when stdout is a terminal and NO_COLOR is not set.

Exit codes:
  0  success (with --watch: stopped with Ctrl+C)
  1  the daemon is not reachable ("not running at URL")
  2  the daemon rejected the status API key (also when it is rotated during --watch)
  3  any other unexpected answer (or invalid arguments)
`;

/** What the command needs of a snapshot: loose on purpose, so that additive fields or states never break it. */
const Snapshot = z.object({
  global: z.object({
    state: z.string(),
    active_sessions: z.number(),
    max_concurrent: z.number(),
    uptime_seconds: z.number(),
  }),
  sessions: z.array(
    z.object({
      session_key: z.optional(z.string()),
      session_id: z.string(),
      channel: z.string(),
      title: z.nullable(z.string()),
      state: z.string(),
      tool_name: z.nullable(z.string()),
      duration_seconds: z.number(),
      error_message: z.nullable(z.string()),
    }),
  ),
});

class Failure extends Error {
  constructor(
    readonly code: 1 | 2 | 3,
    message: string,
  ) {
    super(message);
  }
}

interface Options {
  readonly url: string;
  readonly key: string | null;
  readonly json: boolean;
  readonly watch: boolean;
  readonly tty: boolean;
  readonly color: boolean;
  /** The server is a fleet aggregator (its FLEET_VIEW_HEADER): the table gets a NODE column. */
  readonly view: { fleet: boolean };
}

export async function statusCommand(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  // A closed pipe (`| head -1`) is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => process.exit(error.code === 'EPIPE' ? 0 : 3));
  try {
    const options = parseOptions(argv, env);
    if (options === 'help') {
      process.stdout.write(STATUS_USAGE);
      return;
    }
    await (options.watch ? watch(options) : once(options));
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    process.stderr.write(`pocketpaw-status: ${error.message}\n`);
    process.exit(error.code);
  }
}

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
        watch: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new Failure(3, `${error instanceof Error ? error.message : String(error)}\nRun 'pocketpaw-status status --help' for the options.`);
  }
  if (values.help) return 'help';
  const rawUrl = values.url ?? (env.POCKETPAW_STATUS_URL || DEFAULT_URL);
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    throw new Failure(3, `invalid URL ${JSON.stringify(rawUrl)}: expected something like ${DEFAULT_URL}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Failure(3, `invalid URL ${JSON.stringify(rawUrl)}: expected an http:// or https:// address`);
  }
  const json = values.json ?? false;
  const tty = process.stdout.isTTY === true;
  return {
    url: rawUrl.replace(/\/+$/, ''),
    key: values.key ?? (env.POCKETPAW_STATUS_API_KEY || null),
    json,
    watch: values.watch ?? false,
    tty,
    color: tty && !json && env.NO_COLOR === undefined,
    view: { fleet: false },
  };
}

async function once(o: Options): Promise<void> {
  let response: Response;
  let body: string;
  try {
    response = await fetch(o.url + STATUS_PATH, { headers: headers(o), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    body = await response.text();
  } catch (error) {
    throw notRunning(o, error);
  }
  if (response.status === 403) throw keyRejected(o);
  if (response.status !== 200) throw unexpected(o, `HTTP ${response.status}${excerpt(body)}`);
  const snapshot = parseSnapshot(o, body);
  o.view.fleet = response.headers.get(FLEET_VIEW_HEADER) === 'fleet';
  process.stdout.write(o.json ? `${terminalJson(JSON.parse(body), 2)}\n` : renderStatus(snapshot, { color: o.color, fleet: o.view.fleet }));
}

async function watch(o: Options): Promise<void> {
  const display = o.json ? jsonDisplay() : o.tty ? terminalDisplay(o) : plainDisplay(o);
  process.on('SIGINT', () => {
    display.stop();
    process.exit(0);
  });
  let connectedOnce = false;
  let retryMs = DEFAULT_RETRY_MS;
  for (;;) {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error(`no data for ${ms / 1000} s`)), ms);
    };
    arm(REQUEST_TIMEOUT_MS);
    let stream: SseStream;
    try {
      stream = await openSse(o.url + STREAM_PATH, headers(o), controller.signal, () => arm(IDLE_TIMEOUT_MS));
    } catch (error) {
      clearTimeout(timer);
      if (!connectedOnce) throw notRunning(o, error);
      await sleep(retryMs);
      continue;
    }
    const { response } = stream;
    const type = response.headers.get('content-type') ?? '';
    if (response.status !== 200 || !type.startsWith('text/event-stream')) {
      clearTimeout(timer);
      const body = await response.text().catch(() => '');
      controller.abort();
      if (response.status === 403) throw keyRejected(o);
      // A daemon starting, draining or full says so with these; wait as for a restart.
      if (connectedOnce && [429, 502, 503, 504].includes(response.status)) {
        await sleep(retryMs);
        continue;
      }
      throw unexpected(o, response.status === 200 ? `not an event stream (Content-Type ${JSON.stringify(type)})` : `HTTP ${response.status}${excerpt(body)}`);
    }
    arm(IDLE_TIMEOUT_MS);
    o.view.fleet = response.headers.get(FLEET_VIEW_HEADER) === 'fleet';
    if (connectedOnce) process.stderr.write(`pocketpaw-status: reconnected to ${o.url}\n`);
    connectedOnce = true;
    try {
      for await (const event of stream.events()) {
        if (event.event !== 'status') continue;
        display.show(parseSnapshot(o, event.data), event.data);
      }
    } catch (error) {
      if (error instanceof Failure) throw error;
      // The connection broke: reconnect below.
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    retryMs = Math.min(stream.retry ?? DEFAULT_RETRY_MS, MAX_RETRY_MS);
    process.stderr.write(`pocketpaw-status: lost the connection to ${o.url}; reconnecting every ${retryMs / 1000} s\n`);
    display.lost();
    await sleep(retryMs);
  }
}

interface Display {
  show(snapshot: RenderableSnapshot, data: string): void;
  lost(): void;
  stop(): void;
}

/** NDJSON for pipes: one compact snapshot per line, nothing else. */
function jsonDisplay(): Display {
  return {
    show: (_snapshot, data) => process.stdout.write(`${terminalJson(JSON.parse(data))}\n`),
    lost: () => {},
    stop: () => {},
  };
}

/** Not a terminal: each snapshot as a table, one after the other, without escape codes. */
function plainDisplay(o: Options): Display {
  return {
    show: (snapshot) => process.stdout.write(renderStatus(snapshot, { color: false, fleet: o.view.fleet })),
    lost: () => {},
    stop: () => {},
  };
}

/**
 * A terminal: the table redrawn in place. The stream sends a snapshot only when something changes, so durations and
 * uptime are advanced locally every second from the time the snapshot arrived (no polling).
 */
function terminalDisplay(o: Options): Display {
  let last: { snapshot: RenderableSnapshot; at: number } | null = null;
  let lostAt: Date | null = null;
  let first = true;
  const draw = () => {
    if (!last) return;
    const aged = lostAt ? 0 : (Date.now() - last.at) / 1000;
    const s = last.snapshot;
    const table = renderStatus(
      {
        global: { ...s.global, uptime_seconds: s.global.uptime_seconds + aged },
        sessions: s.sessions.map((x) => ({ ...x, duration_seconds: x.duration_seconds + aged })),
      },
      { color: o.color, fleet: o.view.fleet },
    );
    const footer = lostAt
      ? `[Connection lost at ${lostAt.toLocaleTimeString()}; reconnecting to ${o.url} | Ctrl+C to stop]`
      : `[Live from ${o.url} | Ctrl+C to stop]`;
    const lines = `${table}${footer}`.split('\n');
    // Home, then each line over the old one (clearing its rest), then clear whatever the old frame had below.
    const frame = `${first ? '\x1b[2J' : ''}\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`;
    first = false;
    process.stdout.write(frame);
  };
  const ticker = setInterval(draw, 1000);
  return {
    show(snapshot) {
      last = { snapshot, at: Date.now() };
      lostAt = null;
      draw();
    },
    lost() {
      lostAt = new Date();
      draw();
    },
    stop() {
      clearInterval(ticker);
    },
  };
}

function headers(o: Options): Record<string, string> {
  return o.key ? { 'X-Status-Key': o.key } : {};
}

function parseSnapshot(o: Options, text: string): RenderableSnapshot {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw unexpected(o, `the answer is not JSON${excerpt(text)}`);
  }
  const parsed = Snapshot.safeParse(value);
  if (!parsed.success) throw unexpected(o, `the answer is not an agent status snapshot${excerpt(text)}`);
  return parsed.data;
}

function notRunning(o: Options, error: unknown): Failure {
  return new Failure(1, `not running at ${o.url} (${describeNetworkError(error)})`);
}

function keyRejected(o: Options): Failure {
  const hint = o.key
    ? 'check --key or POCKETPAW_STATUS_API_KEY against the daemon\'s key'
    : 'no key was given: pass --key KEY or set POCKETPAW_STATUS_API_KEY';
  return new Failure(2, `the daemon rejected the status API key (HTTP 403 from ${o.url}; ${hint})`);
}

function unexpected(o: Options, what: string): Failure {
  return new Failure(3, `unexpected answer from ${o.url}: ${what}`);
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
  }
  return cause?.message ?? (error instanceof Error ? error.message : String(error));
}

/** The start of a body, short and cleaned as the table is (no control or bidi characters), for an error message. */
function excerpt(body: string): string {
  const text = clean(body).trim();
  if (text === '') return '';
  return `: ${text.length > 200 ? `${text.slice(0, 200)}...` : text}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
