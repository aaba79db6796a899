/**
 * The impure shell around the fold: holds the current state, reads the clock, turns error deadlines into one timer,
 * and publishes every change to the feed.
 */
import type { ChangeFeed } from '../feed/feed.ts';
import { fold, nextDeadline, type FoldInput, type StatusState } from './fold.ts';
import { transitionsBetween } from './transitions.ts';

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
  }

  get state(): StatusState {
    return this.current;
  }

  /** Folds one input; returns whether the state changed. */
  apply(input: FoldInput): boolean {
    const prev = this.current;
    const now = this.clock();
    const next = fold(prev, input, now);
    if (next === prev) return false;
    this.current = next;
    this.scheduleExpiry(input, next);
    this.feed.publish({ prev, next, transitions: transitionsBetween(prev, next, input, now), now });
    return true;
  }

  close(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    this.expiryAt = Infinity;
  }

  private scheduleExpiry(input: FoldInput, next: StatusState): void {
    // Only a change to the session the event names can add an earlier deadline; other inputs rescan.
    let deadline: number | null;
    if (input.kind === 'event' && input.event.session_key) {
      deadline = next.sessions.get(input.event.session_key)?.errorDeadline ?? null;
      if (deadline === null || deadline >= this.expiryAt) return;
    } else {
      deadline = nextDeadline(next);
      if (deadline === null) return this.close();
    }
    this.arm(deadline);
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
