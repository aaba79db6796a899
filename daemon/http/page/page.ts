/**
 * The status page's script: follows the SSE stream with the browser's own EventSource and keeps the DOM in step.
 *
 * Served inline by daemon/http/page.ts after esbuild strips the types, so it must stay one self-contained file: the
 * only import is type-only and disappears. Every string from the daemon reaches the DOM through textContent or a
 * property, never through innerHTML: a session title is text written by whoever talks to the agent.
 */
import type { AgentStatusResponse, GlobalState, GlobalStatus, SessionState, SessionStatus } from '../../../protocol/snapshot.ts';
import type { FleetNode, FleetStatusResponse } from '../../../protocol/fleet.ts';

/** The `transition` event's data (daemon/sse/frames.ts). */
interface TransitionData {
  readonly session_key: string;
  readonly from: SessionState | null;
  readonly to: SessionState | null;
  readonly tool_name: string | null;
  readonly error_message: string | null;
  readonly at: string;
}

type Connection = 'connecting' | 'live' | 'reconnecting' | 'gone' | 'key';

const STATUS_PATH = 'api/v1/agent/status';
const STREAM_PATH = 'api/v1/agent/status/stream';
/** Served by `pocketpaw-status fleet` (daemon/fleet/server.ts marks the page): follow the fleet, grouped by node. */
const FLEET = document.querySelector('meta[name="pocketpaw-status-view"]')?.getAttribute('content') === 'fleet';
const FLEET_STREAM_PATH = 'api/v1/fleet/status/stream';
/** After this long without a stream, "reconnecting" becomes "daemon gone" (the daemon asks for a 2 s retry). */
const GONE_AFTER_MS = 10_000;
/** The longest wait between our own reconnects, once the browser has given up on a stream (non-200 answers). */
const MAX_BACKOFF_MS = 30_000;

const STATE_LABELS: Record<SessionState, string> = {
  thinking: 'Thinking',
  tool_running: 'Running tool',
  streaming: 'Streaming',
  waiting_for_user: 'Waiting for user',
  error: 'Error',
};
const GLOBAL_LABELS: Record<GlobalState, string> = { idle: 'Idle', active: 'Active', degraded: 'Degraded' };
const CONNECTION_LABELS: Record<Connection, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  gone: 'Daemon gone · retrying',
  key: 'Key needed',
};
/** The favicon's colour per global state, so a pinned tab shows the state too. */
const FAVICON_COLOURS: Record<GlobalState | 'unknown', string> = {
  idle: '#64748b',
  active: '#16a34a',
  degraded: '#dc2626',
  unknown: '#94a3b8',
};

// --- the page's own URL: options, the key, and the filters passed on to the stream ---

const pageParams = new URLSearchParams(location.search);
const key = pageParams.get('key') ?? '';
const showTransitions = isOn(pageParams.get('transitions'));
const compact = isOn(pageParams.get('compact'));
const filters: [string, string][] = [
  ...pageParams.getAll('session').map((v): [string, string] => ['session', v]),
  ...pageParams.getAll('channel').map((v): [string, string] => ['channel', v]),
  ...pageParams.getAll('node').map((v): [string, string] => ['node', v]),
];

function isOn(value: string | null): boolean {
  return value !== null && ['', '1', 'true', 'yes', 'on'].includes(value.toLowerCase());
}

function apiUrl(path: string, extra: Record<string, string> = {}): string {
  const url = new URL(path, location.href);
  for (const [name, value] of filters) url.searchParams.append(name, value);
  for (const [name, value] of Object.entries(extra)) url.searchParams.set(name, value);
  if (key !== '') url.searchParams.set('key', key);
  return url.href;
}

/** This page's address with one option switched, everything else (key, filters) kept. */
function pageUrl(option: string, on: boolean): string {
  const url = new URL(location.href);
  if (on) url.searchParams.set(option, '1');
  else url.searchParams.delete(option);
  return url.href;
}

// --- elements ---

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`status page: element #${id} is missing from page.html`);
  return element as T;
}

const el = {
  main: byId('main'),
  conn: byId('conn'),
  connText: byId('conn-text'),
  overview: byId('overview'),
  badge: byId('badge'),
  badgeLabel: byId('badge-label'),
  sumSessions: byId('sum-sessions'),
  sumUptime: byId('sum-uptime'),
  sumUpdated: byId('sum-updated'),
  staleNote: byId('stale-note'),
  empty: byId('empty'),
  cards: byId<HTMLUListElement>('cards'),
  log: byId('log'),
  logList: byId<HTMLOListElement>('log-list'),
  logEmpty: byId('log-empty'),
  keyNotice: byId('key-notice'),
  keyWhy: byId('key-why'),
  keySource: byId('key-source'),
  keyForm: byId<HTMLFormElement>('key-form'),
  keyInput: byId<HTMLInputElement>('key-input'),
  announcer: byId('announcer'),
  favicon: byId<HTMLLinkElement>('favicon'),
  template: byId<HTMLTemplateElement>('card-template'),
  linkCompact: byId<HTMLAnchorElement>('link-compact'),
  linkTransitions: byId<HTMLAnchorElement>('link-transitions'),
  linkJson: byId<HTMLAnchorElement>('link-json'),
};

// --- formatting ---

/** Same as the `status` command (daemon/cli/format.ts): 45 -> `45s`, 90 -> `1m 30s`, 3661 -> `1h 1m 1s`. */
function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.trunc(seconds));
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.trunc(total / 60)}m ${total % 60}s`;
  return `${Math.trunc(total / 3600)}h ${Math.trunc((total % 3600) / 60)}m ${total % 60}s`;
}

const numbers = new Intl.NumberFormat(undefined, compact ? { notation: 'compact', maximumFractionDigits: 1 } : {});
const clockTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });

function formatTokens(usage: SessionStatus['token_usage']): string {
  if (!usage) return '–';
  return `${numbers.format(usage.input)} in · ${numbers.format(usage.output)} out`;
}

function sessionLabel(sessionKey: string): string {
  const shown = cards.get(sessionKey);
  if (shown) return shown.session.title ?? shown.session.session_id;
  const at = sessionKey.indexOf(':');
  return at < 0 ? sessionKey : sessionKey.slice(at + 1) || sessionKey;
}

// --- rendering the snapshot ---

interface Card {
  session: SessionStatus;
  /** performance.now() when this session's snapshot arrived: the time in state ticks on from there. */
  receivedAt: number;
  readonly li: HTMLLIElement;
  readonly title: HTMLElement;
  readonly channel: HTMLElement;
  readonly pill: HTMLElement;
  readonly tool: HTMLElement;
  readonly time: HTMLElement;
  readonly tokens: HTMLElement;
  readonly error: HTMLElement;
}

const cards = new Map<string, Card>();
let shownGlobal: { global: GlobalStatus; receivedAt: number } | null = null;
let lastUpdate: Date | null = null;
let cardIds = 0;

function part(root: Element, selector: string): HTMLElement {
  const found = root.querySelector<HTMLElement>(selector);
  if (!found) throw new Error(`status page: ${selector} is missing from the card template`);
  return found;
}

function createCard(session: SessionStatus): Card {
  const fragment = el.template.content.cloneNode(true) as DocumentFragment;
  const li = fragment.querySelector('li')!;
  const title = part(li, '.card-title');
  title.id = `card-title-${++cardIds}`;
  part(li, 'article').setAttribute('aria-labelledby', title.id);
  return {
    session,
    receivedAt: performance.now(),
    li,
    title,
    channel: part(li, '.channel'),
    pill: part(li, '.state-pill'),
    tool: part(li, '.tool'),
    time: part(li, '.time'),
    tokens: part(li, '.tokens'),
    error: part(li, '.error-message'),
  };
}

function fillCard(card: Card, session: SessionStatus, receivedAt: number): void {
  card.session = session;
  card.receivedAt = receivedAt;
  const title = session.title ?? session.session_id;
  card.li.dataset.key = session.session_key;
  card.li.dataset.state = session.state;
  card.title.textContent = title;
  card.title.title = title === session.session_key ? title : `${title} (${session.session_key})`;
  card.channel.textContent = session.channel;
  card.pill.textContent = STATE_LABELS[session.state] ?? session.state;
  card.tool.textContent = session.tool_name ?? '';
  card.tool.hidden = session.tool_name === null;
  card.tokens.textContent = formatTokens(session.token_usage);
  card.error.textContent = session.error_message ?? '';
  card.error.title = session.error_message ?? '';
  card.error.hidden = session.error_message === null;
  tickCard(card, receivedAt);
}

function tickCard(card: Card, now: number): void {
  const text = formatDuration(card.session.duration_seconds + (now - card.receivedAt) / 1000);
  if (card.time.textContent !== text) card.time.textContent = text;
}

function renderSnapshot(snapshot: AgentStatusResponse): void {
  const now = performance.now();
  const previous = shownGlobal?.global.state ?? null;
  shownGlobal = { global: snapshot.global, receivedAt: now };
  lastUpdate = new Date();
  const state = snapshot.global.state;

  el.badge.dataset.state = state;
  el.badgeLabel.textContent = GLOBAL_LABELS[state] ?? state;
  el.sumSessions.textContent = `${snapshot.global.active_sessions} / ${snapshot.global.max_concurrent}`;
  el.sumUpdated.textContent = clockTime.format(lastUpdate);
  document.title = `${GLOBAL_LABELS[state] ?? state} · PocketPaw status`;
  setFavicon(state);

  const seen = new Set<string>();
  let position = 0;
  for (const session of snapshot.sessions) {
    seen.add(session.session_key);
    let card = cards.get(session.session_key);
    if (!card) {
      card = createCard(session);
      cards.set(session.session_key, card);
    }
    fillCard(card, session, now);
    // Moving only what is out of place keeps keyboard focus and avoids restarting the entry animation.
    const at = el.cards.children[position];
    if (at !== card.li) el.cards.insertBefore(card.li, at ?? null);
    position++;
  }
  for (const [sessionKey, card] of cards) {
    if (seen.has(sessionKey)) continue;
    card.li.remove();
    cards.delete(sessionKey);
  }
  el.empty.hidden = snapshot.sessions.length > 0;
  tickGlobal(now);
  relabelLog();

  if (previous !== null && previous !== state) announce(describeGlobal(snapshot), 'state');
}

function describeGlobal(snapshot: AgentStatusResponse): string {
  const count = snapshot.sessions.length;
  const sessions = `${count} session${count === 1 ? '' : 's'}`;
  switch (snapshot.global.state) {
    case 'idle':
      return 'Agent idle.';
    case 'active':
      return `Agent active: ${sessions}.`;
    case 'degraded': {
      const failed = snapshot.sessions.filter((s) => s.state === 'error').length;
      return `Agent degraded: ${failed} of ${sessions} in error.`;
    }
  }
}

function tickGlobal(now: number): void {
  if (!shownGlobal) return;
  el.sumUptime.textContent = formatDuration(shownGlobal.global.uptime_seconds + (now - shownGlobal.receivedAt) / 1000);
}

function setFavicon(state: GlobalState | 'unknown'): void {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="${FAVICON_COLOURS[state]}"/></svg>`;
  el.favicon.href = `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

interface Announcement {
  text: string;
  kind: 'state' | 'other';
}

let announcements: Announcement[] = [];

/**
 * Says `text` through the live region. What comes together (the connection back, then the state it brings) is said
 * together: a screen reader may skip a message replaced a moment after it appeared. Of several global states within
 * one window only the last is said: "active, then idle" read out after the fact would describe a state already gone.
 */
function announce(text: string, kind: Announcement['kind'] = 'other'): void {
  if (announcements.length === 0) {
    window.setTimeout(() => {
      el.announcer.textContent = announcements.map((a) => a.text).join(' ');
      announcements = [];
    }, 300);
  }
  if (kind === 'state') announcements = announcements.filter((a) => a.kind !== 'state');
  announcements.push({ text, kind });
}

// --- the transition log ---

const LOG_LENGTH = compact ? 6 : 12;

function addLogLine(time: Date, parts: { key?: string; who: string; what: string; detail?: string | null; kind: string }): void {
  const li = document.createElement('li');
  li.className = 'log-line';
  li.dataset.kind = parts.kind;
  if (parts.key !== undefined) li.dataset.key = parts.key;
  const when = document.createElement('time');
  when.dateTime = time.toISOString();
  when.textContent = clockTime.format(time);
  const who = document.createElement('span');
  who.className = 'log-who';
  who.textContent = parts.who;
  const what = document.createElement('span');
  what.className = 'log-what';
  what.textContent = parts.what;
  li.append(when, who, what);
  if (parts.detail) {
    const detail = document.createElement('span');
    detail.className = 'log-detail';
    detail.textContent = parts.detail;
    li.append(detail);
  }
  el.logList.prepend(li);
  el.logEmpty.hidden = true;
  while (el.logList.children.length > LOG_LENGTH) el.logList.lastElementChild?.remove();
}

/**
 * A new session's transitions arrive before the snapshot that carries its title: once the title is known, the lines
 * already logged for it use it too.
 */
function relabelLog(): void {
  for (const li of el.logList.children) {
    if (!(li instanceof HTMLElement) || li.dataset.key === undefined || !cards.has(li.dataset.key)) continue;
    const who = li.querySelector('.log-who');
    const label = sessionLabel(li.dataset.key);
    if (who && who.textContent !== label) who.textContent = label;
  }
}

function onTransition(t: TransitionData): void {
  const at = new Date(t.at);
  const from = t.from === null ? 'started' : (STATE_LABELS[t.from] ?? t.from);
  const to = t.to === null ? 'ended' : (STATE_LABELS[t.to] ?? t.to);
  addLogLine(Number.isNaN(at.getTime()) ? new Date() : at, {
    key: t.session_key,
    who: sessionLabel(t.session_key),
    what: t.from === null ? `started · ${to}` : `${from} → ${to}`,
    detail: t.to === 'error' ? t.error_message : t.tool_name,
    kind: t.to ?? 'ended',
  });
}

// --- the connection ---

let source: EventSource | null = null;
let connection: Connection = 'connecting';
/** performance.now() when the stream was lost, while it is. */
let downSince: number | null = null;
let retries = 0;

function setConnection(next: Connection): void {
  if (next === connection) return;
  const was = connection;
  connection = next;
  el.conn.dataset.conn = next;
  el.connText.textContent = CONNECTION_LABELS[next];
  const stale = next !== 'live' && shownGlobal !== null;
  el.main.dataset.stale = String(stale);
  el.staleNote.hidden = !stale;
  if (stale && lastUpdate) el.staleNote.textContent = `Not connected: showing the last state received, at ${clockTime.format(lastUpdate)}.`;
  if (next === 'live' && (was === 'reconnecting' || was === 'gone')) announce('Connection restored.');
  if (next === 'gone') announce('Lost the connection to the status daemon; still retrying.');
}

function connect(): void {
  const es = new EventSource(apiUrl(FLEET ? FLEET_STREAM_PATH : STREAM_PATH, showTransitions ? { transitions: '1' } : {}));
  source = es;
  es.addEventListener('open', () => {
    downSince = null;
    retries = 0;
    setConnection('live');
  });
  es.addEventListener('status', (event) => {
    const snapshot = FLEET ? fleetSnapshot(event) : parse<AgentStatusResponse>(event, isSnapshot);
    if (!snapshot) return;
    downSince = null;
    setConnection('live');
    renderSnapshot(snapshot);
    if (FLEET) showNodes();
  });
  es.addEventListener('transition', (event) => {
    const transition = parse<TransitionData>(event, isTransition);
    if (transition) onTransition(FLEET ? { ...transition, session_key: `${String((transition as { node_id?: unknown }).node_id)}/${transition.session_key}` } : transition);
  });
  es.addEventListener('reset', (event) => {
    const reset = parse<{ reason: string }>(event, (v): v is { reason: string } => isObject(v) && typeof v.reason === 'string');
    if (reset) addLogLine(new Date(), { who: 'Daemon', what: 'some transitions were missed', detail: reset.reason, kind: 'reset' });
  });
  es.addEventListener('error', () => {
    downSince ??= performance.now();
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up for good: a non-200 answer. It cannot tell us which, so ask the REST endpoint.
      es.close();
      if (source === es) source = null;
      void diagnose();
    } else {
      setConnection(performance.now() - downSince >= GONE_AFTER_MS ? 'gone' : 'reconnecting');
    }
  });
}

async function diagnose(): Promise<void> {
  try {
    const response = await fetch(apiUrl(STATUS_PATH), { cache: 'no-store', headers: { Accept: 'application/json' } });
    // 429: the daemon slows down an address after many wrong keys; either way the key is what needs fixing.
    if (response.status === 403 || response.status === 429) {
      showKeyNotice(response.status === 429, response.headers.get('X-Status-Key-Source'));
      return;
    }
  } catch {
    // Unreachable: the daemon is gone; retry below.
  }
  const waited = downSince === null ? 0 : performance.now() - downSince;
  setConnection(waited >= GONE_AFTER_MS ? 'gone' : 'reconnecting');
  const delay = Math.min(MAX_BACKOFF_MS, 2000 * 2 ** retries);
  retries++;
  window.setTimeout(connect, delay);
}

/** Where the daemon takes its key from, by the kind it names on a refusal (daemon/http/auth.ts): never a path. */
const KEY_SOURCES: Readonly<Record<string, string>> = {
  env: 'The key is the value of POCKETPAW_STATUS_API_KEY in the daemon\'s environment, on the machine running it.',
  file: 'The key is in the key file the daemon was started with (--api-key-file or POCKETPAW_STATUS_API_KEY_FILE), on the machine running it.',
  credential: 'The key is the daemon\'s systemd credential status-api-key (LoadCredential= in its service unit), on the machine running it.',
};

function showKeyNotice(tooMany: boolean, source: string | null): void {
  setConnection('key');
  const where = source === null ? undefined : KEY_SOURCES[source];
  if (where !== undefined) el.keySource.textContent = where;
  el.keyWhy.textContent = tooMany
    ? 'Too many wrong keys came from this address, so the daemon refuses it for a while. Wait a minute, then try the right key.'
    : key === ''
      ? 'This daemon only shows its status to clients that present its API key.'
      : "The key in this page's address was not accepted. Check it and try again.";
  el.keyNotice.hidden = false;
  el.overview.hidden = true;
  el.main.dataset.stale = 'false';
  for (const section of el.main.querySelectorAll<HTMLElement>('.sessions, .log')) section.hidden = true;
  setFavicon('unknown');
  document.title = 'Key needed · PocketPaw status';
  announce('A status key is needed to show the agent status.');
}

function parse<T>(event: Event, check: (value: unknown) => value is T): T | null {
  if (!(event instanceof MessageEvent) || typeof event.data !== 'string') return null;
  try {
    const value: unknown = JSON.parse(event.data);
    if (check(value)) return value;
  } catch {
    // Fall through: a malformed event is ignored, the next snapshot repairs the view.
  }
  console.warn('status page: ignoring a malformed %s event', event.type);
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isSnapshot(value: unknown): value is AgentStatusResponse {
  return isObject(value) && isObject(value.global) && typeof value.global.state === 'string' && Array.isArray(value.sessions);
}

function isTransition(value: unknown): value is TransitionData {
  return isObject(value) && typeof value.session_key === 'string' && typeof value.at === 'string';
}

// --- the fleet: the same cards, grouped under a heading per node that shows its availability ---

let fleetNodes: readonly FleetNode[] = [];

/** The fleet snapshot as the agent view's shape (keys `<node_id>/<key>`, in node order), for renderSnapshot. */
function fleetSnapshot(event: Event): AgentStatusResponse | null {
  const fleet = parse<FleetStatusResponse>(event, (v): v is FleetStatusResponse => isObject(v) && isObject(v.global) && Array.isArray(v.nodes));
  if (!fleet) return null;
  fleetNodes = fleet.nodes;
  // The headings go before renderSnapshot places the cards, which counts the list's children.
  for (const head of el.cards.querySelectorAll('.node-head')) head.remove();
  const sessions = fleet.nodes.flatMap((n) => n.sessions.map((s) => ({ ...s, session_key: `${n.node_id}/${s.session_key}` })));
  return { global: fleet.global, sessions };
}

function showNodes(): void {
  const heads = fleetNodes.map((node) => {
    const li = document.createElement('li');
    li.className = 'node-head';
    li.dataset.online = String(node.online);
    const name = document.createElement('h3');
    name.textContent = node.node_id;
    const about = document.createElement('span');
    const count = node.sessions.length;
    about.textContent = `${node.online ? 'online' : 'offline'} · ${count} session${count === 1 ? '' : 's'} · last seen ${clockTime.format(new Date(node.last_seen))}`;
    li.append(name, about);
    return { li, first: node.sessions[0] ? cards.get(`${node.node_id}/${node.sessions[0].session_key}`)?.li ?? null : null };
  });
  // Each heading before its node's first card; a node without sessions before the next node's (or at the end).
  for (let i = heads.length - 1, next: Element | null = null; i >= 0; i--) {
    const { li, first } = heads[i]!;
    el.cards.insertBefore(li, first ?? next);
    next = li;
  }
  if (fleetNodes.length > 0) el.empty.hidden = true;
}

// --- start ---

function tick(): void {
  const now = performance.now();
  for (const card of cards.values()) tickCard(card, now);
  tickGlobal(now);
  if (connection === 'reconnecting' && downSince !== null && now - downSince >= GONE_AFTER_MS) setConnection('gone');
}

function setUpLinks(): void {
  el.linkCompact.href = pageUrl('compact', !compact);
  el.linkCompact.textContent = compact ? 'Card view' : 'Compact view';
  el.linkTransitions.href = pageUrl('transitions', !showTransitions);
  el.linkTransitions.textContent = showTransitions ? 'Hide transitions' : 'Show transitions';
  el.linkJson.href = apiUrl(STATUS_PATH);
}

el.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const url = new URL(location.href);
  url.searchParams.set('key', el.keyInput.value);
  location.assign(url.href);
});

document.body.classList.toggle('compact', compact);
document.body.classList.toggle('with-log', showTransitions);
el.log.hidden = !showTransitions;
setUpLinks();
setFavicon('unknown');
connect();
window.setInterval(tick, 1000);
