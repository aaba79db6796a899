/**
 * One line of bytes -> one protocol event, or the reason it was rejected or ignored.
 *
 * Rejected lines are malformed (the producer is told, on the same connection); ignored lines are well-formed but not
 * for us (no session key, an unknown type): counted, never answered, for forward compatibility as upstream.
 */
import { isUtf8 } from 'node:buffer';
import * as z from 'zod/mini';
import { compileFn, withParser } from 'zod/v4/core';
import { EVENT_SCHEMAS, EVENT_TYPES, PROTOCOL_VERSION, type EventType, type StatusEvent } from '../../protocol/events.ts';

export const REJECT_REASONS = ['too_long', 'invalid_utf8', 'invalid_json', 'not_object', 'bad_version', 'invalid_event'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export const IGNORE_REASONS = ['unknown_type', 'no_session_key', 'unknown_session'] as const;
export type IgnoreReason = (typeof IGNORE_REASONS)[number];

export type Decoded =
  | { readonly kind: 'event'; readonly event: StatusEvent }
  | { readonly kind: 'ignored'; readonly reason: IgnoreReason }
  | { readonly kind: 'rejected'; readonly reason: RejectReason; readonly message: string };

/**
 * Each event type's schema with zod's ahead-of-time compiled fast path. zod's interpreter allocates a payload object
 * and an issues array for every field of every event, a third of what JSON.parse costs. A valid event takes the
 * generated code; an invalid one falls back to the interpreter, so messages are unchanged. Where code generation is
 * disallowed, zod hands each schema back as it was. One lookup by type answers "is this type known?" and picks the
 * schema, instead of a Set lookup then the union's chain of comparisons on `type` (~30 ns an event).
 */
const COMPILED_BY_TYPE: ReadonlyMap<string, z.ZodMiniType<StatusEvent>> = new Map(
  EVENT_TYPES.map((type): [string, z.ZodMiniType<StatusEvent>] => [type, compiled(EVENT_SCHEMAS[type])]),
);

/**
 * What `z.compile()` does, minus the second, assert-only function it generates for `z.validate()`, which nothing here
 * calls: generating and compiling that code at start left the idle daemon about 3 MB larger (docs/performance.md).
 * `compileFn` is the generator zod's own `compile()` uses; a schema it cannot model (or no code generation allowed)
 * keeps the interpreter, as `compile()` would.
 */
function compiled<T extends z.ZodMiniType<StatusEvent>>(schema: T): T {
  try {
    return withParser(schema, compileFn(schema)) as T;
  } catch {
    return schema;
  }
}

/** A line as bytes, or as a string already decoded; `utf8`: the caller already knows the bytes are valid UTF-8. */
export function decodeLine(line: Buffer | string, utf8 = false): Decoded {
  if (typeof line !== 'string' && !utf8 && !isUtf8(line)) return reject('invalid_utf8', 'invalid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(typeof line === 'string' ? line : line.toString('utf8'));
  } catch {
    return reject('invalid_json', 'invalid JSON');
  }
  return decodeObject(value);
}

export function decodeObject(value: unknown): Decoded {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject('not_object', `expected a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return decodeFields(value as Record<string, unknown>);
}

function decodeFields(value: Record<string, unknown>): Decoded {
  const type = value.type;
  if (typeof type !== 'string' || type === '') return reject('invalid_event', 'field "type" must be a non-empty string');
  const schema = COMPILED_BY_TYPE.get(type);
  // A known type's schema checks `v` itself: the version is looked at separately only on the way to a refusal.
  if (schema === undefined) return badVersion(value) ?? { kind: 'ignored', reason: 'unknown_type' };
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue && issue.path.length > 0 ? `field "${issue.path.join('.')}": ` : '';
    return badVersion(value) ?? reject('invalid_event', `${type as EventType}: ${field}${issue?.message ?? 'invalid event'}`);
  }
  const event = parsed.data;
  if (event.type !== 'hello' && !event.session_key) return { kind: 'ignored', reason: 'no_session_key' };
  return { kind: 'event', event };
}

/** A `v` other than 1 outranks every other problem: the producer speaks another protocol. */
function badVersion(value: Record<string, unknown>): Decoded | null {
  if (value.v === undefined || value.v === PROTOCOL_VERSION) return null;
  return reject('bad_version', `unsupported protocol version ${JSON.stringify(value.v)} (this daemon speaks v ${PROTOCOL_VERSION})`);
}

function reject(reason: RejectReason, message: string): Decoded {
  return { kind: 'rejected', reason, message };
}
