/**
 * Snapshots of the store's current state, rendered on demand at the clock's current time.
 *
 * The unfiltered snapshot is what pollers ask for, often many times a second; rendering 100 sessions costs about
 * 100 µs, more than the rest of a request. So it is kept for a few milliseconds while the state is the same object:
 * any change renders anew at once, and only the timing fields (shown to 0.1 s) can be up to RENDER_REUSE_MS old.
 */
import { NO_FILTER, renderSnapshot, type RenderedSnapshot, type SessionFilter } from './snapshot.ts';
import type { StatusState } from './fold.ts';
import type { StatusStore } from './store.ts';

export const RENDER_REUSE_MS = 10;

/**
 * The reuse above, for any immutable state and renderer (the daemon's snapshot, the fleet's two views): the
 * unfiltered rendering kept while the state is the same object, and its bytes encoded once per rendering.
 */
export class RenderCache<S> {
  private last: { state: S; at: number; rendered: RenderedSnapshot; bytes: Buffer<ArrayBuffer> | null } | null = null;

  constructor(
    private readonly current: () => S,
    private readonly clock: () => number,
    private readonly draw: (state: S, now: number, filter: SessionFilter) => RenderedSnapshot,
  ) {}

  render(filter: SessionFilter = NO_FILTER): RenderedSnapshot {
    const state = this.current();
    const now = this.clock();
    if (filter !== NO_FILTER) return this.draw(state, now, filter);
    const last = this.last;
    if (last && last.state === state && now - last.at < RENDER_REUSE_MS) return last.rendered;
    const rendered = this.draw(state, now, NO_FILTER);
    this.last = { state, at: now, rendered, bytes: null };
    return rendered;
  }

  /** The snapshot as a response body: encoded once per rendering, not once per request (the copy is most of a write). */
  body(filter: SessionFilter = NO_FILTER): Buffer<ArrayBuffer> {
    const rendered = this.render(filter);
    if (filter !== NO_FILTER || this.last?.rendered !== rendered) return Buffer.from(rendered.json);
    return (this.last.bytes ??= Buffer.from(rendered.json));
  }
}

export class Snapshots {
  private readonly cache: RenderCache<StatusState>;

  constructor(
    private readonly store: StatusStore,
    /** Monotonic ms at which the daemon started: `uptime_seconds` counts from here. */
    readonly startedAt: number,
  ) {
    this.cache = new RenderCache(() => store.state, store.clock, (state, now, filter) => renderSnapshot(state, now, startedAt, filter));
  }

  /** The state now (immutable: a change replaces the object). */
  get state(): StatusState {
    return this.store.state;
  }

  render(filter: SessionFilter = NO_FILTER): RenderedSnapshot {
    return this.cache.render(filter);
  }

  body(filter: SessionFilter = NO_FILTER): Buffer<ArrayBuffer> {
    return this.cache.body(filter);
  }
}
