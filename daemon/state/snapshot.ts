/**
 * Renders the snapshot JSON (protocol/snapshot.ts) from a state, at a given time.
 *
 * Built as a string rather than through JSON.stringify of an object so that `duration_seconds` always carries one
 * decimal (`2.0`, as PocketPaw's Python writes it; clients that type-check floats see a float) and so that the
 * time-independent parts can be compared without the timing fields.
 */
import type { GlobalState } from '../../protocol/snapshot.ts';
import type { Session, StatusState } from './fold.ts';
import { SessionTable } from './sessions.ts';

export interface SessionFilter {
  readonly sessions: ReadonlySet<string> | null;
  readonly channels: ReadonlySet<string> | null;
  /** `?node=`: only the fleet reads it (daemon/fleet/render.ts); a single daemon has no nodes to choose from. */
  readonly nodes?: ReadonlySet<string> | null;
}

export const NO_FILTER: SessionFilter = { sessions: null, channels: null };

export function matches(filter: SessionFilter, s: Pick<Session, 'key' | 'channel'>): boolean {
  return (filter.sessions === null || filter.sessions.has(s.key)) && (filter.channels === null || filter.channels.has(s.channel));
}

/** O(1): the table keeps its sessions counted by state. */
export function globalState(state: StatusState): GlobalState {
  if (state.sessions.size === 0) return 'idle';
  return state.sessions.countIn('error') > 0 ? 'degraded' : 'active';
}

/** What rendering did since start: what the tests check to see that work is shared, not repeated. */
export const renderStats = { sessionsRendered: 0, fragmentsBuilt: 0 };

/**
 * The time-independent JSON of a session, before and after `duration_seconds`, built once per Session object: a
 * rendering re-encodes only the sessions that changed since the last one, and every filter and client shares them.
 */
interface Fragments {
  readonly head: string;
  readonly tail: string;
}

const fragmentCache = new WeakMap<Session, Fragments>();

function fragmentsOf(s: Session): Fragments {
  let f = fragmentCache.get(s);
  if (f === undefined) {
    renderStats.fragmentsBuilt++;
    f = {
      head: `{"session_key":${JSON.stringify(s.key)},"session_id":${JSON.stringify(s.sessionId)},"channel":${JSON.stringify(s.channel)},"title":${str(s.title)},"state":"${s.state}","tool_name":${str(s.toolName)},"duration_seconds":`,
      tail: `,"token_usage":${s.tokens ? `{"input":${s.tokens.input},"output":${s.tokens.output}}` : 'null'},"error_message":${str(s.errorMessage)}}`,
    };
    fragmentCache.set(s, f);
  }
  return f;
}

/**
 * The sessions a filter selects, in the table's order, visiting only those: a session filter looks its keys up; a
 * channel filter reads a per-table index built once and shared by every filter and client.
 */
function selected(sessions: SessionTable, filter: SessionFilter): SessionTable | readonly Session[] {
  if (filter === NO_FILTER || (filter.sessions === null && filter.channels === null)) return sessions;
  let found: Session[] = [];
  if (filter.sessions !== null) {
    // Many keys against few sessions: one pass in order is cheaper than sorting what the lookups found.
    if (filter.sessions.size > sessions.size / 8) return scan(sessions, filter);
    for (const key of filter.sessions) {
      const s = sessions.get(key);
      if (s !== undefined && (filter.channels === null || filter.channels.has(s.channel))) found.push(s);
    }
  } else {
    const index = channelIndex(sessions);
    const lists: Session[][] = [];
    for (const channel of filter.channels!) {
      const list = index.get(channel);
      if (list !== undefined) lists.push(list);
    }
    if (lists.length <= 1) return lists[0] ?? [];
    for (const list of lists) found = found.concat(list);
    if (found.length > sessions.size / 8) return scan(sessions, filter);
  }
  if (found.length > 1) found.sort((a, b) => sessions.orderOf(a.key) - sessions.orderOf(b.key));
  return found;
}

function scan(sessions: SessionTable, filter: SessionFilter): Session[] {
  const found: Session[] = [];
  for (const s of sessions.values()) if (matches(filter, s)) found.push(s);
  return found;
}

const channelIndexes = new WeakMap<SessionTable, ReadonlyMap<string, Session[]>>();
/** The lists of channelIndexes: a selection that is one of them is shared, and so is its rendering. */
const channelLists = new WeakSet<readonly Session[]>();

function channelIndex(sessions: SessionTable): ReadonlyMap<string, Session[]> {
  let index = channelIndexes.get(sessions);
  if (index === undefined) {
    const built = new Map<string, Session[]>();
    for (const s of sessions.values()) {
      const list = built.get(s.channel);
      if (list === undefined) built.set(s.channel, [s]);
      else list.push(s);
    }
    for (const list of built.values()) channelLists.add(list);
    channelIndexes.set(sessions, (index = built));
  }
  return index;
}

/**
 * The snapshot in two forms: `json`, the wire body, and `content`, the same without the timing fields
 * (`uptime_seconds`, `duration_seconds`), which is what decides whether a client has seen a change. `content` is the
 * list of the pieces the JSON was made of (the global part, then two per session, each shared with every other
 * rendering of that session): holding it costs a pointer per piece, where a string of it would cost the whole
 * snapshot again for every filter a stream keeps.
 */
export class RenderedSnapshot {
  constructor(
    readonly json: string,
    readonly content: readonly string[],
  ) {}

  /** A rendering made elsewhere (the fleet's views), whose content is one string. */
  static whole(json: string, fingerprint: string): RenderedSnapshot {
    return new RenderedSnapshot(json, [fingerprint]);
  }

  /** `content` as one string (for tests and diagnostics: compare contents with sameContent). */
  get fingerprint(): string {
    if (this.content.length === 1) return this.content[0]!;
    const sessions: string[] = [];
    for (let i = 1; i < this.content.length; i += 2) sessions.push(this.content[i]! + this.content[i + 1]!);
    return `${this.content[0]!}},"sessions":[${sessions.join(',')}]}`;
  }
}

/** Whether two renderings' `content` show the same thing apart from the timing fields. */
export function sameContent(x: readonly string[], y: readonly string[]): boolean {
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function renderSnapshot(state: StatusState, now: number, startedAt: number, filter: SessionFilter = NO_FILTER): RenderedSnapshot {
  const global = `{"global":{"state":"${globalState(state)}","active_sessions":${state.sessions.size},"max_concurrent":${state.maxConcurrent},"uptime_seconds":`;
  const uptime = Math.max(0, Math.floor((now - startedAt) / 1000));
  const selection = selected(state.sessions, filter);
  // Filters that select the very same sessions (all of them, or one channel's list) share one rendering.
  const shared = Array.isArray(selection) && !channelLists.has(selection) ? null : sharedRenderings.get(selection);
  if (shared && shared.state === state && shared.startedAt === startedAt && Math.abs(now - shared.now) < SHARE_RENDERING_MS) return shared.rendered;
  let json = `${global}${uptime}},"sessions":[`;
  const content: string[] = [global];
  let first = true;
  for (const s of selection instanceof SessionTable ? selection.values() : selection) {
    const { head, tail } = fragmentsOf(s);
    json += (first ? '' : ',') + head + Math.max(0, (now - s.stateSince) / 1000).toFixed(1) + tail;
    content.push(head, tail);
    first = false;
  }
  renderStats.sessionsRendered += (content.length - 1) / 2;
  const rendered = new RenderedSnapshot(json + ']}', content);
  if (!Array.isArray(selection) || channelLists.has(selection)) sharedRenderings.set(selection, { state, startedAt, now, rendered });
  return rendered;
}

/** How long a rendering of the same selection of the same state is shared: as long as Snapshots reuses one (RENDER_REUSE_MS). */
const SHARE_RENDERING_MS = 10;
const sharedRenderings = new WeakMap<object, { state: StatusState; startedAt: number; now: number; rendered: RenderedSnapshot }>();

/**
 * One session's object exactly as in the snapshot's `sessions[]` (the MQTT session topics), and its fingerprint: the
 * same without `duration_seconds`.
 */
export function renderSession(s: Session, now: number): { readonly json: string; readonly fingerprint: string } {
  const { head, tail } = fragmentsOf(s);
  return { json: head + Math.max(0, (now - s.stateSince) / 1000).toFixed(1) + tail, fingerprint: head + tail };
}

function str(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}
