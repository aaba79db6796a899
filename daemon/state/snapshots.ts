/** Snapshots of the store's current state, rendered on demand at the clock's current time. */
import { NO_FILTER, renderSnapshot, type RenderedSnapshot, type SessionFilter } from './snapshot.ts';
import type { StatusStore } from './store.ts';

export class Snapshots {
  constructor(
    private readonly store: StatusStore,
    /** Monotonic ms at which the daemon started: `uptime_seconds` counts from here. */
    readonly startedAt: number,
  ) {}

  render(filter: SessionFilter = NO_FILTER): RenderedSnapshot {
    return renderSnapshot(this.store.state, this.store.clock(), this.startedAt, filter);
  }
}
