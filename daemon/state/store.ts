/**
 * The impure shell around the fold: holds the current state, reads the clock, turns error deadlines into one timer,
 * and publishes every change to the feed.
 */
import type { ChangeFeed } from '../feed/feed.ts';
import { foldAll, nextDeadline, type FoldInput, type FoldResult, type StatusState } from './fold.ts';

export type Clock = () => number;

export class StatusStore {
  private current: StatusState;
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiryAt = Infinity;

  constructor(
    initial: StatusState,
    private readonly feed: ChangeFeed,
    readonly clock: Clock,
  ) {
    this.current = initial;
    // A state restored from disk may hold errors whose TTL is still running.
    const deadline = nextDeadline(initial);
    if (deadline !== null) this.arm(deadline);
  }

  get state(): StatusState {
    return this.current;
  }

  /** Folds one input; returns whether the state changed. */
  apply(input: FoldInput): boolean {
    const prev = this.current;
    return this.applyAll([input]).state !== prev;
  }

  /** Folds a batch of inputs (one socket read) at once; publishes one change for all of it. */
  applyAll(inputs: readonly FoldInput[]): FoldResult {
    const prev = this.current;
    const now = this.clock();
    const result = foldAll(prev, inputs, now);
    if (result.state === prev) return result;
    this.current = result.state;
    // A deadline only ever moves later or goes away otherwise; expire() rescans when the timer finds nothing due.
    if (result.earliestNewDeadline !== null && result.earliestNewDeadline < this.expiryAt) this.arm(result.earliestNewDeadline);
    this.feed.publish({ prev, next: result.state, transitions: result.transitions, now });
    return result;
  }

  close(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.expiryAt = Infinity;
  }

  private arm(deadline: number): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryAt = deadline;
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(0, deadline - this.clock()));
    this.expiryTimer.unref();
  }

  private expire(): void {
    this.expiryTimer = null;
    this.expiryAt = Infinity;
    this.apply({ kind: 'expire' });
    if (this.expiryTimer) return;
    // Nothing was due (the timer fired a hair early, or that session left `error`): wait for the next deadline.
    const deadline = nextDeadline(this.current);
    if (deadline !== null) this.arm(deadline);
  }
}
