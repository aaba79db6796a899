/**
 * The fleet: what a daemon publishes to an MQTT broker (`serve --mqtt-url`), as the aggregator (`fleet`) reads it,
 * and what the aggregator serves at GET /api/v1/fleet/status.
 *
 * Every node publishes under `<base>/<node_id>/` (base default `pocketpaw-status`):
 *   availability             `online` / `offline`, retained (`offline` is the connection's last will)
 *   state                    `idle` / `active` / `degraded`, retained (the aggregator derives it; not read)
 *   status                   the snapshot JSON as GET /api/v1/agent/status renders it, timers frozen at publish time
 *   sessions/<encoded key>   one session's object as in `sessions[]`, frozen; an empty retained payload ends it
 *   transitions              one transition as JSON, as the SSE `transition` event carries it; not retained
 *
 * Anything else on the broker (a foreign publisher, another version) must cost the aggregator nothing but a counter:
 * each payload is checked against these schemas before it reaches the fleet fold, and refused whole.
 */
import * as z from 'zod/mini';
import { AgentStatusResponse, GlobalStatus, SessionStatus } from './snapshot.ts';
import './zod-messages.ts';
import { MqttAvailability, TransitionMessage } from './mqtt.ts';

export const DEFAULT_TOPIC_BASE = 'pocketpaw-status';

/**
 * A node id is one topic level. The daemon's default is its hostname reduced to `[a-z0-9_-]`; upper case and dots
 * are accepted too (a hand-set `--mqtt-node-id`), but never MQTT's wildcards or separators, nor the `/` that the
 * fleet's own session keys (`<node_id>/<session_key>`) use to join the two.
 */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** The largest payload read per topic: a status of several thousand sessions fits; anything larger is not ours. */
export const MAX_STATUS_BYTES = 1024 * 1024;
/** Availability, one session, one transition: each is well under 64 KiB even with a long title and error message. */
export const MAX_SMALL_BYTES = 64 * 1024;

/** What a node publishes is the MQTT output's contract (mqtt.ts); the fleet reads it under its own names. */
export const Availability = MqttAvailability;
export type Availability = MqttAvailability;

/** The node's status topic: exactly the REST body (unknown keys refused: another version's payload is not guessed at). */
export const NodeStatus = AgentStatusResponse;
export type NodeStatus = z.infer<typeof NodeStatus>;

export const NodeSession = z.strictObject(SessionStatus.shape);
export type NodeSession = z.infer<typeof NodeSession>;

/** The node's transitions topic: the SSE `transition` event's data. */
export const NodeTransition = TransitionMessage;
export type NodeTransition = TransitionMessage;

/** One node in GET /api/v1/fleet/status: its own snapshot (field for field as its daemon serves it), and its availability. */
export const FleetNode = z.strictObject({
  node_id: z.string(),
  /** The node's availability topic says `online`. */
  online: z.boolean(),
  /** When the aggregator last heard from the node (ISO 8601). */
  last_seen: z.iso.datetime(),
  /** Null until the node's status topic has been read (a node known only by its availability). */
  global: z.nullable(z.strictObject(GlobalStatus.shape)),
  sessions: z.array(NodeSession),
});
export type FleetNode = z.infer<typeof FleetNode>;

/** GET /api/v1/fleet/status and every `status` event of its stream. */
export const FleetStatusResponse = z.strictObject({
  global: z.strictObject(GlobalStatus.shape),
  nodes: z.array(FleetNode),
});
export type FleetStatusResponse = z.infer<typeof FleetStatusResponse>;

/** A transition on the fleet stream: the node's own transition, with the node it happened on. */
export const FleetTransition = z.strictObject({ node_id: z.string(), ...NodeTransition.shape });
export type FleetTransition = z.infer<typeof FleetTransition>;

/** The error message a session of an offline node shows: its last known state is no longer a fact. */
export const NODE_OFFLINE = 'node offline';

/** Topic of one of a node's sessions: the key, percent-encoded (`encodeURIComponent`) into one topic level. */
export function sessionTopicLevel(sessionKey: string): string {
  return encodeURIComponent(sessionKey);
}
