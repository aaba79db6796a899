/**
 * The state file: what the daemon keeps on disk so that a restart changes nothing a client can see (docs/state.md).
 *
 * One versioned JSON document, validated by the zod schema below on the way in. Sessions are stored as the fold keeps
 * them, except that monotonic times (every field named `...Since` or `...Deadline`) are written as wall-clock ms:
 * the monotonic clock restarts with the process, the wall clock does not. Restoring maps them back (`toMonotonic`).
 *
 * Everything here but `readStateFile`, `writeStateFile` and `prepareStateDir` is pure, and tested without a disk.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { SessionState, TokenUsage } from '../../protocol/snapshot.ts';
import { StartupError } from '../ingest/socket.ts';
import type { Session, StatusState } from '../state/fold.ts';

export const STATE_FILE = 'state.json';
export const FORMAT = 'pocketpaw-status/state';
/** Bump when a change cannot be read by the previous schema; a file of another version is moved aside, not guessed at. */
export const VERSION = 1;

/**
 * The owner of a restored session whose agent has not reconnected yet. Connection ids start at 1 and die with the
 * process, so an old id could name a new, unrelated connection: every agent-owned session comes back owned by this
 * placeholder, an agent that replays an event for it adopts it (the fold's usual rule), and when the grace is over
 * `producer_closed` for this placeholder turns the rest to error / "agent disconnected".
 */
export const RESTORED_AGENT = -1;

const wallMs = z.number().check(z.nonnegative());
const count = z.int().check(z.nonnegative());

/**
 * A session as stored. Its fields are the fold's Session fields, one line each; the type checks below make tsc fail
 * when Session gains a field this schema lacks (or the reverse). A field named `...Since` / `...Deadline` is a
 * monotonic time and is converted through the wall clock automatically.
 */
const StoredSession = z.object({
  key: z.string(),
  channel: z.string(),
  sessionId: z.string(),
  title: z.nullable(z.string()),
  state: SessionState,
  toolName: z.nullable(z.string()),
  stateSince: wallMs,
  tokens: z.nullable(TokenUsage),
  errorMessage: z.nullable(z.string()),
  errorDeadline: z.nullable(wallMs),
  run: count,
  owner: z.nullable(z.int()),
  pid: z.nullable(z.int().check(z.positive())),
  calls: z.readonly(z.array(z.readonly(z.object({ id: z.string(), name: z.nullable(z.string()), asks: z.boolean() })))),
});
type StoredSession = z.infer<typeof StoredSession>;

// Compile-time: the stored shape and Session have exactly the same fields with the same types.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const sameFields: SameKeys<StoredSession, Session> = true;
const storable: (s: Session) => StoredSession = (s) => s;
void sameFields;
void storable;

/** Where the SSE event ids stood, so that ids continue across a restart (daemon/sse/ids.ts). */
const StoredIds = z.object({
  run: z.string().check(z.regex(/^\d+$/)),
  /** The last id's seq. */
  seq: count,
  /** The seq of the last transition event: a client that saw it missed nothing the restart lost. */
  transitionSeq: count,
});
export type IdPosition = z.infer<typeof StoredIds>;

const StoredState = z.object({
  format: z.literal(FORMAT),
  version: z.literal(VERSION),
  /** Wall-clock ms when written: the base of every time below, and what --state-max-age is measured from. */
  savedAt: wallMs,
  /** Written at a clean shutdown: every id issued is counted in `ids` (after a crash some may have been issued since). */
  clean: z.boolean(),
  ids: StoredIds,
  sessions: z.array(StoredSession),
});
type StoredState = z.infer<typeof StoredState>;

/** Monotonic fields are recognised by name, so a new `...Since` / `...Deadline` field needs no code here. */
export function isMonotonicField(name: string): boolean {
  return /(Since|Deadline)$/.test(name);
}

/** A wall-clock time back on this process's monotonic clock, given one instant read on both clocks. */
export function toMonotonic(wall: number, wallNow: number, monoNow: number): number {
  return monoNow - (wallNow - wall);
}

export function toWall(mono: number, wallNow: number, monoNow: number): number {
  return wallNow - (monoNow - mono);
}

function mapTimes<T extends object>(s: T, convert: (t: number, name: string) => number): T {
  const out: Record<string, unknown> = { ...(s as Record<string, unknown>) };
  for (const [name, value] of Object.entries(out)) {
    if (typeof value === 'number' && isMonotonicField(name)) out[name] = convert(value, name);
  }
  return out as T;
}

export interface Clocks {
  /** Date.now() */
  readonly wall: number;
  /** The daemon's monotonic clock, read at the same moment. */
  readonly mono: number;
}

/** The file's text for a state, its id position, at one instant read on both clocks. */
export function encodeState(state: StatusState, ids: IdPosition, clocks: Clocks, clean: boolean): string {
  const doc: StoredState = {
    format: FORMAT,
    version: VERSION,
    savedAt: clocks.wall,
    clean,
    ids,
    sessions: [...state.sessions.values()].map((s) => mapTimes<StoredSession>(s, (t) => toWall(t, clocks.wall, clocks.mono))),
  };
  return `${JSON.stringify(doc)}\n`;
}

export interface Restored {
  readonly sessions: ReadonlyMap<string, Session>;
  /** Null after a crash: ids issued after the last write are unknown, so a new run starts (clients get `reset`). */
  readonly ids: IdPosition | null;
  /** Sessions waiting for their agent to reconnect (owner RESTORED_AGENT). */
  readonly awaitingAgents: number;
  readonly savedAt: number;
}

export type Decoded = { readonly ok: true; readonly restored: Restored } | { readonly ok: false; readonly reason: string };

/**
 * Parses and validates the file's text and rebuilds the sessions on this process's clock. Never throws: anything
 * wrong comes back as a reason a person can read. Errors whose TTL ran out while the daemon was down are dropped.
 */
export function decodeState(text: string, clocks: Clocks, maxAgeMs: number): Decoded {
  if (text.trim() === '') return { ok: false, reason: 'the file is empty' };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not valid JSON (truncated or corrupt): ${(error as Error).message}` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'not a JSON object' };
  const head = raw as { format?: unknown; version?: unknown };
  if (head.format !== FORMAT) return { ok: false, reason: `not a pocketpaw-status state file (format ${JSON.stringify(head.format ?? null)})` };
  if (head.version !== VERSION) {
    return { ok: false, reason: `unknown format version ${JSON.stringify(head.version ?? null)} (this daemon reads version ${VERSION})` };
  }
  const parsed = StoredState.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `does not match format version ${VERSION}: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid'}` };
  }
  const doc = parsed.data;
  const age = clocks.wall - doc.savedAt;
  if (age > maxAgeMs) {
    return { ok: false, reason: `written ${Math.round(age / 1000)} s ago, older than --state-max-age (${Math.round(maxAgeMs / 1000)} s)` };
  }
  const sessions = new Map<string, Session>();
  let awaitingAgents = 0;
  for (const stored of doc.sessions) {
    if (stored.errorDeadline !== null && stored.errorDeadline <= clocks.wall) continue;
    // A wall clock set back while the daemon was down must not give a state that started in the future.
    const s = mapTimes<StoredSession>(stored, (t, name) => {
      const mono = toMonotonic(t, clocks.wall, clocks.mono);
      return name.endsWith('Since') ? Math.min(clocks.mono, mono) : mono;
    });
    const owner = s.owner === null ? null : RESTORED_AGENT;
    if (owner !== null && s.state !== 'error') awaitingAgents++;
    sessions.set(s.key, { ...s, owner });
  }
  return { ok: true, restored: { sessions, ids: doc.clean ? doc.ids : null, awaitingAgents, savedAt: doc.savedAt } };
}

/** Checks the folder as the socket folder is checked: a real directory, the daemon user's, nobody else may write. */
export async function prepareStateDir(dir: string): Promise<void> {
  const fix = `; choose another --state-dir, or --state-dir none to keep no state`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StartupError(`cannot create the state folder ${dir}: ${(error as Error).message}${fix}`);
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new StartupError(`the state folder ${dir} is not a directory (a symlink or a file)${fix}`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new StartupError(`the state folder ${dir} belongs to uid ${st.uid}, not to this daemon's user (uid ${uid})${fix}`);
  if ((st.mode & 0o022) !== 0) {
    throw new StartupError(`the state folder ${dir} can be written by others (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it${fix}`);
  }
}

export type ReadResult =
  | { readonly kind: 'absent' }
  | { readonly kind: 'restored'; readonly restored: Restored }
  | { readonly kind: 'bad'; readonly reason: string; readonly movedTo: string | null; readonly moveError: string | null };

/**
 * Reads and decodes the state file. A bad one is renamed to `state.json.bad-<time>` (never deleted: a person may want
 * to look at it) and reported; the caller starts empty. Leftover temporary files of an interrupted write are removed:
 * they are never the state, only a write that did not finish.
 */
export async function readStateFile(dir: string, clocks: Clocks, maxAgeMs: number): Promise<ReadResult> {
  const path = join(dir, STATE_FILE);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(`${STATE_FILE}.tmp-`)) await unlink(join(dir, name)).catch(() => undefined);
  }
  let text: string;
  let decoded: Decoded;
  try {
    text = await readFile(path, { encoding: 'utf8', flag: constants.O_RDONLY | constants.O_NOFOLLOW });
    decoded = decodeState(text, clocks, maxAgeMs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'absent' };
    decoded = { ok: false, reason: `cannot be read: ${(error as Error).message}` };
  }
  if (decoded.ok) return { kind: 'restored', restored: decoded.restored };
  const movedTo = `${path}.bad-${new Date(clocks.wall).toISOString().replace(/[:.]/g, '-')}`;
  try {
    await rename(path, movedTo);
    return { kind: 'bad', reason: decoded.reason, movedTo, moveError: null };
  } catch (error) {
    return { kind: 'bad', reason: decoded.reason, movedTo: null, moveError: (error as Error).message };
  }
}

/** Atomic replace: a temporary file, fsync, rename over the old one, fsync of the folder. A crash leaves old or new. */
export async function writeStateFile(dir: string, text: string): Promise<void> {
  const tmp = join(dir, `${STATE_FILE}.tmp-${process.pid}`);
  const file = await open(tmp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, join(dir, STATE_FILE));
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
