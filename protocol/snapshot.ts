/**
 * The snapshot served at GET /api/v1/agent/status and in every SSE `status` event: field for field PocketPaw's
 * documented AgentStatusResponse. Keys are listed in wire order; every key is always present, nulls are written.
 */
import { z } from 'zod';

export const SESSION_STATES = ['thinking', 'tool_running', 'streaming', 'waiting_for_user', 'error'] as const;
export const SessionState = z.enum(SESSION_STATES);
export type SessionState = z.infer<typeof SessionState>;

export const GlobalState = z.enum(['idle', 'active', 'degraded']);
export type GlobalState = z.infer<typeof GlobalState>;

export const TokenUsage = z.object({ input: z.number().int().nonnegative(), output: z.number().int().nonnegative() });
export type TokenUsage = z.infer<typeof TokenUsage>;

export const SessionStatus = z.object({
  session_key: z.string(),
  session_id: z.string(),
  channel: z.string(),
  title: z.string().nullable(),
  state: SessionState,
  tool_name: z.string().nullable(),
  duration_seconds: z.number().nonnegative(),
  token_usage: TokenUsage.nullable(),
  error_message: z.string().nullable(),
});
export type SessionStatus = z.infer<typeof SessionStatus>;

export const GlobalStatus = z.object({
  state: GlobalState,
  active_sessions: z.number().int().nonnegative(),
  max_concurrent: z.number().int().positive(),
  uptime_seconds: z.number().int().nonnegative(),
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
