/**
 * The MQTT topics and payloads (a contract: docs/mqtt.md), built without any I/O.
 *
 * Under the prefix P:
 *   P/availability          online | offline (retained; offline is also the connection's last will)
 *   P/state                 idle | active | degraded (retained)
 *   P/status                the snapshot JSON as GET /api/v1/agent/status renders it, timing fields frozen (retained)
 *   P/summary               the numbers Home Assistant's sensors show (retained)
 *   P/sessions/<key>        one session's object as in the snapshot (retained; an empty retained message clears it)
 *   P/transitions           each transition, as the SSE `transition` event's data (not retained)
 */
import type { GlobalState } from '../../protocol/snapshot.ts';
import type { StatusState } from '../state/fold.ts';
import { globalState } from '../state/snapshot.ts';

export const ONLINE = 'online';
export const OFFLINE = 'offline';

export interface Topics {
  readonly prefix: string;
  readonly availability: string;
  readonly state: string;
  readonly status: string;
  readonly summary: string;
  readonly transitions: string;
  /** The filter matching every session topic (for the sweep of sessions a previous run left behind). */
  readonly sessionsFilter: string;
}

export function topics(prefix: string): Topics {
  return {
    prefix,
    availability: `${prefix}/availability`,
    state: `${prefix}/state`,
    status: `${prefix}/status`,
    summary: `${prefix}/summary`,
    transitions: `${prefix}/transitions`,
    sessionsFilter: `${prefix}/sessions/+`,
  };
}

export function defaultPrefix(nodeId: string): string {
  return `pocketpaw-status/${nodeId}`;
}

/**
 * A session key in one topic level: encodeURIComponent escapes `/`, `+`, `#` (and `%` itself), so the key can neither
 * add a level nor become a wildcard, and decodeURIComponent gives the key back exactly.
 */
export function sessionTopic(t: Topics, key: string): string {
  return `${t.prefix}/sessions/${encodeURIComponent(key)}`;
}

/** The session key of a session topic, or null when the topic is not one (or does not decode). */
export function sessionKeyOf(t: Topics, topic: string): string | null {
  const head = `${t.prefix}/sessions/`;
  if (!topic.startsWith(head)) return null;
  const level = topic.slice(head.length);
  if (level === '' || level.includes('/')) return null;
  try {
    return decodeURIComponent(level);
  } catch {
    return null;
  }
}

export interface Summary {
  readonly state: GlobalState;
  /** active or degraded: Home Assistant's "Agent busy". */
  readonly busy: boolean;
  readonly active_sessions: number;
  readonly waiting_for_user: number;
  /** input + output tokens of the sessions listed now ("Tokens this run"). */
  readonly tokens: number;
  readonly tokens_input: number;
  readonly tokens_output: number;
}

export function summaryOf(state: StatusState): Summary {
  let waiting = 0;
  let input = 0;
  let output = 0;
  for (const s of state.sessions.values()) {
    if (s.state === 'waiting_for_user') waiting++;
    if (s.tokens) {
      input += s.tokens.input;
      output += s.tokens.output;
    }
  }
  const global = globalState(state);
  return {
    state: global,
    busy: global !== 'idle',
    active_sessions: state.sessions.size,
    waiting_for_user: waiting,
    tokens: input + output,
    tokens_input: input,
    tokens_output: output,
  };
}

export interface DiscoveryMessage {
  readonly topic: string;
  readonly payload: string;
}

/** The ids Home Assistant keys its registry by: derived from the node id alone, so stable across restarts. */
export function haIds(nodeId: string): { device: string; entity: (object: string) => string } {
  const device = `pocketpaw_status_${nodeId}`;
  return { device, entity: (object) => `${device}_${object}` };
}

/**
 * Home Assistant MQTT discovery: one device per node, five entities, each with the node's availability topic.
 * Topic: `<discovery prefix>/<component>/<device id>/<object id>/config`, retained (Home Assistant reads it again
 * when it restarts).
 */
export function discoveryMessages(discoveryPrefix: string, nodeId: string, t: Topics): DiscoveryMessage[] {
  const ids = haIds(nodeId);
  const common = {
    availability_topic: t.availability,
    payload_available: ONLINE,
    payload_not_available: OFFLINE,
    qos: 1,
    device: {
      identifiers: [ids.device],
      name: `PocketPaw agents (${nodeId})`,
      manufacturer: 'PocketPaw',
      model: 'pocketpaw-status',
    },
    origin: { name: 'pocketpaw-status' },
  };
  const entities: [component: 'sensor' | 'binary_sensor', object: string, config: Record<string, unknown>][] = [
    [
      'sensor',
      'agent_state',
      { name: 'Agent state', state_topic: t.state, device_class: 'enum', options: ['idle', 'active', 'degraded'], icon: 'mdi:robot' },
    ],
    [
      'binary_sensor',
      'agent_busy',
      {
        name: 'Agent busy',
        state_topic: t.summary,
        value_template: "{{ 'ON' if value_json.busy else 'OFF' }}",
        payload_on: 'ON',
        payload_off: 'OFF',
        device_class: 'running',
        icon: 'mdi:robot-excited',
      },
    ],
    [
      'sensor',
      'active_sessions',
      { name: 'Active sessions', state_topic: t.summary, value_template: '{{ value_json.active_sessions }}', state_class: 'measurement', unit_of_measurement: 'sessions', icon: 'mdi:account-multiple' },
    ],
    [
      'sensor',
      'waiting_for_user',
      { name: 'Sessions waiting for you', state_topic: t.summary, value_template: '{{ value_json.waiting_for_user }}', state_class: 'measurement', unit_of_measurement: 'sessions', icon: 'mdi:account-clock' },
    ],
    [
      'sensor',
      'tokens',
      { name: 'Tokens this run', state_topic: t.summary, value_template: '{{ value_json.tokens }}', state_class: 'measurement', unit_of_measurement: 'tokens', icon: 'mdi:counter' },
    ],
  ];
  return entities.map(([component, object, config]) => ({
    topic: `${discoveryPrefix}/${component}/${ids.device}/${object}/config`,
    payload: JSON.stringify({ ...config, unique_id: ids.entity(object), ...common }),
  }));
}
