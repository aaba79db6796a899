/**
 * Protocol v1: the events an agent writes to the ingest socket, one JSON object per line.
 *
 * This file is the wire contract. The daemon validates every line against it, the emitters are typed by it, and
 * protocol/README.md documents it for agent authors in other languages. Names and payload fields are PocketPaw's own,
 * so a PocketPaw bus subscriber can forward `{"type": event_type, ...data}` unchanged.
 */
import * as z from 'zod/mini';
import './zod-messages.ts';

export const PROTOCOL_VERSION = 1;

/** Every event type this version understands. Other types are ignored (and counted), for forward compatibility. */
export const EVENT_TYPES = [
  'hello',
  'agent_start',
  'thinking',
  'tool_start',
  'tool_result',
  'stream_start',
  'stream_end',
  'ask_user_question',
  'token_usage',
  'error',
  'title',
  'agent_end',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const optionalText = z.nullish(z.string());
const tokenCount = z.nullish(z.int().check(z.nonnegative()));

// Fields every event may carry. `session_key` is checked for presence after parsing: an event without one (absent,
// null or "") is ignored, not rejected, as upstream does; but a session_key of another type is a malformed event.
const envelope = {
  v: z.optional(z.literal(PROTOCOL_VERSION)),
  session_key: z.nullish(z.string()),
  // One-shot producers (a hook run per event) cannot hold a connection, nor know whether the daemon still has their
  // session: `create_session: true` starts it (as a title-less agent_start) when it is not live, and `pid` names a
  // process on this host whose death marks the session `agent disconnected`, as a long-lived agent's closed
  // connection does. Without them, events for unknown sessions are ignored and nothing is watched, as before.
  create_session: z.nullish(z.boolean()),
  pid: z.nullish(z.int().check(z.positive())),
};
// Agents that run tools in parallel name each call: the session stays `tool_running` until the last one closes.
const callId = z.nullish(z.string());

export const HelloEvent = z.object({
  type: z.literal('hello'),
  ...envelope,
  agent: optionalText,
  version: z.nullish(z.union([z.string(), z.number()])),
  max_concurrent: z.nullish(z.int().check(z.positive())),
});

export const AgentStartEvent = z.object({ type: z.literal('agent_start'), ...envelope, title: optionalText });
export const ThinkingEvent = z.object({ type: z.literal('thinking'), ...envelope });
export const ToolStartEvent = z.object({
  type: z.literal('tool_start'),
  ...envelope,
  name: optionalText,
  tool: optionalText,
  call_id: callId,
});
export const ToolResultEvent = z.object({
  type: z.literal('tool_result'),
  ...envelope,
  status: optionalText,
  name: optionalText,
  result: z.optional(z.unknown()),
  call_id: callId,
});
export const StreamStartEvent = z.object({ type: z.literal('stream_start'), ...envelope });
export const StreamEndEvent = z.object({ type: z.literal('stream_end'), ...envelope });
export const AskUserQuestionEvent = z.object({ type: z.literal('ask_user_question'), ...envelope, call_id: callId });
export const TokenUsageEvent = z.object({
  type: z.literal('token_usage'),
  ...envelope,
  input: tokenCount,
  output: tokenCount,
  input_tokens: tokenCount,
  output_tokens: tokenCount,
});
export const ErrorEvent = z.object({ type: z.literal('error'), ...envelope, message: optionalText });
export const TitleEvent = z.object({ type: z.literal('title'), ...envelope, title: optionalText });
export const AgentEndEvent = z.object({ type: z.literal('agent_end'), ...envelope });

/** Each event type's schema, by its `type`: a validator that has read `type` can go straight to the one it needs. */
export const EVENT_SCHEMAS = {
  hello: HelloEvent,
  agent_start: AgentStartEvent,
  thinking: ThinkingEvent,
  tool_start: ToolStartEvent,
  tool_result: ToolResultEvent,
  stream_start: StreamStartEvent,
  stream_end: StreamEndEvent,
  ask_user_question: AskUserQuestionEvent,
  token_usage: TokenUsageEvent,
  error: ErrorEvent,
  title: TitleEvent,
  agent_end: AgentEndEvent,
} as const satisfies Record<EventType, z.ZodMiniType>;

export const StatusEvent = z.discriminatedUnion('type', [
  HelloEvent,
  AgentStartEvent,
  ThinkingEvent,
  ToolStartEvent,
  ToolResultEvent,
  StreamStartEvent,
  StreamEndEvent,
  AskUserQuestionEvent,
  TokenUsageEvent,
  ErrorEvent,
  TitleEvent,
  AgentEndEvent,
]);
export type StatusEvent = z.infer<typeof StatusEvent>;
/** What a producer may write: the same shape, before validation fills nothing in. */
export type StatusEventInput = z.input<typeof StatusEvent>;
