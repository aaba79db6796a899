/**
 * The MQTT payloads (docs/mqtt.md has the topics and when each is published), as schemas for whoever reads them:
 *   P/availability     MqttAvailability
 *   P/state            GlobalState (snapshot.ts)
 *   P/status           AgentStatusResponse (snapshot.ts), timing fields frozen at publish time
 *   P/sessions/<key>   SessionStatus (snapshot.ts), or an empty payload: the session ended
 *   P/summary          MqttSummary
 *   P/transitions      TransitionMessage (also the data of the SSE `transition` event)
 */
import * as z from 'zod/mini';
import { GlobalState, SessionState } from './snapshot.ts';
import './zod-messages.ts';

export * from './mqtt-topics.ts';

export const MqttAvailability = z.enum(['online', 'offline']);
export type MqttAvailability = z.infer<typeof MqttAvailability>;

const count = z.int().check(z.nonnegative());

/** What Home Assistant's sensors read: numbers only, so no state nears its 255-character limit. */
export const MqttSummary = z.strictObject({
  state: GlobalState,
  /** active or degraded. */
  busy: z.boolean(),
  active_sessions: count,
  waiting_for_user: count,
  /** tokens_input + tokens_output, over the sessions listed now. */
  tokens: count,
  tokens_input: count,
  tokens_output: count,
});
export type MqttSummary = z.infer<typeof MqttSummary>;

/** One transition: a session's state or tool changed, it started (`from` null) or ended (`to` null). */
export const TransitionMessage = z.strictObject({
  session_key: z.string(),
  from: z.nullable(SessionState),
  to: z.nullable(SessionState),
  tool_name: z.nullable(z.string()),
  error_message: z.nullable(z.string()),
  /** ISO 8601, UTC. */
  at: z.iso.datetime(),
});
export type TransitionMessage = z.infer<typeof TransitionMessage>;
