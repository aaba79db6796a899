/**
 * The change feed: every state change, once, in order, to whoever listens (the SSE hub, metrics).
 *
 * A Set of listeners rather than an EventEmitter: no listener cap warnings, and removal is O(1). Listeners only
 * enqueue; they must never do I/O inline, since ingest waits for them.
 */
import type { StatusState } from '../state/fold.ts';
import type { Transition } from '../state/transitions.ts';

export interface Change {
  readonly prev: StatusState;
  readonly next: StatusState;
  readonly transitions: readonly Transition[];
  /** Monotonic ms of the change. */
  readonly now: number;
}

export type ChangeListener = (change: Change) => void;

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  publish(change: Change): void {
    for (const listener of this.listeners) listener(change);
  }
}
