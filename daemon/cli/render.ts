/**
 * The human layout of `pocketpaw-status status`, kept to PocketPaw's `_print_table` (pocketpaw-behaviour.md §11):
 * the header block, then one fixed-width row per session. Where upstream lets a long channel or tool name push the
 * next columns out of line, every value here is cut to its column, measured in terminal cells (a CJK character or
 * an emoji takes two), and stripped of control characters (a title must not move the cursor or clear the screen).
 */
import { formatDuration } from './format.ts';

/** What the renderer reads from a snapshot; extra fields are ignored. */
export interface RenderableSnapshot {
  readonly global: {
    readonly state: string;
    readonly active_sessions: number;
    readonly max_concurrent: number;
    readonly uptime_seconds: number;
  };
  readonly sessions: readonly {
    /** A fleet's keys are `<node_id>/<session key>`: the NODE column. */
    readonly session_key?: string;
    readonly session_id: string;
    readonly channel: string;
    readonly title: string | null;
    readonly state: string;
    readonly tool_name: string | null;
    readonly duration_seconds: number;
    readonly error_message: string | null;
  }[];
}

export interface RenderOptions {
  /** ANSI colour for the states (only for a terminal, and never with NO_COLOR). */
  readonly color: boolean;
  /** A fleet's snapshot: a NODE column first. */
  readonly fleet?: boolean;
}

/** Sent by `pocketpaw-status fleet` on every response: its agent snapshot spans nodes (daemon/fleet/server.ts). */
export const FLEET_VIEW_HEADER = 'X-PocketPaw-Status-View';

/** Column widths and the longest value kept in each, as upstream: SESSION(20) keeps 18 characters, STATE 18. */
const COLUMNS = {
  node: { width: 14, keep: 14 },
  session: { width: 20, keep: 18 },
  channel: { width: 12, keep: 12 },
  state: { width: 18, keep: 18 },
  tool: { width: 12, keep: 12 },
} as const;

const RESET = '\x1b[0m';
const STATE_COLORS: Readonly<Record<string, string>> = {
  idle: '\x1b[2m',
  active: '\x1b[32m',
  degraded: '\x1b[1;31m',
  thinking: '\x1b[33m',
  tool_running: '\x1b[36m',
  streaming: '\x1b[32m',
  waiting_for_user: '\x1b[35m',
  error: '\x1b[31m',
};

/** The whole table: starts with a blank line and ends with one, as upstream prints it. */
export function renderStatus(snapshot: RenderableSnapshot, options: RenderOptions): string {
  const paint = (state: string, text: string) => {
    const color = options.color ? STATE_COLORS[state] : undefined;
    return color ? `${color}${text}${RESET}` : text;
  };
  const g = snapshot.global;
  const lines = [
    '',
    'PocketPaw Status',
    `  State:    ${paint(g.state, clean(g.state).toUpperCase())}`,
    `  Sessions: ${g.active_sessions} / ${g.max_concurrent}`,
    `  Uptime:   ${formatDuration(g.uptime_seconds)}`,
  ];
  if (snapshot.sessions.length > 0) {
    const node = options.fleet === true;
    const nodeHead = node ? `${'NODE'.padEnd(COLUMNS.node.width)} ` : '';
    lines.push('', 'Active Sessions', row('SESSION', 'CHANNEL', 'STATE', 'TOOL', 'DURATION').replace(/^ {2}/, `  ${nodeHead}`));
    for (const s of snapshot.sessions) {
      const state = s.state === 'error' ? `error: ${s.error_message ?? 'None'}` : s.state;
      const stateCell = fit(state, COLUMNS.state.keep, COLUMNS.state.width);
      lines.push(
        [
          '  ',
          node ? `${fit((s.session_key ?? '').split('/')[0]!, COLUMNS.node.keep, COLUMNS.node.width)} ` : '',
          fit(s.title || s.session_id, COLUMNS.session.keep, COLUMNS.session.width),
          ' ',
          fit(s.channel, COLUMNS.channel.keep, COLUMNS.channel.width),
          ' ',
          // Padding stays outside the colour, so the columns after it line up whatever the escape codes' length.
          paint(s.state, stateCell.trimEnd()) + ' '.repeat(stateCell.length - stateCell.trimEnd().length),
          ' ',
          fit(s.tool_name || '-', COLUMNS.tool.keep, COLUMNS.tool.width),
          ' ',
          formatDuration(s.duration_seconds),
        ].join(''),
      );
    }
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}

function row(session: string, channel: string, state: string, tool: string, duration: string): string {
  return `  ${session.padEnd(COLUMNS.session.width)} ${channel.padEnd(COLUMNS.channel.width)} ${state.padEnd(COLUMNS.state.width)} ${tool.padEnd(COLUMNS.tool.width)} ${duration}`;
}

/** The value cut to `keep` cells, then padded with spaces to `width` cells. */
export function fit(value: string, keep: number, width: number): string {
  let out = '';
  let cells = 0;
  for (const ch of clean(value)) {
    const w = cellWidth(ch.codePointAt(0)!);
    if (cells + w > keep) break;
    out += ch;
    cells += w;
  }
  return out + ' '.repeat(Math.max(0, width - cells));
}

/** Terminal cells a string takes. */
export function displayWidth(value: string): number {
  let cells = 0;
  for (const ch of value) cells += cellWidth(ch.codePointAt(0)!);
  return cells;
}

// C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060-\u2064\ufe00-\ufe0f]$/u;

/** Control characters become spaces (line breaks, tabs) or `?` (everything else, escape sequences included). */
export function clean(value: string): string {
  return value.replace(CONTROL, (c) => (c === '\n' || c === '\r' || c === '\t' ? ' ' : '?'));
}

/**
 * JSON for a terminal: JSON.stringify escapes C0 controls but writes DEL, C1 controls (0x9b is a one-byte CSI) and
 * the bidirectional overrides raw. Those are written as \uXXXX escapes instead: the same data, nothing a terminal
 * acts on.
 */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** East Asian wide and fullwidth ranges and the common emoji blocks take two cells; combining marks none. */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe30, 0xfe4f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f680, 0x1f6ff],
  [0x1f900, 0x1f9ff],
  [0x1fa70, 0x1faff],
  [0x20000, 0x3fffd],
];

function cellWidth(cp: number): number {
  if (cp < 0x300) return 1;
  if (ZERO_WIDTH.test(String.fromCodePoint(cp))) return 0;
  for (const [lo, hi] of WIDE) if (cp >= lo && cp <= hi) return 2;
  return 1;
}
