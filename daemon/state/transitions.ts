/**
 * Transitions: what changed between two states, session by session. Pure, like the fold.
 *
 * A transition is a change of a session's state or tool name, its creation or removal, and every new run
 * (`agent_start`), even one that stays `thinking`. Token counts and titles change the snapshot but are not transitions.
 */
import type { SessionState } from '../../protocol/snapshot.ts';
import type { Session } from './fold.ts';

export interface Transition {
  readonly session_key: string;
  readonly from: SessionState | null;
  readonly to: SessionState | null;
  readonly tool_name: string | null;
  readonly error_message: string | null;
  /** Monotonic ms, as passed to the fold. */
  readonly at: number;
  /** Set by the fleet (daemon/fleet/): the node the transition happened on, and its time as that node stamped it. */
  readonly node_id?: string;
  readonly at_iso?: string;
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
