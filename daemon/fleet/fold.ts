/**
 * The fleet fold: a pure function `(state, inputs, time) -> state` over what the nodes published, like the daemon's
 * own fold (daemon/state/fold.ts): no I/O, no timers, no clock; `next === prev` means nothing changed.
 *
 * Inputs are payloads already checked against protocol/fleet.ts (daemon/fleet/decode.ts). A node's retained topics
 * are the source of truth: its `status` says which sessions it has (the membership), a `sessions/<key>` message
 * refreshes or ends one of those, `availability` says whether the node is there at all. A node that went `offline`
 * keeps its sessions, shown as `error` / "node offline" (never silently dropped), until it is back and its retained
 * status replaces them.
 *
 * Timers: a node publishes `uptime_seconds` and `duration_seconds` frozen at publish time. Each is stored with the
 * monotonic time it arrived, and rendering ages it by the time since (render.ts), so each node's part reads as its
 * own daemon would serve it now.
 */
import { NodeMap } from './node-map.ts';
import { NODE_OFFLINE, type Availability, type FleetTransition, type NodeSession, type NodeStatus, type NodeTransition } from '../../protocol/fleet.ts';

export interface FleetSession {
  readonly session: NodeSession;
  /** Monotonic ms when `session` arrived: its `duration_seconds` ages from here. */
  readonly receivedAt: number;
}

export interface NodeGlobal {
  readonly maxConcurrent: number;
  readonly uptimeSeconds: number;
  /** Monotonic ms when the status arrived: `uptime_seconds` ages from here. */
  readonly receivedAt: number;
}

export interface FleetNodeState {
  readonly id: string;
  /** The retained availability; null before it is read, or once it was cleared. */
  readonly availability: Availability | null;
  /** Monotonic ms the node went `offline`; null while it is not. Its timers stop here. */
  readonly offlineSince: number | null;
  /** Wall-clock ms of the node's last valid message. */
  readonly lastSeen: number;
  /** From the node's status; null before one is read, or once it was cleared. */
  readonly global: NodeGlobal | null;
  /** In the node's own order (its status's `sessions[]`). */
  readonly sessions: ReadonlyMap<string, FleetSession>;
}

export interface FleetState {
  /** By node id; rendered sorted by id. */
  readonly nodes: NodeMap<FleetNodeState>;
  /** New nodes past this many are refused (a foreign publisher inventing node ids must not grow memory without bound). */
  readonly maxNodes: number;
}

export type FleetInput =
  | { readonly kind: 'availability'; readonly node: string; readonly value: Availability | null }
  | { readonly kind: 'status'; readonly node: string; readonly status: NodeStatus | null }
  | { readonly kind: 'session'; readonly node: string; readonly key: string; readonly session: NodeSession | null }
  | { readonly kind: 'transition'; readonly node: string; readonly transition: NodeTransition };

/** Monotonic ms (what ages timers) and wall-clock ms (what `last_seen` and transition times say), read once by the caller. */
export interface FleetTime {
  readonly mono: number;
  readonly wall: number;
}

export interface FleetFoldResult {
  readonly state: FleetState;
  /** The nodes' own transitions, and one per live session of a node that went offline, in order. */
  readonly transitions: readonly FleetTransition[];
  /** Inputs refused because they would add a node past `maxNodes`. */
  readonly refused: number;
}

export function initialFleetState(maxNodes: number): FleetState {
  return { nodes: NodeMap.empty(), maxNodes };
}

const EMPTY_SESSIONS: ReadonlyMap<string, FleetSession> = new Map();

export function foldFleet(state: FleetState, inputs: readonly FleetInput[], time: FleetTime): FleetFoldResult {
  let nodes = state.nodes;
  const transitions: FleetTransition[] = [];
  let refused = 0;
  for (const input of inputs) {
    const current = nodes.get(input.node);
    if (!current) {
      // Only availability and status make a node known; a stray session message or transition does not.
      if (input.kind === 'transition') out(transitions, input.node, input.transition);
      if (input.kind === 'transition' || input.kind === 'session') continue;
      if (nodes.size >= state.maxNodes) {
        refused++;
        continue;
      }
    }
    const prev: FleetNodeState = current ?? {
      id: input.node,
      availability: null,
      offlineSince: null,
      lastSeen: time.wall,
      global: null,
      sessions: EMPTY_SESSIONS,
    };
    const next = foldNode(prev, input, time, transitions);
    if (next === current || (next === null && !current)) continue;
    // A node with nothing retained left (its operator cleared its topics) is gone from the fleet.
    nodes = next === null ? nodes.delete(input.node) : nodes.set(input.node, next);
  }
  if (nodes === state.nodes) return { state, transitions, refused };
  return { state: { ...state, nodes }, transitions, refused };
}

/** The next state of one node; null when it no longer has anything retained. */
function foldNode(node: FleetNodeState, input: FleetInput, time: FleetTime, outList: FleetTransition[]): FleetNodeState | null {
  switch (input.kind) {
    case 'availability': {
      const value = input.value;
      if (value === null && node.global === null) return null;
      const offlineSince = value === 'offline' ? (node.availability === 'offline' ? node.offlineSince : time.mono) : null;
      if (value === 'offline' && node.availability !== 'offline') {
        const at = new Date(time.wall).toISOString();
        for (const [key, s] of node.sessions) {
          if (s.session.state === 'error' && s.session.error_message === NODE_OFFLINE) continue;
          outList.push({ node_id: node.id, session_key: key, from: s.session.state, to: 'error', tool_name: null, error_message: NODE_OFFLINE, at });
        }
      }
      return { ...node, availability: value, offlineSince, lastSeen: time.wall };
    }
    case 'status': {
      const status = input.status;
      if (status === null) {
        if (node.availability === null) return null;
        return { ...node, global: null, sessions: EMPTY_SESSIONS, lastSeen: time.wall };
      }
      const sessions = new Map<string, FleetSession>();
      for (const session of status.sessions) sessions.set(session.session_key, { session, receivedAt: time.mono });
      const global: NodeGlobal = { maxConcurrent: status.global.max_concurrent, uptimeSeconds: status.global.uptime_seconds, receivedAt: time.mono };
      return { ...node, global, sessions, lastSeen: time.wall };
    }
    case 'session': {
      const known = node.sessions.get(input.key);
      // The status names a node's sessions; a session topic for a key it does not list is a leftover retained
      // message (a daemon killed before it could clear it) or arrives just before the status that lists it.
      if (!known) return node.lastSeen === time.wall ? node : { ...node, lastSeen: time.wall };
      const sessions = new Map(node.sessions);
      if (input.session === null) sessions.delete(input.key);
      else sessions.set(input.key, { session: input.session, receivedAt: time.mono });
      return { ...node, sessions, lastSeen: time.wall };
    }
    case 'transition':
      out(outList, node.id, input.transition);
      return node.lastSeen === time.wall ? node : { ...node, lastSeen: time.wall };
  }
}

function out(list: FleetTransition[], node: string, t: NodeTransition): void {
  list.push({ node_id: node, session_key: t.session_key, from: t.from, to: t.to, tool_name: t.tool_name, error_message: t.error_message, at: t.at });
}

/** A node that went offline while it had sessions: the fleet is degraded, whatever the other nodes say. */
export function lostSessions(node: FleetNodeState): boolean {
  return node.availability === 'offline' && node.sessions.size > 0;
}
