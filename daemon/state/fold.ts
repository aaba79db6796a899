/**
 * The state machine: a pure fold `(state, input, now) -> state`.
 *
 * No I/O, no timers, no clock: `now` is a monotonic time in milliseconds passed in by the caller, and the error TTL is
 * a deadline stored in the session that the runtime turns into a timer. When an input changes nothing the very same
 * state object comes back, so `next === prev` is the "nothing happened" test every later stage relies on.
 */
import type { StatusEvent } from '../../protocol/events.ts';
import { splitSessionKey, type SessionState, type TokenUsage } from '../../protocol/snapshot.ts';

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
  /** In the order sessions first started; a restart in place keeps its position (Map insertion order). */
  readonly sessions: ReadonlyMap<string, Session>;
  readonly maxConcurrent: number;
  readonly errorTtlMs: number;
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

export function initialState(options: { maxConcurrent: number; errorTtlMs: number }): StatusState {
  return { sessions: new Map(), maxConcurrent: options.maxConcurrent, errorTtlMs: options.errorTtlMs };
}

export function fold(state: StatusState, input: FoldInput, now: number): StatusState {
  switch (input.kind) {
    case 'event':
      return foldEvent(state, input.event, input.producer, now);
    case 'producer_closed':
      return mapSessions(state, (s) =>
        s.owner === input.producer && s.state !== 'error' ? enterError(s, AGENT_DISCONNECTED, now, state.errorTtlMs) : s,
      );
    case 'expire':
      return mapSessions(state, (s) => (s.errorDeadline !== null && s.errorDeadline <= now ? undefined : s));
  }
}

function foldEvent(state: StatusState, event: StatusEvent, producer: Producer, now: number): StatusState {
  if (event.type === 'hello') {
    const max = event.max_concurrent;
    return max == null || max === state.maxConcurrent ? state : { ...state, maxConcurrent: max };
  }
  const key = event.session_key;
  if (!key) return state;
  const prev = state.sessions.get(key);

  if (event.type === 'agent_start') {
    const { channel, session_id } = splitSessionKey(key);
    return withSession(state, key, {
      key,
      channel,
      sessionId: session_id,
      // A title belongs to the conversation, not the run: a restart without one keeps the old one.
      title: event.title || prev?.title || null,
      state: 'thinking',
      toolName: null,
      stateSince: now,
      tokens: null,
      errorMessage: null,
      errorDeadline: null,
      run: (prev?.run ?? 0) + 1,
      owner: producer.agent ? producer.id : (prev?.owner ?? null),
    });
  }
  if (!prev) return state;
  if (event.type === 'agent_end') return withSession(state, key, undefined);

  const next = adopt(nextSession(prev, event, now, state.errorTtlMs), producer);
  return next === prev ? state : withSession(state, key, next);
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
      return title === s.title ? s : { ...s, title };
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
  return { ...s, tokens: { input, output } };
}

/** Any state other than `error`: the tool name lives only in `tool_running`, the error only in `error`. */
function enter(s: Session, state: Exclude<SessionState, 'error'>, toolName: string | null, now: number): Session {
  return { ...s, state, toolName, stateSince: now, errorMessage: null, errorDeadline: null };
}

function enterError(s: Session, message: string, now: number, errorTtlMs: number): Session {
  return { ...s, state: 'error', toolName: null, stateSince: now, errorMessage: message, errorDeadline: now + errorTtlMs };
}

/** A long-lived agent that sends an event for a session takes it over (for example after reconnecting). */
function adopt(s: Session, producer: Producer): Session {
  return producer.agent && s.owner !== producer.id ? { ...s, owner: producer.id } : s;
}

function resultText(result: unknown): string {
  if (typeof result === 'string' && result !== '') return result;
  if (result === undefined || result === null || result === '') return UNKNOWN_ERROR;
  return JSON.stringify(result);
}

function withSession(state: StatusState, key: string, session: Session | undefined): StatusState {
  const sessions = new Map(state.sessions);
  if (session) sessions.set(key, session);
  else sessions.delete(key);
  return { ...state, sessions };
}

/** Applies `f` to every session (`undefined` removes it); returns the same state when nothing changed. */
function mapSessions(state: StatusState, f: (s: Session) => Session | undefined): StatusState {
  let sessions: Map<string, Session> | undefined;
  for (const [key, s] of state.sessions) {
    const next = f(s);
    if (next === s) continue;
    sessions ??= new Map(state.sessions);
    if (next) sessions.set(key, next);
    else sessions.delete(key);
  }
  return sessions ? { ...state, sessions } : state;
}

/** The earliest error deadline, for the runtime's single expiry timer. */
export function nextDeadline(state: StatusState): number | null {
  let earliest: number | null = null;
  for (const s of state.sessions.values()) {
    if (s.errorDeadline !== null && (earliest === null || s.errorDeadline < earliest)) earliest = s.errorDeadline;
  }
  return earliest;
}
