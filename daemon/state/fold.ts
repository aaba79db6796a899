/**
 * The state machine: a pure fold `(state, input, now) -> state`.
 *
 * No I/O, no timers, no clock: `now` is a monotonic time in milliseconds passed in by the caller, and the error TTL is
 * a deadline stored in the session that the runtime turns into a timer. When an input changes nothing the very same
 * state object comes back, so `next === prev` is the "nothing happened" test every later stage relies on.
 */
import type { StatusEvent } from '../../protocol/events.ts';
import { splitSessionKey, type SessionState, type TokenUsage } from '../../protocol/snapshot.ts';
import { SessionTable } from './sessions.ts';
import { transitionOf, type Transition } from './transitions.ts';

export interface Session {
  readonly key: string;
  readonly channel: string;
  readonly sessionId: string;
  readonly title: string | null;
  readonly state: SessionState;
  readonly toolName: string | null;
  /** When the session entered its current state (ms, the caller's monotonic clock). */
  readonly stateSince: number;
  readonly tokens: TokenUsage | null;
  readonly errorMessage: string | null;
  /** While in `error`: when the session is removed unless something takes it out of `error` first. */
  readonly errorDeadline: number | null;
  /** Counts `agent_start`s on this key: a restarted run is a new run even when nothing visible changes. */
  readonly run: number;
  /** The long-lived agent connection driving this session, if any; its death marks the session `error`. */
  readonly owner: number | null;
}

export interface StatusState {
  /**
   * In the order sessions first started; a restart in place keeps its position (Map insertion order). A ReadonlyMap
   * whose versions share their data: see sessions.ts.
   */
  readonly sessions: SessionTable;
  readonly maxConcurrent: number;
  readonly errorTtlMs: number;
  /** An agent_start for a new key is refused while this many sessions are live (--max-sessions). */
  readonly maxSessions: number;
}

/** Who sent an event: a connection id, and whether it introduced itself with `hello` (a long-lived agent). */
export interface Producer {
  readonly id: number;
  readonly agent: boolean;
}

export type FoldInput =
  | { readonly kind: 'event'; readonly event: StatusEvent; readonly producer: Producer }
  /** A long-lived agent's connection closed. */
  | { readonly kind: 'producer_closed'; readonly producer: number }
  /** Time passed: remove sessions whose error deadline is due. */
  | { readonly kind: 'expire' };

export const AGENT_DISCONNECTED = 'agent disconnected';
export const UNKNOWN_ERROR = 'Unknown error';

export const DEFAULT_MAX_SESSIONS = 10_000;

export function initialState(options: { maxConcurrent: number; errorTtlMs: number; maxSessions?: number }): StatusState {
  return {
    sessions: SessionTable.empty(),
    maxConcurrent: options.maxConcurrent,
    errorTtlMs: options.errorTtlMs,
    maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
  };
}

export interface FoldResult {
  readonly state: StatusState;
  /** Every transition the inputs made, in order (see transitions.ts for what counts). */
  readonly transitions: readonly Transition[];
  /** Indexes of event inputs ignored because their session does not exist (counted by the caller). */
  readonly unknownSession: readonly number[];
  /** Indexes of agent_start inputs refused because maxSessions sessions were live (answered and counted by the caller). */
  readonly refused: readonly number[];
  /** The earliest error deadline these inputs set, if any: the runtime arms its timer from it without a scan. */
  readonly earliestNewDeadline: number | null;
}

const NONE: readonly never[] = [];

export function fold(state: StatusState, input: FoldInput, now: number): StatusState {
  return foldAll(state, [input], now).state;
}

/**
 * Folds many inputs at one time `now` (the lines of one socket read): the same result as folding them one by one.
 * The batch's changes are collected in a draft and committed once: the cost is that of what changed, whatever the
 * number of live sessions (sessions.ts).
 */
export function foldAll(state: StatusState, inputs: readonly FoldInput[], now: number): FoldResult {
  const sessions = state.sessions.edit();
  let maxConcurrent = state.maxConcurrent;
  let transitions: Transition[] | null = null;
  let unknownSession: number[] | null = null;
  let refused: number[] | null = null;
  let earliestNewDeadline: number | null = null;
  const change = (key: string, prev: Session | undefined, next: Session | undefined) => {
    if (next === prev) return;
    if (next) {
      sessions.set(key, next, prev !== undefined);
      const deadline = next.errorDeadline;
      if (deadline !== null && deadline !== prev?.errorDeadline && (earliestNewDeadline === null || deadline < earliestNewDeadline)) {
        earliestNewDeadline = deadline;
      }
    } else {
      sessions.delete(key);
    }
    const t = transitionOf(key, prev, next, now);
    if (t) (transitions ??= []).push(t);
  };

  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i]!;
    if (input.kind === 'producer_closed') {
      for (const [key, s] of sessions.entries()) {
        if (s.owner === input.producer && s.state !== 'error') change(key, s, enterError(s, AGENT_DISCONNECTED, now, state.errorTtlMs));
      }
      continue;
    }
    if (input.kind === 'expire') {
      for (const [key, s] of sessions.entries()) {
        if (s.errorDeadline !== null && s.errorDeadline <= now) change(key, s, undefined);
      }
      continue;
    }
    const { event, producer } = input;
    if (event.type === 'hello') {
      if (event.max_concurrent != null) maxConcurrent = event.max_concurrent;
      continue;
    }
    const key = event.session_key;
    if (!key) continue;
    const prev = sessions.get(key);
    if (event.type === 'agent_start') {
      // Live sessions are never evicted by newcomers: a new key past the cap is refused, a restart is not.
      if (!prev && sessions.size >= state.maxSessions) (refused ??= []).push(i);
      else change(key, prev, started(key, prev, event.title || null, producer, now));
    } else if (!prev) {
      (unknownSession ??= []).push(i);
    } else if (event.type === 'agent_end') {
      change(key, prev, undefined);
    } else {
      change(key, prev, adopt(nextSession(prev, event, now, state.errorTtlMs), producer));
    }
  }

  const next = sessions.result();
  const result: StatusState =
    next === state.sessions && maxConcurrent === state.maxConcurrent ? state : { ...state, sessions: next, maxConcurrent };
  return { state: result, transitions: transitions ?? NONE, unknownSession: unknownSession ?? NONE, refused: refused ?? NONE, earliestNewDeadline };
}

// Sessions are built as object literals with every field, in one order: one hidden class for all of them, and
// about a hundred times cheaper than `{ ...s, field }` on this hot path (measured).

function started(key: string, prev: Session | undefined, title: string | null, producer: Producer, now: number): Session {
  const { channel, session_id } = splitSessionKey(key);
  return {
    key,
    channel,
    sessionId: session_id,
    // A title belongs to the conversation, not the run: a restart without one keeps the old one.
    title: title ?? prev?.title ?? null,
    state: 'thinking',
    toolName: null,
    stateSince: now,
    tokens: null,
    errorMessage: null,
    errorDeadline: null,
    run: (prev?.run ?? 0) + 1,
    owner: producer.agent ? producer.id : (prev?.owner ?? null),
  };
}

/** The session after one event, for every event type except hello, agent_start and agent_end. */
function nextSession(s: Session, event: StatusEvent, now: number, errorTtlMs: number): Session {
  switch (event.type) {
    case 'thinking':
    case 'stream_end':
      return s.state === 'thinking' ? s : enter(s, 'thinking', null, now);
    case 'tool_start':
      // A new tool run restarts the clock even for the same tool.
      return enter(s, 'tool_running', event.name || event.tool || null, now);
    case 'tool_result':
      // PocketPaw reports a failed run as a tool result from the pseudo-tool "agent".
      if (event.status === 'error' && event.name === 'agent') return enterError(s, resultText(event.result), now, errorTtlMs);
      return s.state === 'tool_running' ? enter(s, 'streaming', null, now) : s;
    case 'stream_start':
      return s.state === 'streaming' ? s : enter(s, 'streaming', null, now);
    case 'ask_user_question':
      return s.state === 'waiting_for_user' ? s : enter(s, 'waiting_for_user', null, now);
    case 'error':
      return enterError(s, event.message || UNKNOWN_ERROR, now, errorTtlMs);
    case 'title': {
      const title = event.title || null;
      return title === s.title ? s : withExtras(s, title, s.tokens, s.owner);
    }
    case 'token_usage':
      return foldTokens(s, event);
    default:
      return s;
  }
}

/** Token payloads are run-cumulative: show the highest totals of the run; a smaller payload is not a refund. */
function foldTokens(s: Session, event: Extract<StatusEvent, { type: 'token_usage' }>): Session {
  const input = Math.max(s.tokens?.input ?? 0, event.input ?? event.input_tokens ?? 0);
  const output = Math.max(s.tokens?.output ?? 0, event.output ?? event.output_tokens ?? 0);
  if (s.tokens && s.tokens.input === input && s.tokens.output === output) return s;
  return withExtras(s, s.title, { input, output }, s.owner);
}

/** Any state other than `error`: the tool name lives only in `tool_running`, the error only in `error`. */
function enter(s: Session, state: Exclude<SessionState, 'error'>, toolName: string | null, now: number): Session {
  return withState(s, state, toolName, now, null, null);
}

function enterError(s: Session, message: string, now: number, errorTtlMs: number): Session {
  return withState(s, 'error', null, now, message, now + errorTtlMs);
}

function withState(
  s: Session,
  state: SessionState,
  toolName: string | null,
  stateSince: number,
  errorMessage: string | null,
  errorDeadline: number | null,
): Session {
  return {
    key: s.key,
    channel: s.channel,
    sessionId: s.sessionId,
    title: s.title,
    state,
    toolName,
    stateSince,
    tokens: s.tokens,
    errorMessage,
    errorDeadline,
    run: s.run,
    owner: s.owner,
  };
}

function withExtras(s: Session, title: string | null, tokens: TokenUsage | null, owner: number | null): Session {
  return {
    key: s.key,
    channel: s.channel,
    sessionId: s.sessionId,
    title,
    state: s.state,
    toolName: s.toolName,
    stateSince: s.stateSince,
    tokens,
    errorMessage: s.errorMessage,
    errorDeadline: s.errorDeadline,
    run: s.run,
    owner,
  };
}

/** A long-lived agent that sends an event for a session takes it over (for example after reconnecting). */
function adopt(s: Session, producer: Producer): Session {
  return producer.agent && s.owner !== producer.id ? withExtras(s, s.title, s.tokens, producer.id) : s;
}

/** PocketPaw sends the failed run's message as a string; anything else is not shown (and never serialised). */
function resultText(result: unknown): string {
  return typeof result === 'string' && result !== '' ? result : UNKNOWN_ERROR;
}

/** The earliest error deadline, for the runtime's single expiry timer. */
export function nextDeadline(state: StatusState): number | null {
  let earliest: number | null = null;
  for (const s of state.sessions.values()) {
    if (s.errorDeadline !== null && (earliest === null || s.errorDeadline < earliest)) earliest = s.errorDeadline;
  }
  return earliest;
}
