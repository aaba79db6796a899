/**
 * The summary: the global state and a count of sessions per state, for pollers (Home Assistant's REST sensor, scripts,
 * widgets). No timing field is in it, so its body, and with it its ETag, changes only when a value a person sees
 * changes; and it is small enough to be a Home Assistant state (at most 255 characters) whole.
 */
import { createHash } from 'node:crypto';
import { SESSION_STATES, type SessionState } from '../../protocol/snapshot.ts';
import type { StatusState } from './fold.ts';
import { globalState } from './snapshot.ts';

export interface RenderedSummary {
  readonly json: string;
  /** A strong ETag (quoted), derived from the body: equal bodies, equal tags, across restarts too. */
  readonly etag: string;
}

export function renderSummary(state: StatusState): RenderedSummary {
  // The session table keeps its sessions counted by state: no scan.
  const counts = Object.fromEntries(SESSION_STATES.map((s) => [s, state.sessions.countIn(s)])) as Record<SessionState, number>;
  const json = JSON.stringify({
    state: globalState(state),
    active_sessions: state.sessions.size,
    max_concurrent: state.maxConcurrent,
    sessions: counts,
  });
  return summaryOfBody(json);
}

/** A summary body with its ETag (the fleet's summary, daemon/fleet/render.ts, is tagged the same way). */
export function summaryOfBody(json: string): RenderedSummary {
  return { json, etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 22)}"` };
}

/** Renders once per state: the state is immutable and replaced on every change (fold.ts), so identity is enough. */
export function summaryCache(): (state: StatusState) => RenderedSummary {
  let last: { state: StatusState; rendered: RenderedSummary } | null = null;
  return (state) => {
    if (last?.state !== state) last = { state, rendered: renderSummary(state) };
    return last.rendered;
  };
}

/** `If-None-Match`: a list of tags, weak ones (`W/"..."`) compared by their value, or `*`. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}
