/**
 * The shape every benchmark reports, and the two ways it prints: a table for people, one JSON object for machines.
 */

export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** The same quantity for the baseline, measured in the same run; null when there is none. */
  readonly baseline: number | null;
  /** value / baseline; null without a baseline. */
  readonly ratio: number | null;
  /** What counts as good, in words (e.g. ">= 0.6 of baseline"); null for figures that are only reported. */
  readonly goal: string | null;
  /** Whether the goal is met; null when there is no goal. */
  readonly met: boolean | null;
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
    goal: goalRatio === null ? null : `>= ${goalRatio} of baseline`,
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

export function formatTable(figures: readonly Figure[]): string {
  const rows = [
    ['figure', 'value', 'baseline', 'ratio', 'goal', 'met'],
    ...figures.map((f) => [
      f.name,
      `${num(f.value)} ${f.unit}`,
      f.baseline === null ? '-' : `${num(f.baseline)} ${f.unit}`,
      f.ratio === null ? '-' : f.ratio.toFixed(2),
      f.goal ?? '-',
      f.met === null ? '-' : f.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function printFigures(figures: readonly Figure[], json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify({ figures })}\n` : formatTable(figures));
}
