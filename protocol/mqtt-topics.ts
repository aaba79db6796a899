/**
 * The MQTT topic names (docs/mqtt.md), for the daemon that publishes them and for whoever reads them. Plain
 * TypeScript, no zod: the daemon's MQTT output is bundled on its own (dist/mqtt.js) and carries only what it needs.
 */

/** Each topic under the prefix P: `P/availability`, `P/state`, ... (`P/sessions/<key>` is built by sessionTopic). */
export const MQTT_TOPICS = {
  availability: 'availability',
  state: 'state',
  status: 'status',
  summary: 'summary',
  transitions: 'transitions',
  sessions: 'sessions',
} as const;

export const MQTT_ONLINE = 'online';
export const MQTT_OFFLINE = 'offline';

/** `--mqtt-topic-prefix`'s default. */
export function defaultTopicPrefix(nodeId: string): string {
  return `pocketpaw-status/${nodeId}`;
}

/**
 * A session's topic: its key in one topic level. encodeURIComponent escapes `/`, `+`, `#` (and `%` itself), so a key
 * can neither add a level nor become a wildcard, and decodeURIComponent gives it back exactly.
 */
export function sessionTopic(prefix: string, sessionKey: string): string {
  return `${prefix}/${MQTT_TOPICS.sessions}/${encodeURIComponent(sessionKey)}`;
}

/** The session key a session topic names, or null when the topic is not one under `prefix` (or does not decode). */
export function sessionKeyFromTopic(prefix: string, topic: string): string | null {
  const head = `${prefix}/${MQTT_TOPICS.sessions}/`;
  if (!topic.startsWith(head)) return null;
  const level = topic.slice(head.length);
  if (level === '' || level.includes('/')) return null;
  try {
    return decodeURIComponent(level);
  } catch {
    return null;
  }
}
