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
import { SESSION_STATES, type GlobalState, type SessionState } from '../../protocol/snapshot.ts';
import { NODE_OFFLINE } from '../../protocol/fleet.ts';
import { RenderedSnapshot, type SessionFilter } from '../state/snapshot.ts';
import { summaryOfBody, type RenderedSummary } from '../state/summary.ts';
import { lostSessions, type FleetNodeState, type FleetSession, type FleetState } from './fold.ts';

/** The monotonic time the fleet renders at, and the one its own uptime counts from. */
export interface RenderTime {
  readonly now: number;
  readonly startedAt: number;
}

const sortedCache = new WeakMap<FleetState['nodes'], FleetNodeState[]>();

/** Nodes in id order: a stable order for pages and diffs, whatever order the broker delivered them in. */
export function sortedNodes(state: FleetState): readonly FleetNodeState[] {
  let sorted = sortedCache.get(state.nodes);
  if (!sorted) sortedCache.set(state.nodes, (sorted = [...state.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))));
  return sorted;
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

/**
 * A rendering with its timers left open: fixed text between the places where a timer's value goes. A node's pieces
 * depend only on its state object, so they are built once per change of that node and kept (WeakMap below); a
 * rendering then joins them with the timers' values at `now`. Building every session's JSON anew cost ~60 ms per
 * status event for 1,000 nodes x 5 sessions; joining costs a few.
 */
class Pieces {
  readonly parts: string[] = [];
  readonly timers: ((now: number) => string)[] = [];
  private text = '';

  add(text: string): void {
    this.text += text;
  }

  timer(value: (now: number) => string): void {
    this.parts.push(this.text);
    this.text = '';
    this.timers.push(value);
  }

  done(): Pieces {
    this.parts.push(this.text);
    this.text = '';
    return this;
  }

  /** The text with every timer's value at `now`. */
  at(now: number): string {
    let out = this.parts[0]!;
    for (let i = 0; i < this.timers.length; i++) out += this.timers[i]!(now) + this.parts[i + 1]!;
    return out;
  }

  /** The text without the timers' values: what decides whether a client has seen a change. */
  fingerprint(): string {
    return (this.joined ??= this.parts.join(''));
  }

  private joined: string | null = null;
}

/** One session object, exactly as the daemon writes it; `prefix` goes before its key in the agent view. */
function addSession(out: Pieces, node: FleetNodeState, entry: FleetSession, prefix: string): void {
  const s = entry.session;
  const offlineSince = node.availability === 'offline' ? node.offlineSince : null;
  const offline = offlineSince !== null;
  const state = offline ? 'error' : s.state;
  const tool = offline ? null : s.tool_name;
  const error = offline ? NODE_OFFLINE : s.error_message;
  out.add(`{"session_key":${JSON.stringify(prefix + s.session_key)},"session_id":${JSON.stringify(s.session_id)},"channel":${JSON.stringify(s.channel)},"title":${str(s.title)},"state":"${state}","tool_name":${str(tool)},"duration_seconds":`);
  // Offline: how long it has been in `error`, as the daemon counts a state; otherwise its published time, aged.
  const base = offline ? 0 : s.duration_seconds;
  const from = offline ? offlineSince : entry.receivedAt;
  out.timer((now) => Math.max(0, base + (now - from) / 1000).toFixed(1));
  out.add(`,"token_usage":${s.token_usage ? `{"input":${s.token_usage.input},"output":${s.token_usage.output}}` : 'null'},"error_message":${str(error)}}`);
}

function str(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

function globalHead(state: GlobalState, active: number, maxConcurrent: number): string {
  return `{"state":"${state}","active_sessions":${active},"max_concurrent":${maxConcurrent},"uptime_seconds":`;
}

/** A node's uptime as its daemon would report it now: the published value plus the time since (frozen while offline). */
function nodeUptime(node: FleetNodeState): (now: number) => string {
  const g = node.global!;
  const stop = node.availability === 'offline' && node.offlineSince !== null && node.offlineSince > g.receivedAt ? node.offlineSince : Infinity;
  return (now) => String(g.uptimeSeconds + Math.max(0, Math.floor((Math.min(now, stop) - g.receivedAt) / 1000)));
}

function addSessions(out: Pieces, node: FleetNodeState, filter: SessionFilter | null, prefix: string, first: boolean): boolean {
  for (const [key, entry] of node.sessions) {
    if (filter !== null && !fleetMatches(filter, node.id, key, entry.session.channel)) continue;
    if (!first) out.add(',');
    addSession(out, node, entry, prefix);
    first = false;
  }
  return first;
}

function isFiltered(filter: SessionFilter): boolean {
  return filter.sessions !== null || filter.channels !== null || (filter.nodes ?? null) !== null;
}

/** A node's part of the fleet view (without a leading comma). */
function fleetNodePieces(node: FleetNodeState, filter: SessionFilter | null): Pieces {
  const out = new Pieces();
  out.add(`{"node_id":${JSON.stringify(node.id)},"online":${node.availability === 'online'},"last_seen":"${new Date(node.lastSeen).toISOString()}","global":`);
  if (node.global === null) {
    out.add('null,"sessions":[]}');
    return out.done();
  }
  out.add(globalHead(nodeState(node), node.sessions.size, node.global.maxConcurrent));
  out.timer(nodeUptime(node));
  out.add('},"sessions":[');
  addSessions(out, node, filter, '', true);
  out.add(']}');
  return out.done();
}

/** A node's sessions in the agent view (keys prefixed), without a leading comma; empty when it has none. */
function agentNodePieces(node: FleetNodeState, filter: SessionFilter | null): Pieces {
  const out = new Pieces();
  addSessions(out, node, filter, `${node.id}/`, true);
  return out.done();
}

/** Unfiltered renderings reuse each unchanged node's pieces (keyed by the node's state object). */
const fleetCache = new WeakMap<FleetNodeState, Pieces>();
const agentCache = new WeakMap<FleetNodeState, Pieces>();

function cached(cache: WeakMap<FleetNodeState, Pieces>, node: FleetNodeState, build: (node: FleetNodeState, filter: null) => Pieces): Pieces {
  let pieces = cache.get(node);
  if (!pieces) cache.set(node, (pieces = build(node, null)));
  return pieces;
}

export function renderFleet(state: FleetState, time: RenderTime, filter: SessionFilter): RenderedSnapshot {
  const nodes = sortedNodes(state);
  const g = fleetGlobal(nodes);
  const f = isFiltered(filter) ? filter : null;
  const head = globalHead(g.state, g.active, g.maxConcurrent);
  let json = `{"global":${head}${Math.max(0, Math.floor((time.now - time.startedAt) / 1000))}},"nodes":[`;
  let fingerprint = `{"global":${head}},"nodes":[`;
  let first = true;
  for (const node of nodes) {
    if (f?.nodes && !f.nodes.has(node.id)) continue;
    const pieces = f === null ? cached(fleetCache, node, fleetNodePieces) : fleetNodePieces(node, f);
    const sep = first ? '' : ',';
    json += sep + pieces.at(time.now);
    fingerprint += sep + pieces.fingerprint();
    first = false;
  }
  return RenderedSnapshot.whole(`${json}]}`, `${fingerprint}]}`);
}

export function renderAgentView(state: FleetState, time: RenderTime, filter: SessionFilter): RenderedSnapshot {
  const nodes = sortedNodes(state);
  const g = fleetGlobal(nodes);
  const f = isFiltered(filter) ? filter : null;
  const head = globalHead(g.state, g.active, g.maxConcurrent);
  let json = '';
  let fingerprint = '';
  for (const node of nodes) {
    const pieces = f === null ? cached(agentCache, node, agentNodePieces) : agentNodePieces(node, f);
    if (pieces.timers.length === 0) continue;
    const sep = json === '' ? '' : ',';
    json += sep + pieces.at(time.now);
    fingerprint += sep + pieces.fingerprint();
  }
  return RenderedSnapshot.whole(
    `{"global":${head}${Math.max(0, Math.floor((time.now - time.startedAt) / 1000))}},"sessions":[${json}]}`,
    `{"global":${head}},"sessions":[${fingerprint}]}`,
  );
}

/**
 * The summary of the agent view (GET /api/v1/agent/status/summary on the fleet), in serve's shape: `state`,
 * `active_sessions` and `max_concurrent` as the agent view's `global` says them, and `sessions` counting every session
 * the agent view lists by the state it shows (an offline node's sessions as `error`). A poller of one daemon's
 * summary reads a fleet's unchanged.
 */
export function renderFleetSummary(state: FleetState): RenderedSummary {
  const nodes = sortedNodes(state);
  const g = fleetGlobal(nodes);
  const counts = Object.fromEntries(SESSION_STATES.map((s) => [s, 0])) as Record<SessionState, number>;
  for (const node of nodes) {
    const offline = node.availability === 'offline' && node.offlineSince !== null;
    for (const entry of node.sessions.values()) counts[offline ? 'error' : entry.session.state]++;
  }
  return summaryOfBody(JSON.stringify({ state: g.state, active_sessions: g.active, max_concurrent: g.maxConcurrent, sessions: counts }));
}
