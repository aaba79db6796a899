/**
 * Transitions: what changed between two states, session by session. Pure, like the fold.
 *
 * A transition is a change of a session's state or tool name, its creation or removal, and every new run
 * (`agent_start`), even one that stays `thinking`. Token counts and titles change the snapshot but are not transitions.
 */
import type { SessionState } from '../../protocol/snapshot.ts';
import type { FoldInput, Session, StatusState } from './fold.ts';

export interface Transition {
  readonly session_key: string;
  readonly from: SessionState | null;
  readonly to: SessionState | null;
  readonly tool_name: string | null;
  readonly error_message: string | null;
  /** Monotonic ms, as passed to the fold. */
  readonly at: number;
}

const NONE: readonly Transition[] = [];

export function transitionsBetween(prev: StatusState, next: StatusState, input: FoldInput, now: number): readonly Transition[] {
  if (prev.sessions === next.sessions) return NONE;
  if (input.kind === 'event' && input.event.session_key) {
    const key = input.event.session_key;
    const t = transitionOf(key, prev.sessions.get(key), next.sessions.get(key), now);
    return t ? [t] : NONE;
  }
  const out: Transition[] = [];
  for (const [key, before] of prev.sessions) {
    const t = transitionOf(key, before, next.sessions.get(key), now);
    if (t) out.push(t);
  }
  for (const [key, after] of next.sessions) {
    if (!prev.sessions.has(key)) out.push(transitionOf(key, undefined, after, now)!);
  }
  return out;
}

export function transitionOf(key: string, before: Session | undefined, after: Session | undefined, at: number): Transition | null {
  if (before === after) return null;
  if (before && after && before.state === after.state && before.toolName === after.toolName && before.run === after.run) {
    return null;
  }
  return {
    session_key: key,
    from: before?.state ?? null,
    to: after?.state ?? null,
    tool_name: after?.toolName ?? null,
    error_message: after?.errorMessage ?? null,
    at,
  };
}
