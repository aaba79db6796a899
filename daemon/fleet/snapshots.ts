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
import { RenderCache } from '../state/snapshots.ts';
import type { FleetState } from './fold.ts';
import { fleetMatches, renderAgentView, renderFleet } from './render.ts';
import type { FleetStore } from './store.ts';

export type FleetView = 'fleet' | 'agent';

/** Most messages change a node's state without a transition (its status, its session topic): nothing to map. */
const NO_TRANSITIONS = { transitions: [] as const };

export class FleetSnapshots {
  private readonly cache: RenderCache<FleetState>;

  constructor(
    private readonly store: FleetStore,
    readonly view: FleetView,
    /** Monotonic ms at which the aggregator started: its own `uptime_seconds` counts from here. */
    readonly startedAt: number,
  ) {
    const draw = view === 'fleet' ? renderFleet : renderAgentView;
    this.cache = new RenderCache(() => store.state, () => store.clock(), (state, now, filter) => draw(state, { now, startedAt }, filter));
  }

  render(filter: SessionFilter = NO_FILTER): RenderedSnapshot {
    return this.cache.render(filter);
  }

  body(filter: SessionFilter = NO_FILTER): Buffer<ArrayBuffer> {
    return this.cache.body(filter);
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
        this.store.subscribe((change) =>
          listener(change.transitions.length === 0 ? NO_TRANSITIONS : { transitions: change.transitions.map((t) => this.transition(t, change.now)) }),
        ),
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
