/**
 * SSE framing (WHATWG server-sent events). Every payload here is compact JSON, which never contains a raw newline, so
 * one `data:` line per event is exact; ids and event names are ASCII constants, so no field injection is possible.
 */
import type { Transition } from '../state/transitions.ts';

/**
 * The reconnection delay, as a field of the first real event of a stream, never a block of its own: clients such as
 * Python's httpx-sse yield an event-less `retry:` block as an empty event, whose `json.loads` then fails.
 */
export const RETRY_FIELD = 'retry: 2000\n';
export const KEEPALIVE_FRAME = ': keepalive\n\n';

export function statusFrame(id: string, json: string): string {
  return `id: ${id}\nevent: status\ndata: ${json}\n\n`;
}

export function transitionFrame(id: string, t: Transition, at: string): string {
  return `id: ${id}\nevent: transition\ndata: ${transitionJson(t, at)}\n\n`;
}

/** A transition's JSON, as the SSE `transition` event and the MQTT `transitions` topic carry it; `at` is ISO 8601. */
export function transitionJson(t: Transition, at: string): string {
  return JSON.stringify({
    ...(t.node_id === undefined ? null : { node_id: t.node_id }),
    session_key: t.session_key,
    from: t.from,
    to: t.to,
    tool_name: t.tool_name,
    error_message: t.error_message,
    at,
  });
}

export function resetFrame(reason: string, lastEventId: string): string {
  return `event: reset\ndata: ${JSON.stringify({ reason, last_event_id: lastEventId })}\n\n`;
}
