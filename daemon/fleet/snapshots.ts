/**
 * The fleet's two snapshot sources for the SSE hub and the REST routes (daemon/sse/hub.ts SnapshotSource): the fleet
 * view and the PocketPaw-shaped agent view (render.ts). Each also turns the fleet's transitions into the hub's
 * (with `node_id`, and the time the node stamped), and filters them by `?node=`, `?session=`, `?channel=`.
 */
import { splitSessionKey } from '../../protocol/snapshot.ts';
import type { FleetTransition } from '../../protocol/fleet.ts';
import type { TransitionFeed } from '../sse/hub.ts';
import { NO_FILTER, type RenderedSnapshot, type SessionFilter } from '../state/snapshot.ts';
import type { Transition } from '../state/transitions.ts';
import type { FleetState } from './fold.ts';
import { fleetMatches, renderAgentView, renderFleet } from './render.ts';
import type { FleetStore } from './store.ts';

/** As state/snapshots.ts: the unfiltered rendering is reused for this long while the state is the same object. */
const RENDER_REUSE_MS = 10;

export type FleetView = 'fleet' | 'agent';

export class FleetSnapshots {
  private last: { state: FleetState; at: number; rendered: RenderedSnapshot; bytes: Buffer<ArrayBuffer> | null } | null = null;

  constructor(
    private readonly store: FleetStore,
    readonly view: FleetView,
    /** Monotonic ms at which the aggregator started: its own `uptime_seconds` counts from here. */
    readonly startedAt: number,
  ) {}

  render(filter: SessionFilter = NO_FILTER): RenderedSnapshot {
    const state = this.store.state;
    const now = this.store.clock();
    const time = { now, startedAt: this.startedAt };
    const draw = this.view === 'fleet' ? renderFleet : renderAgentView;
    if (filter !== NO_FILTER) return draw(state, time, filter);
    const last = this.last;
    if (last && last.state === state && now - last.at < RENDER_REUSE_MS) return last.rendered;
    const rendered = draw(state, time, NO_FILTER);
    this.last = { state, at: now, rendered, bytes: null };
    return rendered;
  }

  body(filter: SessionFilter = NO_FILTER): Buffer<ArrayBuffer> {
    const rendered = this.render(filter);
    if (filter !== NO_FILTER || this.last?.rendered !== rendered) return Buffer.from(rendered.json);
    return (this.last.bytes ??= Buffer.from(rendered.json));
  }

  transitionMatches(filter: SessionFilter, t: Transition): boolean {
    if (filter === NO_FILTER) return true;
    const node = t.node_id ?? '';
    const key = this.view === 'agent' ? t.session_key.slice(node.length + 1) : t.session_key;
    return fleetMatches(filter, node, key, splitSessionKey(key).channel);
  }

  /** The store's changes as the hub reads them: each transition in this view's form. */
  feed(): TransitionFeed {
    return {
      subscribe: (listener) =>
        this.store.subscribe((change) => listener({ transitions: change.transitions.map((t) => this.transition(t, change.now)) })),
    };
  }

  private transition(t: FleetTransition, now: number): Transition {
    return {
      node_id: t.node_id,
      session_key: this.view === 'agent' ? `${t.node_id}/${t.session_key}` : t.session_key,
      from: t.from,
      to: t.to,
      tool_name: t.tool_name,
      error_message: t.error_message,
      at: now,
      at_iso: t.at,
    };
  }
}
