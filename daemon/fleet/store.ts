/**
 * The impure shell around the fleet fold: holds the current state, reads both clocks once per batch, and publishes
 * every change to its listeners (the two SSE hubs through their snapshot sources, and the stats).
 */
import type { FleetTransition } from '../../protocol/fleet.ts';
import { foldFleet, type FleetFoldResult, type FleetInput, type FleetState } from './fold.ts';

export interface FleetChange {
  readonly prev: FleetState;
  readonly next: FleetState;
  readonly transitions: readonly FleetTransition[];
  /** Monotonic ms of the change. */
  readonly now: number;
}

export class FleetStore {
  private current: FleetState;
  private readonly listeners = new Set<(change: FleetChange) => void>();

  constructor(
    initial: FleetState,
    readonly clock: () => number,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.current = initial;
  }

  get state(): FleetState {
    return this.current;
  }

  subscribe(listener: (change: FleetChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Folds one message (mqtt-input.ts) and publishes the change, if any. */
  apply(input: FleetInput): FleetFoldResult {
    return this.applyAll([input]);
  }

  /** Folds a batch and publishes one change for all of it. */
  applyAll(inputs: readonly FleetInput[]): FleetFoldResult {
    const prev = this.current;
    const now = this.clock();
    const result = foldFleet(prev, inputs, { mono: now, wall: this.wallClock() });
    if (result.state === prev && result.transitions.length === 0) return result;
    this.current = result.state;
    const change: FleetChange = { prev, next: result.state, transitions: result.transitions, now };
    for (const listener of this.listeners) listener(change);
    return result;
  }
}
