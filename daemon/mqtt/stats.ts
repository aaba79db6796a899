/**
 * The MQTT output's counters: plain numbers on the publish path, read by /metrics at scrape time and by /readyz.
 * Plain Node only (no MQTT library), so that metrics.ts and health.ts can name the type without loading it.
 */

/** What a publish was for: the `topic` label of pocketpaw_status_mqtt_publishes_total. */
export const MQTT_TOPIC_KINDS = ['availability', 'discovery', 'state', 'status', 'summary', 'session', 'transition'] as const;
export type MqttTopicKind = (typeof MQTT_TOPIC_KINDS)[number];

/** Why a transition was not published: the broker was away, or it had not acknowledged too many messages yet. */
export const MQTT_DROP_REASONS = ['disconnected', 'backlog'] as const;
export type MqttDropReason = (typeof MQTT_DROP_REASONS)[number];

export class MqttStats {
  connected = false;
  /** Publishes the broker acknowledged (QoS 1), by topic kind. */
  readonly publishes: Record<MqttTopicKind, number> = { availability: 0, discovery: 0, state: 0, status: 0, summary: 0, session: 0, transition: 0 };
  /** Publishes the client reported as failed (the connection went before the broker acknowledged them). */
  publishFailures = 0;
  /** Connections established after the first one. */
  reconnects = 0;
  /** Transitions not published, by reason (the retained topics are republished instead, so only these are lost). */
  readonly transitionsDropped: Record<MqttDropReason, number> = { disconnected: 0, backlog: 0 };
}
