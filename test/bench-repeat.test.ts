/**
 * The benchmarks' repetition (scripts/bench/repeat.ts): each goal figure's pair runs several times, alternating, and
 * the median decides. Pure logic, driven with made-up measurements: no timing is asserted anywhere.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatTable } from '../scripts/bench/figure.ts';
import { figureFromRuns, median, repeatPairs, type Metrics } from '../scripts/bench/repeat.ts';

const quiet = () => {};

test('the sides alternate, value then baseline, once per repetition', async () => {
  const order: string[] = [];
  await repeatPairs({
    name: 'order',
    repetitions: 3,
    value: async (run) => (order.push(`value ${run}`), { x: 1 }),
    baseline: async (run) => (order.push(`baseline ${run}`), { x: 1 }),
    figures: [{ name: 'x', unit: 'ms', value: 'x', baseline: 'x', goal: null }],
    log: quiet,
  });
  assert.deepEqual(order, ['value 0', 'baseline 0', 'value 1', 'baseline 1', 'value 2', 'baseline 2']);
});

test('the median ratio decides the goal: one bad run cannot miss it, one good run cannot meet it', async () => {
  const series = (values: number[], baselines: number[]) => {
    let v = 0;
    let b = 0;
    return {
      value: async (): Promise<Metrics> => ({ t: values[v++]! }),
      baseline: async (): Promise<Metrics> => ({ t: baselines[b++]! }),
    };
  };
  const spec = { name: 'latency', unit: 'ms', value: 't', baseline: 't', goal: '<= 1.1' as const };
  // Ratios 1.0, 2.0, 1.05: the median 1.05 meets the goal though one run is twice the baseline.
  const [steady] = await repeatPairs({ name: 'a', repetitions: 3, ...series([10, 40, 21], [10, 20, 20]), figures: [spec], log: quiet });
  assert.equal(steady!.ratio, 1.05);
  assert.equal(steady!.met, true);
  assert.deepEqual(steady!.range, [1, 2]);
  assert.deepEqual(
    steady!.runs?.map((r) => r.ratio),
    [1, 2, 1.05],
  );
  assert.equal(steady!.value, 21, 'value: the median of the values');
  assert.equal(steady!.baseline, 20, 'baseline: the median of the baselines');
  // Ratios 0.5, 1.5, 1.6: one good run, a missed goal.
  const [flaky] = await repeatPairs({ name: 'b', repetitions: 3, ...series([5, 15, 16], [10, 10, 10]), figures: [spec], log: quiet });
  assert.equal(flaky!.ratio, 1.5);
  assert.equal(flaky!.met, false);
});

test('one measurement carries several figures, and a figure without a baseline bounds its median value', async () => {
  let run = 0;
  const figures = await repeatPairs({
    name: 'memory',
    repetitions: 3,
    value: async () => ({ idle: 60, perSession: [2.4, 2.9, 2.5][run++]! }),
    baseline: async () => ({ idle: 50 }),
    figures: [
      { name: 'idle', unit: 'MB', value: 'idle', baseline: 'idle', goal: '<= 1.12' },
      { name: 'per session', unit: 'KiB', value: 'perSession', goal: '<= 2.6' },
    ],
    log: quiet,
  });
  assert.equal(figures[0]!.ratio, 1.2);
  assert.equal(figures[0]!.met, false);
  assert.equal(figures[1]!.baseline, null);
  assert.equal(figures[1]!.ratio, null);
  assert.equal(figures[1]!.value, 2.5);
  assert.equal(figures[1]!.met, true);
  assert.deepEqual(figures[1]!.range, [2.4, 2.9]);
});

test('a side that does not report a metric its figure names is an error, not a silent NaN', async () => {
  await assert.rejects(
    repeatPairs({
      name: 'broken',
      repetitions: 3,
      value: async () => ({ a: 1 }),
      baseline: async () => ({ a: 1 }),
      figures: [{ name: 'b', unit: 'ms', value: 'b', baseline: 'a', goal: null }],
      log: quiet,
    }),
    /broken: the daemon side did not report "b"/,
  );
});

test('the table shows the range and the number of runs; JSON keeps every run', () => {
  const f = figureFromRuns({ name: 'REST requests/s', unit: 'req/s', value: 'rps', baseline: 'rps', goal: '>= 0.9' }, [
    { value: 90, baseline: 100, ratio: 0.9 },
    { value: 95, baseline: 100, ratio: 0.95 },
    { value: 99, baseline: 100, ratio: 0.99 },
  ]);
  const table = formatTable([f]);
  assert.match(table, /range/);
  assert.match(table, /0\.90-0\.99 \(3 runs\)/);
  const json = JSON.parse(JSON.stringify(f)) as { runs: unknown[]; range: number[]; met: boolean };
  assert.equal(json.runs.length, 3);
  assert.deepEqual(json.range, [0.9, 0.99]);
  assert.equal(json.met, true);
  assert.equal(median([3, 1, 2, 10]), 2.5);
});
