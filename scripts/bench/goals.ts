/** Figures whose goal is a bound on value / baseline, written as text the way the report prints it. */
import type { Figure } from './figure.ts';

export type Goal = `>= ${number}` | `<= ${number}`;

export function meets(goal: Goal, x: number): boolean {
  const bound = Number(goal.slice(3));
  return goal.startsWith('>=') ? x >= bound : x <= bound;
}

export function ratioFigure(name: string, value: number, unit: string, baseline: number, goal: Goal | null): Figure {
  const ratio = baseline > 0 && Number.isFinite(value) ? value / baseline : null;
  const met = goal !== null && ratio !== null ? meets(goal, ratio) : null;
  return { name, value, unit, baseline, ratio, goal, met };
}

/** A figure with no baseline whose goal bounds the value itself, in its own unit (e.g. `<= 50` MB above idle). */
export function absoluteFigure(name: string, value: number, unit: string, goal: Goal): Figure {
  return { name, value, unit, baseline: null, ratio: null, goal, met: Number.isFinite(value) ? meets(goal, value) : null };
}
