/** Counters the ingest path keeps: plain numbers on the hot path; /metrics reads them when scraped. */
import { EVENT_TYPES, type EventType } from '../../protocol/events.ts';
import { IGNORE_REASONS, REJECT_REASONS, type IgnoreReason, type RejectReason } from './decode.ts';

/** Why the daemon closed a producer connection (issue 13): see socket.ts sweep() and accept(). */
export const CLOSE_REASONS = ['line_timeout', 'idle', 'evicted'] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export class IngestStats {
  /**
   * By type, in a Map to one mutable counter each: the type of a parsed line is a fresh string, and indexing an object
   * with one costs V8 a string-table lookup per event (~20 ns), where the Map reuses the hash decode.ts computed.
   */
  private readonly eventCounters = new Map<EventType, { count: number }>(EVENT_TYPES.map((t) => [t, { count: 0 }]));
  readonly rejected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  readonly ignored = Object.fromEntries(IGNORE_REASONS.map((r) => [r, 0])) as Record<IgnoreReason, number>;
  producersConnected = 0;
  producersRefused = 0;
  /** Error answers not written because the producer was not reading them. */
  repliesDropped = 0;
  /** Producer connections the daemon closed, by reason. */
  readonly producersClosed = Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>;
  /** agent_start events for a new session refused because --max-sessions sessions were live. */
  sessionsRefused = 0;

  countEvent(type: EventType): void {
    this.eventCounters.get(type)!.count++;
  }

  /** Events of this type accepted and applied so far. */
  events(type: EventType): number {
    return this.eventCounters.get(type)?.count ?? 0;
  }

  get rejectedTotal(): number {
    return Object.values(this.rejected).reduce((a, b) => a + b, 0);
  }
}
