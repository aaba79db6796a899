/** Counters the SSE hub keeps: plain numbers on the hot path; /metrics reads them when scraped. */
// write_timeout: a write made no progress for --sse-write-timeout; replay_overflow: more transitions waited than --sse-replay;
// bytes_overflow: Node held more than --sse-max-client-bytes for the client; hub_bytes_overflow: all clients together
// held more than --sse-max-total-bytes and this client held the most.
export const SSE_DROP_REASONS = ['write_timeout', 'replay_overflow', 'bytes_overflow', 'hub_bytes_overflow'] as const;
export type SseDropReason = (typeof SSE_DROP_REASONS)[number];

export class SseStats {
  clientsConnected = 0;
  /** Every accepted connection since start: its rate shows reconnect storms. */
  clientsTotal = 0;
  /** Refused by --max-sse-clients. */
  clientsRefused = 0;
  readonly eventsSent = { status: 0, transition: 0, reset: 0 };
  /** Bytes Node held for all clients at the last status flush or sweep (bounded by --sse-max-total-bytes). */
  queuedBytes = 0;
  /** Status renderings made (one per distinct filter per change, not one per client). */
  renderings = 0;
  /** Distinct renderings the last status flush made. */
  views = 0;
  readonly clientsDropped = Object.fromEntries(SSE_DROP_REASONS.map((r) => [r, 0])) as Record<SseDropReason, number>;
}
