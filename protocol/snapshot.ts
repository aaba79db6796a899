/**
 * The snapshot served at GET /api/v1/agent/status and in every SSE `status` event: field for field PocketPaw's
 * documented AgentStatusResponse. Keys are listed in wire order; every key is always present, nulls are written.
 */
import * as z from 'zod/mini';
import './zod-messages.ts';

export const SESSION_STATES = ['thinking', 'tool_running', 'streaming', 'waiting_for_user', 'error'] as const;
export const SessionState = z.enum(SESSION_STATES);
export type SessionState = z.infer<typeof SessionState>;

export const GlobalState = z.enum(['idle', 'active', 'degraded']);
export type GlobalState = z.infer<typeof GlobalState>;

export const TokenUsage = z.object({ input: z.int().check(z.nonnegative()), output: z.int().check(z.nonnegative()) });
export type TokenUsage = z.infer<typeof TokenUsage>;

export const SessionStatus = z.object({
  session_key: z.string(),
  session_id: z.string(),
  channel: z.string(),
  title: z.nullable(z.string()),
  state: SessionState,
  tool_name: z.nullable(z.string()),
  duration_seconds: z.number().check(z.nonnegative()),
  token_usage: z.nullable(TokenUsage),
  error_message: z.nullable(z.string()),
});
export type SessionStatus = z.infer<typeof SessionStatus>;

export const GlobalStatus = z.object({
  state: GlobalState,
  active_sessions: z.int().check(z.nonnegative()),
  max_concurrent: z.int().check(z.positive()),
  uptime_seconds: z.int().check(z.nonnegative()),
});
export type GlobalStatus = z.infer<typeof GlobalStatus>;

export const AgentStatusResponse = z.strictObject({
  global: z.strictObject(GlobalStatus.shape),
  sessions: z.array(z.strictObject(SessionStatus.shape)),
});
export type AgentStatusResponse = z.infer<typeof AgentStatusResponse>;

/** Splits a session key at its first `:` exactly as PocketPaw does: `"telegram:1:2"` is channel `telegram`, id `1:2`. */
export function splitSessionKey(key: string): { channel: string; session_id: string } {
  const at = key.indexOf(':');
  // Like Python's str.partition: with no `:` the whole key is both the channel and the id.
  if (at < 0) return { channel: key, session_id: key };
  const channel = key.slice(0, at) || 'unknown';
  const rest = key.slice(at + 1);
  return { channel, session_id: rest || key };
}
