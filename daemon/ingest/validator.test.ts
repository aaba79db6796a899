import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';

import { EVENT_TYPES, StatusEvent } from '../../protocol/events.ts';
import { compileUnion, objectSource } from './validator.ts';

const compiled = compileUnion<StatusEvent>(StatusEvent, 'type');
const SEED = Number(process.env.POCKETPAW_TEST_SEED ?? 20261128);

/** Every field name of every event type, plus names no schema has. */
const FIELDS = [
  ...new Set(StatusEvent.def.options.flatMap((o) => Object.keys(o.def.shape))),
  'params',
  'content',
  'constructor',
  'toString',
];

/** Values on both sides of every check the schemas make: types, null, integers, bounds, non-finite numbers. */
const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, false, '', 'x', 0, -0, 1, 2, -1, 0.5, 1.5, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), NaN, Infinity, -Infinity),
  fc.constantFrom(...EVENT_TYPES),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom([], {}, [1], { a: 1 }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** Mostly values some field accepts, so that accepted events carry many fields; the rest are near misses. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.oneof(fc.string({ maxLength: 8 }), fc.nat(), fc.constantFrom(null, 1, 2 ** 53 - 1)), weight: 3 },
  { arbitrary: value, weight: 1 },
);

/** Plain objects, and the shapes a JS caller of decodeObject could pass: null prototype, fields inherited. */
const event: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.oneof({ arbitrary: fc.constantFrom(...EVENT_TYPES), weight: 4 }, { arbitrary: value, weight: 1 }),
    fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 7 }),
    fc.constantFrom('plain', 'null-prototype', 'inherited'),
  )
  .map(([type, fields, kind]) => {
    const own = { ...fields, type };
    if (kind === 'plain') return own;
    if (kind === 'null-prototype') return Object.assign(Object.create(null) as Record<string, unknown>, own);
    const [first, ...rest] = Object.keys(fields);
    if (first === undefined) return own;
    const child = Object.create({ [first]: fields[first] }) as Record<string, unknown>;
    for (const key of rest) child[key] = fields[key];
    child.type = type;
    return child;
  });

describe('the compiled validator', () => {
  test('covers every event type of the protocol, so no event of v1 pays for zod unless it is invalid', () => {
    assert.deepEqual([...compiled.keys()].sort(), [...EVENT_TYPES].sort());
  });

  test(`accepts exactly what zod accepts, with the same output (fast-check, seed ${SEED})`, () => {
    fc.assert(
      fc.property(event, (input) => {
        const parser = typeof input.type === 'string' ? compiled.get(input.type) : undefined;
        const ours = parser ? parser(input) : null;
        const theirs = StatusEvent.safeParse(input);
        if (theirs.success) {
          assert.ok(parser, `zod accepted a type the compiled validator does not know: ${String(input.type)}`);
          assert.deepStrictEqual(ours, theirs.data);
        } else {
          assert.equal(ours, null, `the compiled validator accepted what zod rejects: ${theirs.error.issues[0]?.message}`);
        }
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });

  test('typical events of every type are accepted as zod returns them, unknown fields dropped', () => {
    const samples: Record<string, unknown>[] = [
      { type: 'hello', agent: 'pocketpaw', version: '1.2', max_concurrent: 3 },
      { type: 'agent_start', session_key: 'web:1', title: 'T', v: 1 },
      { type: 'tool_start', session_key: 'web:1', name: 'bash', params: { command: 'ls' } },
      { type: 'tool_result', session_key: 'web:1', name: 'agent', status: 'error', result: { nested: [1] } },
      { type: 'token_usage', session_key: 'web:1', input_tokens: 12, output_tokens: 0, model: 'm' },
    ];
    for (const input of samples) {
      const parsed = StatusEvent.parse(input);
      assert.deepStrictEqual(compiled.get(input.type as string)!(input), parsed);
      assert.ok(!('params' in parsed) && !('model' in parsed));
    }
  });

  test('a construct it does not compile leaves that event type to zod, instead of guessing', () => {
    const symbol = Symbol('field');
    const union = z.discriminatedUnion('type', [
      z.object({ type: z.literal('plain'), name: z.string() }),
      z.object({ type: z.literal('checked'), name: z.string().min(1) }),
      z.object({ type: z.literal('listed'), names: z.array(z.string()) }),
      z.object({ type: z.literal('anything') }).catchall(z.string()),
      z.object({ type: z.literal('bounded'), n: z.number().int().min(1).max(9) }),
      // zod 4's format schemas carry their rule outside `checks`.
      z.object({ type: z.literal('int'), n: z.int() }),
      z.object({ type: z.literal('int32'), n: z.int32() }),
      z.object({ type: z.literal('uint32'), n: z.uint32() }),
      z.object({ type: z.literal('email'), s: z.email() }),
      z.object({ type: z.literal('uuid'), s: z.uuid() }),
      z.object({ type: z.literal('coerced'), n: z.coerce.number() }),
      z.object({ type: z.literal('exact'), s: z.string().exactOptional() }),
      z.object({ type: z.literal('refined'), s: z.string() }).refine(() => false),
      z.object({ type: z.literal('overwritten'), s: z.string() }).overwrite((o) => ({ ...o, s: 'X' })),
      z.object({ type: z.literal('transformed'), s: z.string().transform((x) => x.length) }),
      z.object({ type: z.literal('defaulted'), s: z.string().default('d') }),
      z.object({ type: z.literal('symbol'), [symbol]: z.string() }),
    ]);
    const parsers = compileUnion<Record<string, unknown>>(union, 'type');
    assert.deepEqual([...parsers.keys()].sort(), ['bounded', 'plain']);
    assert.equal(compileUnion(union.refine(() => true), 'type').size, 0, 'a check on the union leaves every option to zod');
    assert.equal(parsers.get('bounded')!({ type: 'bounded', n: 0 }), null);
    assert.equal(parsers.get('bounded')!({ type: 'bounded', n: 10 }), null);
    assert.deepEqual(parsers.get('bounded')!({ type: 'bounded', n: 9 }), { type: 'bounded', n: 9 });
  });

  test('the generated source names fields only as JSON-quoted strings', () => {
    const source = objectSource({ 'a"); process.exit(1); ("': z.string() });
    assert.ok(source);
    assert.ok(source.includes(JSON.stringify('a"); process.exit(1); ("')));
    const parse = new Function('input', source) as (input: Record<string, unknown>) => unknown;
    assert.deepEqual(parse({ 'a"); process.exit(1); ("': 'ok' }), { 'a"); process.exit(1); ("': 'ok' });
  });
});
