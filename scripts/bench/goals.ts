/** Figures whose goal is a bound on value / baseline, written as text the way the report prints it. */
import type { Figure } from './figure.ts';

export type Goal = `>= ${number}` | `<= ${number}`;

export function ratioFigure(name: string, value: number, unit: string, baseline: number, goal: Goal | null): Figure {
  const ratio = baseline > 0 && Number.isFinite(value) ? value / baseline : null;
  let met: boolean | null = null;
  if (goal !== null && ratio !== null) {
    const bound = Number(goal.slice(3));
    met = goal.startsWith('>=') ? ratio >= bound : ratio <= bound;
  }
  return { name, value, unit, baseline, ratio, goal, met };
}
