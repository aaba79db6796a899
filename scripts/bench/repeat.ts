/**
 * Repeated, alternating measurements: what makes a goal figure hold still on a noisy machine.
 *
 * A benchmark says how to measure its two sides once: the daemon's side (`value`) and the baseline's side
 * (`baseline`: a bare Node program, or the daemon in a reference condition). `repeatPairs` runs them alternately,
 * value, baseline, value, baseline, ... `repetitions` times each, so that load from other work, a CPU's clock or the
 * page cache drifting during the run hits both sides alike; each value is paired with the baseline measured right
 * after it. A figure's value, baseline and ratio are then the medians over the runs (the ratio is the median of the
 * per-run ratios), its range the lowest and highest ratio, and the goal is decided on the median ratio: one unlucky
 * run can neither meet nor miss a goal on its own.
 *
 * A side returns every metric it measured as named numbers; the figures name which metric of each side they compare
 * (`value`, `baseline`), so one measurement can carry several figures (the SSE run gives latency, CPU and memory at
 * once). A figure with no `baseline` metric bounds its value: its median decides, its range is the values'.
 *
 * Used by every benchmark with a goal (ingest, SSE, REST, start-up, memory, hook, CPU per event); a new one plugs in
 * by writing its two `measure once` functions and its figure list.
 */
import type { Figure, PairRun } from './figure.ts';
import { meets, type Goal } from './goals.ts';

export type Metrics = Readonly<Record<string, number>>;

export interface PairFigure {
  readonly name: string;
  readonly unit: string;
  /** The metric of the daemon's side this figure reports. */
  readonly value: string;
  /** The metric of the baseline's side it is compared with; absent: no baseline, the goal bounds the value. */
  readonly baseline?: string;
  readonly goal: Goal | null;
}

export interface PairBench {
  /** For progress lines on stderr. */
  readonly name: string;
  /** How many times each side is measured; at least 3 for a figure with a goal. */
  readonly repetitions: number;
  /** Measures the daemon's side once; `run` counts from 0. */
  value(run: number): Promise<Metrics>;
  /** Measures the baseline's side once, right after the value of the same run. */
  baseline(run: number): Promise<Metrics>;
  readonly figures: readonly PairFigure[];
  /** Progress; by default a `bench:` line on stderr. */
  readonly log?: (line: string) => void;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function metric(metrics: Metrics, key: string, side: string, bench: string): number {
  const value = metrics[key];
  if (typeof value !== 'number') throw new Error(`${bench}: the ${side} side did not report ${JSON.stringify(key)}`);
  return value;
}

/** The figure of a repeated measurement, from its runs (see the module comment for how the median decides). */
export function figureFromRuns(spec: PairFigure, runs: readonly PairRun[]): Figure {
  const finite = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null && Number.isFinite(x));
  const value = median(finite(runs.map((r) => r.value)));
  if (spec.baseline === undefined) {
    const values = finite(runs.map((r) => r.value));
    return {
      name: spec.name,
      value,
      unit: spec.unit,
      baseline: null,
      ratio: null,
      goal: spec.goal,
      met: spec.goal !== null && Number.isFinite(value) ? meets(spec.goal, value) : null,
      runs,
      range: values.length > 0 ? [Math.min(...values), Math.max(...values)] : [NaN, NaN],
    };
  }
  const ratios = finite(runs.map((r) => r.ratio));
  const ratio = ratios.length > 0 ? median(ratios) : null;
  return {
    name: spec.name,
    value,
    unit: spec.unit,
    baseline: median(finite(runs.map((r) => r.baseline))),
    ratio,
    goal: spec.goal,
    met: spec.goal !== null && ratio !== null ? meets(spec.goal, ratio) : null,
    runs,
    range: ratios.length > 0 ? [Math.min(...ratios), Math.max(...ratios)] : [NaN, NaN],
  };
}

export async function repeatPairs(bench: PairBench): Promise<Figure[]> {
  if (!Number.isInteger(bench.repetitions) || bench.repetitions < 1) throw new Error(`${bench.name}: repetitions must be a whole number of at least 1`);
  const runs: PairRun[][] = bench.figures.map(() => []);
  for (let run = 0; run < bench.repetitions; run++) {
    const value = await bench.value(run);
    const baseline = await bench.baseline(run);
    bench.figures.forEach((spec, i) => {
      const v = metric(value, spec.value, 'daemon', bench.name);
      const b = spec.baseline === undefined ? null : metric(baseline, spec.baseline, 'baseline', bench.name);
      runs[i]!.push({ value: v, baseline: b, ratio: b !== null && b > 0 && Number.isFinite(v) ? v / b : null });
    });
    const first = bench.figures.find((f) => f.goal !== null) ?? bench.figures[0];
    const last = first ? runs[bench.figures.indexOf(first)]!.at(-1) : undefined;
    (bench.log ?? progress)(`${bench.name}: run ${run + 1} of ${bench.repetitions}${first && last ? `: ${first.name} ${describeRun(last)}` : ''}`);
  }
  return bench.figures.map((spec, i) => figureFromRuns(spec, runs[i]!));
}

function describeRun(r: PairRun): string {
  const v = r.value.toPrecision(3);
  return r.ratio === null ? v : `${v} / ${r.baseline!.toPrecision(3)} = ${r.ratio.toFixed(2)}`;
}

const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
