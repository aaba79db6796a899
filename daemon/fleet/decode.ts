/**
 * One MQTT message (topic and payload) -> a fleet fold input, or the reason it was dropped.
 *
 * Everything the broker delivers is untrusted: every client allowed to publish under the base can send anything. A
 * payload is size-checked before it is decoded, decoded as UTF-8 before it is parsed, and parsed into the schemas of
 * protocol/fleet.ts (compiled ahead of time, as ingest does) before the fold sees it.
 */
import { isUtf8 } from 'node:buffer';
import * as z from 'zod/mini';
import {
  MAX_SMALL_BYTES,
  MAX_STATUS_BYTES,
  NODE_ID_PATTERN,
  NodeSession,
  NodeStatus,
  NodeTransition,
} from '../../protocol/fleet.ts';
import type { FleetInput } from './fold.ts';

/**
 * foreign_topic: under the base but not one of a node's topics; bad_node_id: the node level is not a node id;
 * oversized: larger than the topic allows; invalid_utf8 / invalid_json / invalid_payload: not what a daemon publishes;
 * key_mismatch: a session's payload names another key than its topic.
 */
export const DROP_REASONS = ['foreign_topic', 'bad_node_id', 'oversized', 'invalid_utf8', 'invalid_json', 'invalid_payload', 'key_mismatch', 'too_many_nodes'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export type Decoded = { readonly ok: true; readonly input: FleetInput } | { readonly ok: false; readonly reason: DropReason; readonly node: string | null };

const SLASH = 0x2f;
const STATUS = z.compile(NodeStatus);
const SESSION = z.compile(NodeSession);
const TRANSITION = z.compile(NodeTransition);

/**
 * QoS of the fleet's subscription. The aggregator's session is clean (nothing survives a reconnection: the retained
 * messages are read again instead), so QoS 1 would add an acknowledgement per message and no guarantee beyond TCP's;
 * and brokers cap the QoS 1 messages queued per client (mosquitto's max_queued_messages, 1000 by default), which a
 * catch-up of thousands of retained messages would exceed.
 */
export const SUBSCRIPTION_QOS = 0;

/** The topic filters a fleet subscribes to under `base`, the one with retained state first. */
export function fleetSubscriptions(base: string): string[] {
  return [`${base}/+/availability`, `${base}/+/status`, `${base}/+/sessions/+`, `${base}/+/transitions`];
}

export function decodeMessage(base: string, topic: string, payload: Buffer): Decoded {
  // `<base>/<node>/<kind>[/<session>]`; the base itself may hold `/`.
  if (!topic.startsWith(base) || topic.charCodeAt(base.length) !== SLASH) return drop('foreign_topic', null);
  const levels = topic.slice(base.length + 1).split('/');
  const node = levels[0]!;
  const kind = levels[1];
  if (!NODE_ID_PATTERN.test(node)) return drop('bad_node_id', null);
  const empty = payload.length === 0;
  if (kind === 'availability' && levels.length === 2) {
    if (empty) return ok({ kind: 'availability', node, value: null });
    if (payload.length > 16) return drop('oversized', node);
    const value = payload.toString('latin1');
    return value === 'online' || value === 'offline' ? ok({ kind: 'availability', node, value }) : drop('invalid_payload', node);
  }
  if (kind === 'status' && levels.length === 2) {
    if (empty) return ok({ kind: 'status', node, status: null });
    const parsed = parse(payload, MAX_STATUS_BYTES, STATUS);
    return parsed.ok ? ok({ kind: 'status', node, status: parsed.value }) : drop(parsed.reason, node);
  }
  if (kind === 'sessions' && levels.length === 3) {
    let key: string;
    try {
      key = decodeURIComponent(levels[2]!);
    } catch {
      return drop('foreign_topic', node);
    }
    if (empty) return ok({ kind: 'session', node, key, session: null });
    const parsed = parse(payload, MAX_SMALL_BYTES, SESSION);
    if (!parsed.ok) return drop(parsed.reason, node);
    if (parsed.value.session_key !== key) return drop('key_mismatch', node);
    return ok({ kind: 'session', node, key, session: parsed.value });
  }
  if (kind === 'transitions' && levels.length === 2) {
    const parsed = parse(payload, MAX_SMALL_BYTES, TRANSITION);
    return parsed.ok ? ok({ kind: 'transition', node, transition: parsed.value }) : drop(parsed.reason, node);
  }
  return drop('foreign_topic', node);
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: DropReason };

function parse<T>(payload: Buffer, max: number, schema: z.ZodMiniType<T>): Parsed<T> {
  if (payload.length > max) return { ok: false, reason: 'oversized' };
  if (!isUtf8(payload)) return { ok: false, reason: 'invalid_utf8' };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid_json' };
  }
  const result = schema.safeParse(value);
  return result.success ? { ok: true, value: result.data } : { ok: false, reason: 'invalid_payload' };
}

function ok(input: FleetInput): Decoded {
  return { ok: true, input };
}

function drop(reason: DropReason, node: string | null): Decoded {
  return { ok: false, reason, node };
}
