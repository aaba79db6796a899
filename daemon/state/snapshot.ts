/**
 * Renders the snapshot JSON (protocol/snapshot.ts) from a state, at a given time.
 *
 * Built as a string rather than through JSON.stringify of an object so that `duration_seconds` always carries one
 * decimal (`2.0`, as PocketPaw's Python writes it; clients that type-check floats see a float) and so that the
 * time-independent parts can be compared without the timing fields.
 */
import type { GlobalState } from '../../protocol/snapshot.ts';
import type { Session, StatusState } from './fold.ts';

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

export function globalState(state: StatusState): GlobalState {
  if (state.sessions.size === 0) return 'idle';
  for (const s of state.sessions.values()) if (s.state === 'error') return 'degraded';
  return 'active';
}

/**
 * The snapshot in two forms: `json`, the wire body, and `fingerprint`, the same without the timing fields
 * (`uptime_seconds`, `duration_seconds`), which is what decides whether a client has seen a change.
 */
export interface RenderedSnapshot {
  readonly json: string;
  readonly fingerprint: string;
}

export function renderSnapshot(state: StatusState, now: number, startedAt: number, filter: SessionFilter = NO_FILTER): RenderedSnapshot {
  const global = `{"global":{"state":"${globalState(state)}","active_sessions":${state.sessions.size},"max_concurrent":${state.maxConcurrent},"uptime_seconds":`;
  const uptime = Math.max(0, Math.floor((now - startedAt) / 1000));
  let json = `${global}${uptime}},"sessions":[`;
  let fingerprint = `${global}},"sessions":[`;
  let first = true;
  for (const s of state.sessions.values()) {
    if (filter !== NO_FILTER && !matches(filter, s)) continue;
    const head = (first ? '' : ',') + sessionHead(s);
    const tail = sessionTail(s);
    json += head + durationSeconds(s, now) + tail;
    fingerprint += head + tail;
    first = false;
  }
  return { json: json + ']}', fingerprint: fingerprint + ']}' };
}

/**
 * One session's object exactly as in the snapshot's `sessions[]` (the MQTT session topics), and its fingerprint: the
 * same without `duration_seconds`.
 */
export function renderSession(s: Session, now: number): RenderedSnapshot {
  const head = sessionHead(s);
  const tail = sessionTail(s);
  return { json: head + durationSeconds(s, now) + tail, fingerprint: head + tail };
}

function sessionHead(s: Session): string {
  return `{"session_key":${JSON.stringify(s.key)},"session_id":${JSON.stringify(s.sessionId)},"channel":${JSON.stringify(s.channel)},"title":${str(s.title)},"state":"${s.state}","tool_name":${str(s.toolName)},"duration_seconds":`;
}

function sessionTail(s: Session): string {
  return `,"token_usage":${s.tokens ? `{"input":${s.tokens.input},"output":${s.tokens.output}}` : 'null'},"error_message":${str(s.errorMessage)}}`;
}

function durationSeconds(s: Session, now: number): string {
  return Math.max(0, (now - s.stateSince) / 1000).toFixed(1);
}

function str(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}
