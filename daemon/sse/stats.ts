/** Counters the SSE hub keeps: plain numbers on the hot path; /metrics reads them when scraped. */
// write_timeout: a write made no progress for --sse-write-timeout; replay_overflow: more transitions waited than --sse-replay.
export const SSE_DROP_REASONS = ['write_timeout', 'replay_overflow'] as const;
export type SseDropReason = (typeof SSE_DROP_REASONS)[number];

export class SseStats {
  clientsConnected = 0;
  /** Every accepted connection since start: its rate shows reconnect storms. */
  clientsTotal = 0;
  /** Refused by --max-sse-clients. */
  clientsRefused = 0;
  readonly eventsSent = { status: 0, transition: 0, reset: 0 };
  readonly clientsDropped = Object.fromEntries(SSE_DROP_REASONS.map((r) => [r, 0])) as Record<SseDropReason, number>;
}
