import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Logger } from '../log.ts';
import { WarningLimiter } from './warnings.ts';

function capture(): { log: Logger; lines: { fields: Record<string, unknown>; msg: string }[] } {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger;
  return { log, lines };
}

test('one line per reason per window; the rest counted and carried by the next line', () => {
  let now = 0;
  const { log, lines } = capture();
  const limiter = new WarningLimiter(log, () => now, 10_000);
  for (let i = 0; i < 100; i++) limiter.warn('a', { i }, 'bad line');
  limiter.warn('b', {}, 'refused');
  assert.deepEqual(lines.map((l) => [l.fields.warning, l.fields.i]), [['a', 0], ['b', undefined]]);
  now = 10_000;
  limiter.warn('a', { i: 100 }, 'bad line');
  assert.equal(lines.length, 3);
  assert.equal(lines[2]!.fields.suppressed, 99);
  assert.match(lines[2]!.msg, /99 more like it not logged/);
});

test('flush() logs the count of a window that ended without another warning, once', () => {
  let now = 0;
  const { log, lines } = capture();
  const limiter = new WarningLimiter(log, () => now, 10_000);
  limiter.warn('a', {}, 'bad line');
  limiter.warn('a', {}, 'bad line');
  limiter.warn('a', {}, 'bad line');
  limiter.flush();
  assert.equal(lines.length, 1, 'nothing before the window ends');
  now = 10_000;
  limiter.flush();
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.fields.suppressed, 2);
  now = 30_000;
  limiter.flush();
  assert.equal(lines.length, 2, 'nothing more to say');
  limiter.warn('a', {}, 'bad line');
  assert.equal(lines.length, 3, 'a new window logs at once');
});

test('a burst: the first N lines of a window are written, at the level asked for; the rest are summed up at that level', () => {
  let now = 0;
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const log = {
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', fields, msg }),
    info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', fields, msg }),
  } as unknown as Logger;
  const limiter = new WarningLimiter(log, () => now, 10_000, 3);
  for (let i = 0; i < 10; i++) limiter.info('agent_connected', { producer: i }, 'agent connected');
  assert.deepEqual(lines.map((l) => [l.level, l.fields.producer, l.fields.limited, l.fields.warning]), [0, 1, 2].map((i) => ['info', i, 'agent_connected', undefined]));
  now = 10_000;
  limiter.flush();
  assert.equal(lines.length, 4);
  assert.deepEqual([lines[3]!.level, lines[3]!.fields.suppressed], ['info', 7]);
  assert.match(lines[3]!.msg, /^7 more like this not logged in the last 10 s: agent connected$/);
  limiter.info('agent_connected', { producer: 10 }, 'agent connected');
  assert.equal(lines.length, 4, 'the summary spent the burst of its window');
});
