/**
 * The shape every benchmark reports, and the two ways it prints: a table for people, one JSON object for machines.
 */

import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same quantity for the baseline, measured in the same run; null when there is none. */
  readonly baseline: number | null;
  /** value / baseline; null without a baseline. */
  readonly ratio: number | null;
  /**
   * The bound the figure must meet, as text: `>= 0.6` or `<= 1.25` bound the ratio (value / baseline); a figure
   * without a baseline (ratio null) bounds its value, in its unit (`<= 50`). Null for figures only reported.
   */
  readonly goal: string | null;
  /** Whether the goal is met; null when there is no goal. */
  readonly met: boolean | null;
  /**
   * Each repetition of a repeated figure (see repeat.ts), in the order they ran: its value, its baseline and their
   * ratio. A repeated figure's value, baseline and ratio are the medians of these, each taken on its own (so the ratio
   * is the median of the per-run ratios, not value / baseline), and `met` is decided on the median. Absent for a
   * figure measured once.
   */
  readonly runs?: readonly PairRun[];
  /** The lowest and highest ratio over the runs (of the value, for a figure without a baseline); absent when not repeated. */
  readonly range?: readonly [number, number];
}

/** One repetition of a figure: a value and, measured right before or after it, its baseline. */
export interface PairRun {
  readonly value: number;
  readonly baseline: number | null;
  readonly ratio: number | null;
}

/** A figure measured against a baseline; `goalRatio` is the least acceptable value / baseline, when there is a goal. */
export function compared(name: string, value: number, unit: string, baseline: number, goalRatio: number | null = null): Figure {
  const ratio = baseline > 0 ? value / baseline : null;
  return {
    name,
    value,
    unit,
    baseline,
    ratio,
    goal: goalRatio === null ? null : `>= ${goalRatio}`,
    met: goalRatio === null || ratio === null ? null : ratio >= goalRatio,
  };
}

/** A figure reported on its own. */
export function plain(name: string, value: number, unit: string): Figure {
  return { name, value, unit, baseline: null, ratio: null, goal: null, met: null };
}

function num(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) >= 1000) return n.toLocaleString('en-US');
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return n.toPrecision(3);
}

/** The goal as the table shows it: a bound on the value itself carries the unit, so it cannot be read as a ratio. */
function goalText(f: Figure): string {
  if (f.goal === null) return '-';
  return f.baseline === null ? `${f.goal} ${f.unit}` : f.goal;
}

/** `0.98-1.12 (3 runs)` for a repeated figure: the range of the ratio, or of the value when there is no baseline. */
function rangeText(f: Figure): string {
  if (f.range === undefined || f.runs === undefined) return '-';
  const [lo, hi] = f.range;
  const text = f.baseline === null ? `${num(lo)}-${num(hi)} ${f.unit}` : `${lo.toFixed(2)}-${hi.toFixed(2)}`;
  return `${text} (${f.runs.length} runs)`;
}

export function formatTable(figures: readonly Figure[]): string {
  const rows = [
    ['figure', 'value', 'baseline', 'ratio', 'range', 'goal', 'met'],
    ...figures.map((f) => [
      f.name,
      Number.isFinite(f.value) ? `${num(f.value)} ${f.unit}` : 'n/a',
      f.baseline === null ? '-' : `${num(f.baseline)} ${f.unit}`,
      f.ratio === null ? '-' : f.ratio.toFixed(2),
      rangeText(f),
      goalText(f),
      f.met === null ? '-' : f.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** What the figures were measured on: without it, a table cannot be compared with another. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memory_bytes: number;
  readonly node: string;
  readonly os: string;
  /** 1, 5 and 15 minute load averages when the run began: above the core count, other work shared the machine. */
  readonly load_average: readonly [number, number, number];
  readonly date: string;
}

export function machineInfo(): Machine {
  let distro = '';
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // Not every system has /etc/os-release; the kernel release is enough.
  }
  const [l1, l5, l15] = os.loadavg();
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}${distro ? ` (${distro})` : ''}`,
    load_average: [round2(l1 ?? 0), round2(l5 ?? 0), round2(l15 ?? 0)],
    date: new Date().toISOString(),
  };
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export function formatMachine(m: Machine): string {
  const gib = (m.memory_bytes / 1024 ** 3).toFixed(1);
  return `machine: ${m.cpu}, ${m.cores} cores, ${gib} GiB, Node ${m.node}, ${m.os}, load average ${m.load_average.join(' ')} at start, ${m.date}\n`;
}

export function printFigures(figures: readonly Figure[], json: boolean, machine: Machine = machineAtStart): void {
  process.stdout.write(json ? `${JSON.stringify({ machine, figures })}\n` : formatMachine(machine) + formatTable(figures));
}

/** Taken when the benchmark scripts load, before any of them has put load on the machine. */
const machineAtStart: Machine = machineInfo();
