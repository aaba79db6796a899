/**
 * Renders the fleet's two snapshots from a FleetState at a given time, as strings (like daemon/state/snapshot.ts, and
 * for the same reasons: `duration_seconds` with one decimal as the daemon writes it, and a fingerprint without the
 * timing fields that decides whether a stream client has seen a change):
 *
 * - the fleet view (GET /api/v1/fleet/status): every node with its own snapshot, field for field as its daemon
 *   serves it (timers aged by the time since the message arrived), and a global over the online nodes;
 * - the agent view (GET /api/v1/agent/status on the fleet): PocketPaw's shape over every node, session keys
 *   prefixed `<node_id>/`, so every client of a single daemon reads a fleet unchanged.
 */
import type { GlobalState } from '../../protocol/snapshot.ts';
import { NODE_OFFLINE } from '../../protocol/fleet.ts';
import type { RenderedSnapshot, SessionFilter } from '../state/snapshot.ts';
import { lostSessions, type FleetNodeState, type FleetSession, type FleetState } from './fold.ts';

/** The monotonic time the fleet renders at, and the one its own uptime counts from. */
export interface RenderTime {
  readonly now: number;
  readonly startedAt: number;
}

/** Nodes in id order: a stable order for pages and diffs, whatever order the broker delivered them in. */
export function sortedNodes(state: FleetState): FleetNodeState[] {
  return [...state.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function nodeState(node: FleetNodeState): GlobalState {
  if (node.sessions.size === 0) return 'idle';
  if (node.availability === 'offline') return 'degraded';
  for (const s of node.sessions.values()) if (s.session.state === 'error') return 'degraded';
  return 'active';
}

/**
 * The fleet's own global: every online node counts (sessions summed, capacities summed); degraded when an online
 * node is, or a node went offline with live sessions (their agents' fate is unknown).
 */
export function fleetGlobal(nodes: readonly FleetNodeState[]): { state: GlobalState; active: number; maxConcurrent: number } {
  let active = 0;
  let maxConcurrent = 0;
  let degraded = false;
  for (const node of nodes) {
    if (lostSessions(node)) degraded = true;
    if (node.availability !== 'online') continue;
    active += node.sessions.size;
    maxConcurrent += node.global?.maxConcurrent ?? 0;
    if (nodeState(node) === 'degraded') degraded = true;
  }
  // max_concurrent is positive in the contract: an empty fleet still reports a capacity of 1, like a fresh daemon's floor.
  return { state: degraded ? 'degraded' : active > 0 ? 'active' : 'idle', active, maxConcurrent: Math.max(1, maxConcurrent) };
}

/** Whether a session of `node` passes `?node=`, `?session=` (its own key or `<node_id>/<key>`) and `?channel=`. */
export function fleetMatches(filter: SessionFilter, node: string, key: string, channel: string): boolean {
  if (filter.nodes && !filter.nodes.has(node)) return false;
  if (filter.channels !== null && !filter.channels.has(channel)) return false;
  return filter.sessions === null || filter.sessions.has(key) || filter.sessions.has(`${node}/${key}`);
}

/** One session object, exactly as the daemon writes it; `prefix` goes before its key in the agent view. */
function sessionJson(node: FleetNodeState, entry: FleetSession, now: number, prefix: string, timed: boolean): string {
  const s = entry.session;
  const offline = node.availability === 'offline' && node.offlineSince !== null;
  const state = offline ? 'error' : s.state;
  const tool = offline ? null : s.tool_name;
  const error = offline ? NODE_OFFLINE : s.error_message;
  let duration = '';
  if (timed) {
    // Offline: how long it has been in `error`, as the daemon counts a state; otherwise its published time, aged.
    const seconds = offline ? (now - node.offlineSince!) / 1000 : s.duration_seconds + (now - entry.receivedAt) / 1000;
    duration = Math.max(0, seconds).toFixed(1);
  }
  return `{"session_key":${JSON.stringify(prefix + s.session_key)},"session_id":${JSON.stringify(s.session_id)},"channel":${JSON.stringify(s.channel)},"title":${str(s.title)},"state":"${state}","tool_name":${str(tool)},"duration_seconds":${duration},"token_usage":${s.token_usage ? `{"input":${s.token_usage.input},"output":${s.token_usage.output}}` : 'null'},"error_message":${str(error)}}`;
}

function str(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function globalJson(state: GlobalState, active: number, maxConcurrent: number, uptime: number | null): string {
  return `{"state":"${state}","active_sessions":${active},"max_concurrent":${maxConcurrent},"uptime_seconds":${uptime === null ? '' : uptime}}`;
}

/** A node's uptime as its daemon would report it now: the published value plus the time since (frozen while offline). */
function nodeUptime(node: FleetNodeState, now: number): number {
  const g = node.global!;
  const until = node.offlineSince !== null && node.offlineSince > g.receivedAt ? node.offlineSince : now;
  return g.uptimeSeconds + Math.max(0, Math.floor((until - g.receivedAt) / 1000));
}

function sessionsOf(node: FleetNodeState, filter: SessionFilter | null, now: number, prefix: string, timed: boolean): string {
  let out = '';
  for (const [key, entry] of node.sessions) {
    if (filter !== null && !fleetMatches(filter, node.id, key, entry.session.channel)) continue;
    out += (out === '' ? '' : ',') + sessionJson(node, entry, now, prefix, timed);
  }
  return out;
}

function isFiltered(filter: SessionFilter): boolean {
  return filter.sessions !== null || filter.channels !== null || (filter.nodes ?? null) !== null;
}

export function renderFleet(state: FleetState, time: RenderTime, filter: SessionFilter): RenderedSnapshot {
  const nodes = sortedNodes(state);
  const g = fleetGlobal(nodes);
  const uptime = Math.max(0, Math.floor((time.now - time.startedAt) / 1000));
  const f = isFiltered(filter) ? filter : null;
  let json = `{"global":${globalJson(g.state, g.active, g.maxConcurrent, uptime)},"nodes":[`;
  let fingerprint = `{"global":${globalJson(g.state, g.active, g.maxConcurrent, null)},"nodes":[`;
  let first = true;
  for (const node of nodes) {
    if (filter.nodes && !filter.nodes.has(node.id)) continue;
    const head = `${first ? '' : ','}{"node_id":${JSON.stringify(node.id)},"online":${node.availability === 'online'},"last_seen":"${new Date(node.lastSeen).toISOString()}","global":`;
    first = false;
    if (node.global === null) {
      const part = `${head}null,"sessions":[]}`;
      json += part;
      fingerprint += part;
      continue;
    }
    const nodeGlobal = (uptime: number | null) => globalJson(nodeState(node), node.sessions.size, node.global!.maxConcurrent, uptime);
    json += `${head}${nodeGlobal(nodeUptime(node, time.now))},"sessions":[${sessionsOf(node, f, time.now, '', true)}]}`;
    fingerprint += `${head}${nodeGlobal(null)},"sessions":[${sessionsOf(node, f, time.now, '', false)}]}`;
  }
  return { json: `${json}]}`, fingerprint: `${fingerprint}]}` };
}

export function renderAgentView(state: FleetState, time: RenderTime, filter: SessionFilter): RenderedSnapshot {
  const nodes = sortedNodes(state);
  const g = fleetGlobal(nodes);
  const uptime = Math.max(0, Math.floor((time.now - time.startedAt) / 1000));
  const f = isFiltered(filter) ? filter : null;
  let json = '';
  let fingerprint = '';
  for (const node of nodes) {
    const timed = sessionsOf(node, f, time.now, `${node.id}/`, true);
    if (timed === '') continue;
    json += (json === '' ? '' : ',') + timed;
    fingerprint += (fingerprint === '' ? '' : ',') + sessionsOf(node, f, time.now, `${node.id}/`, false);
  }
  return {
    json: `{"global":${globalJson(g.state, g.active, g.maxConcurrent, uptime)},"sessions":[${json}]}`,
    fingerprint: `{"global":${globalJson(g.state, g.active, g.maxConcurrent, null)},"sessions":[${fingerprint}]}`,
  };
}
