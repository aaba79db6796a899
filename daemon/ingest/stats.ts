/** Counters the ingest path keeps: plain numbers on the hot path; /metrics reads them when scraped. */
import { EVENT_TYPES, type EventType } from '../../protocol/events.ts';
import { IGNORE_REASONS, REJECT_REASONS, type IgnoreReason, type RejectReason } from './decode.ts';

export class IngestStats {
  readonly events = Object.fromEntries(EVENT_TYPES.map((t) => [t, 0])) as Record<EventType, number>;
  readonly rejected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  readonly ignored = Object.fromEntries(IGNORE_REASONS.map((r) => [r, 0])) as Record<IgnoreReason, number>;
  producersConnected = 0;
  producersRefused = 0;
  /** Error answers not written because the producer was not reading them. */
  repliesDropped = 0;

  countEvent(type: EventType): void {
    this.events[type]++;
  }

  get rejectedTotal(): number {
    return Object.values(this.rejected).reduce((a, b) => a + b, 0);
  }
}
