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
  /** A process on this host (event field `pid`) whose death marks the session `error`, as `owner`'s does. */
  readonly pid: number | null;
  /**
   * Calls opened with a `call_id` and not closed yet, oldest first. Only `tool_running` and `waiting_for_user` have
   * any: `tool_name` is the newest open tool call's, and an open question (`asks`) keeps the session waiting.
   */
  readonly calls: readonly OpenCall[];
}

/** One open call (plain data: sessions are persisted as JSON). */
export interface OpenCall {
  readonly id: string;
  readonly name: string | null;
  /** Opened by `ask_user_question`: a wait on the person that its `tool_result` ends. */
  readonly asks: boolean;
}

/** A producer that opens calls and never closes them cannot grow a session without bound: the oldest are dropped. */
export const MAX_OPEN_CALLS = 64;
const NO_CALLS: readonly OpenCall[] = Object.freeze([]);

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
  /** A watched process (a session's `pid`) is gone: the same as its agent's connection closing. */
  | { readonly kind: 'pid_gone'; readonly pid: number }
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
    if (input.kind === 'pid_gone') {
      for (const [key, s] of sessions.entries()) {
        if (s.pid === input.pid) change(key, s, processGone(s, now, state.errorTtlMs));
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
      else change(key, prev, started(key, prev, event.title || null, producer, event.pid ?? null, now));
    } else if (!prev && event.create_session === true && event.type !== 'agent_end') {
      // An event that may create its session counts against the same cap as agent_start.
      if (sessions.size >= state.maxSessions) (refused ??= []).push(i);
      else change(key, prev, nextSession(started(key, undefined, null, producer, event.pid ?? null, now), event, now, state.errorTtlMs));
    } else if (!prev) {
      (unknownSession ??= []).push(i);
    } else if (event.type === 'agent_end') {
      change(key, prev, undefined);
    } else {
      change(key, prev, adopt(nextSession(prev, event, now, state.errorTtlMs), producer, event.pid ?? null));
    }
  }

  const next = sessions.result();
  const result: StatusState =
    next === state.sessions && maxConcurrent === state.maxConcurrent ? state : { ...state, sessions: next, maxConcurrent };
  return { state: result, transitions: transitions ?? NONE, unknownSession: unknownSession ?? NONE, refused: refused ?? NONE, earliestNewDeadline };
}

// Sessions are built as object literals with every field, in one order: one hidden class for all of them, and
// about a hundred times cheaper than `{ ...s, field }` on this hot path (measured).

function started(key: string, prev: Session | undefined, title: string | null, producer: Producer, pid: number | null, now: number): Session {
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
    pid: pid ?? prev?.pid ?? null,
    calls: NO_CALLS,
  };
}

/** The session after one event, for every event type except hello, agent_start and agent_end. */
function nextSession(s: Session, event: StatusEvent, now: number, errorTtlMs: number): Session {
  switch (event.type) {
    case 'thinking':
    case 'stream_end':
      // The agent is back at the model: whatever calls were open are over.
      return s.state === 'thinking' ? s : enter(s, 'thinking', null, now, NO_CALLS);
    case 'tool_start': {
      const name = event.name || event.tool || null;
      // Without a call id, calls opened with one stay open (their closes still count).
      if (event.call_id == null) return enter(s, 'tool_running', name, now, s.calls);
      const calls = withCall(s.calls, { id: event.call_id, name, asks: false });
      // A question still open outranks a tool starting beside it: the person is what the agent waits on.
      if (calls.some(isAsk)) return withState(s, 'waiting_for_user', null, s.state === 'waiting_for_user' ? s.stateSince : now, null, null, calls);
      // A new tool run restarts the clock even for the same tool.
      return enter(s, 'tool_running', name, now, calls);
    }
    case 'tool_result':
      // PocketPaw reports a failed run as a tool result from the pseudo-tool "agent".
      if (event.status === 'error' && event.name === 'agent') return enterError(s, resultText(event.result), now, errorTtlMs);
      if (event.call_id != null) return closeCall(s, event.call_id, now);
      return s.state === 'tool_running' ? enter(s, 'streaming', null, now, NO_CALLS) : s;
    case 'stream_start':
      return s.state === 'streaming' ? s : enter(s, 'streaming', null, now, NO_CALLS);
    case 'ask_user_question': {
      const calls = event.call_id == null ? s.calls : withCall(s.calls, { id: event.call_id, name: null, asks: true });
      if (s.state === 'waiting_for_user') return calls === s.calls ? s : withState(s, s.state, null, s.stateSince, null, null, calls);
      return enter(s, 'waiting_for_user', null, now, calls);
    }
    case 'error':
      return enterError(s, event.message || UNKNOWN_ERROR, now, errorTtlMs);
    case 'title': {
      const title = event.title || null;
      return title === s.title ? s : withExtras(s, title, s.tokens, s.owner, s.pid);
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
  return withExtras(s, s.title, { input, output }, s.owner, s.pid);
}

function isAsk(call: OpenCall): boolean {
  return call.asks;
}

/** Opens a call (a repeated id moves to the end, as the newest), dropping the oldest beyond MAX_OPEN_CALLS. */
function withCall(calls: readonly OpenCall[], call: OpenCall): readonly OpenCall[] {
  const next = calls.filter((c) => c.id !== call.id);
  next.push(call);
  return next.length > MAX_OPEN_CALLS ? next.slice(next.length - MAX_OPEN_CALLS) : next;
}

/**
 * Closes one call. The last close returns the session to `thinking` (the agent goes back to the model with the
 * results); otherwise an open question keeps it waiting, a wait without a call of its own (a permission prompt for
 * one of the calls) lasts until that call closes too, and else `tool_name` is the newest call still open. A call id
 * that is not open changes nothing: a subagent's tools never close the call that runs the subagent.
 */
function closeCall(s: Session, id: string, now: number): Session {
  const index = s.calls.findIndex((c) => c.id === id);
  if (index < 0) return s;
  const calls = s.calls.filter((_, i) => i !== index);
  if (calls.length === 0) return enter(s, 'thinking', null, now, NO_CALLS);
  const waitWithoutCall = s.state === 'waiting_for_user' && !s.calls.some(isAsk);
  if (waitWithoutCall || calls.some(isAsk)) {
    return withState(s, 'waiting_for_user', null, s.state === 'waiting_for_user' ? s.stateSince : now, null, null, calls);
  }
  const name = calls[calls.length - 1]!.name;
  const same = s.state === 'tool_running' && s.toolName === name;
  return withState(s, 'tool_running', name, same ? s.stateSince : now, null, null, calls);
}

/** A watched process died: its sessions are disconnected, and no longer watched. */
function processGone(s: Session, now: number, errorTtlMs: number): Session {
  const e = s.state === 'error' ? s : enterError(s, AGENT_DISCONNECTED, now, errorTtlMs);
  return withExtras(e, e.title, e.tokens, e.owner, null);
}

/** Any state other than `error`: the tool name lives only in `tool_running`, the error only in `error`. */
function enter(s: Session, state: Exclude<SessionState, 'error'>, toolName: string | null, now: number, calls: readonly OpenCall[]): Session {
  return withState(s, state, toolName, now, null, null, calls);
}

function enterError(s: Session, message: string, now: number, errorTtlMs: number): Session {
  return withState(s, 'error', null, now, message, now + errorTtlMs, NO_CALLS);
}

function withState(
  s: Session,
  state: SessionState,
  toolName: string | null,
  stateSince: number,
  errorMessage: string | null,
  errorDeadline: number | null,
  calls: readonly OpenCall[],
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
    pid: s.pid,
    calls,
  };
}

function withExtras(s: Session, title: string | null, tokens: TokenUsage | null, owner: number | null, pid: number | null): Session {
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
    pid,
    calls: s.calls,
  };
}

/**
 * A long-lived agent that sends an event for a session takes it over (for example after reconnecting); an event with
 * a `pid` makes that process the one watched.
 */
function adopt(s: Session, producer: Producer, pid: number | null): Session {
  const owner = producer.agent ? producer.id : s.owner;
  const watched = pid ?? s.pid;
  return owner === s.owner && watched === s.pid ? s : withExtras(s, s.title, s.tokens, owner, watched);
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
