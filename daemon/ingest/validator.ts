/**
 * The hot-path validator: generated at start-up from the zod schemas of protocol/events.ts, never written by hand.
 *
 * Why: zod 4 allocates a payload object and an issues array for every field of every event; on the ingest path that
 * cost about 250 ns an event, half of what JSON.parse itself costs (scripts/bench). This walks the same schema
 * objects once and emits one plain function per event type for the few constructs the protocol uses (literal,
 * string, number with integer and bound checks, union, unknown, optional, nullable), the way zod's own object JIT
 * does, minus the allocations. So the contract stays written once: a field added to a schema is validated here with
 * no change to this file, and a construct this file does not know sends its whole event type through zod.
 *
 * It can only ever accept: it returns the object zod would return, or null, and then zod decides (and words the
 * error). validator.test.ts checks on generated inputs that it accepts exactly what zod accepts, with equal output.
 */
import type { z } from 'zod';

type Schema = z.core.$ZodType;

/** Parses an object whose discriminator is already known; null when it is not valid. */
export type CompiledParser<T> = (input: Record<string, unknown>) => T | null;

/**
 * One parser per discriminator value of a discriminated union of objects. Options using a construct this file does
 * not compile are left out, and the caller uses zod for them.
 */
export function compileUnion<T>(union: z.ZodDiscriminatedUnion, discriminator: string): Map<string, CompiledParser<T>> {
  const parsers = new Map<string, CompiledParser<T>>();
  // A check on the union itself (a refine) applies to every option: leave them all to zod.
  if (union.def.checks?.length) return parsers;
  for (const option of union.def.options) {
    const def = (option as Schema)._zod.def;
    if (def.type !== 'object' || !('shape' in def) || ('catchall' in def && def.catchall !== undefined) || def.checks?.length) continue;
    const shape = def.shape as Record<string, Schema>;
    // Symbol keys are invisible to Object.entries below: such a shape would be checked only in part.
    if (Object.getOwnPropertySymbols(shape).length > 0) continue;
    const tag = shape[discriminator]?._zod.def;
    if (!tag || tag.type !== 'literal' || !('values' in tag)) continue;
    const parser = compileObject<T>(shape);
    if (!parser) continue;
    for (const value of tag.values as unknown[]) if (typeof value === 'string') parsers.set(value, parser);
  }
  return parsers;
}

/** The source of one object parser; null when a field uses a construct not compiled here. */
export function objectSource(shape: Record<string, Schema>): string | null {
  const lines = ['const output = {};', 'let v;'];
  for (const [key, schema] of Object.entries(shape)) {
    const test = condition(schema);
    // zod never copies a "__proto__" key; rather than mirror that, leave such a schema to zod.
    if (test === null || key === '__proto__') return null;
    const k = JSON.stringify(key);
    // Presence is tested with `in`, as zod's object parser does; an absent key is written to the output only when
    // present in the input, and is an error only when the field is not optional.
    const absent = schema._zod.optin === 'optional' ? '' : ' else return null;';
    // A required single-value literal (the discriminator) is written as the constant itself: the same value, but an
    // interned string, so later comparisons and lookups of `type` do not compare characters.
    const out = absent && isSingleLiteral(schema) && typeof literalValues(schema)[0] === 'string' ? JSON.stringify(literalValues(schema)[0]) : 'v';
    lines.push(`if (${k} in input) { v = input[${k}]; if (!(${test})) return null; output[${k}] = ${out}; }${absent}`);
  }
  lines.push('return output;');
  return lines.join('\n');
}

function compileObject<T>(shape: Record<string, Schema>): CompiledParser<T> | null {
  const source = objectSource(shape);
  if (source === null) return null;
  try {
    // The source is built only from the schema's own keys (JSON-quoted) and the fixed expressions below.
    return new Function('input', source) as CompiledParser<T>;
  } catch {
    // Code generation is disallowed (--disallow-code-generation-from-strings): zod validates everything, as zod
    // itself does then.
    return null;
  }
}

interface Def {
  readonly type: string;
  readonly checks?: readonly unknown[];
  /** Set by zod 4's format schemas (z.int(), z.email(), ...): a rule this file does not read. */
  readonly format?: unknown;
  readonly check?: unknown;
  readonly coerce?: unknown;
}

/** A schema whose whole rule is its type (and, for numbers, the checks numberCondition reads). */
function plain(schema: Schema): boolean {
  const def = schema._zod.def as Def;
  if (def.format !== undefined || def.check !== undefined || def.coerce) return false;
  if (def.type !== 'number' && def.checks?.length) return false;
  // exactOptional() has the type 'optional' but refuses a present `undefined`.
  return !schema._zod.traits.has('$ZodExactOptional');
}

/** A JavaScript expression over `v` that is true exactly when zod accepts `v` for this schema (and then returns it as is). */
function condition(schema: Schema): string | null {
  if (!plain(schema)) return null;
  const def = schema._zod.def;
  switch (def.type) {
    case 'optional':
      return either('v === undefined', condition((def as z.core.$ZodOptionalDef).innerType));
    case 'nullable':
      return either('v === null', condition((def as z.core.$ZodNullableDef).innerType));
    case 'literal': {
      const values = literalValues(schema);
      if (!values.every((x) => typeof x === 'string' || typeof x === 'boolean' || x === null || (typeof x === 'number' && Number.isFinite(x)))) return null;
      return values.map((x) => `v === ${JSON.stringify(x)}`).join(' || ') || 'false';
    }
    case 'string':
      return `typeof v === "string"`;
    case 'number':
      return numberCondition(def.checks ?? []);
    case 'unknown':
      return 'true';
    case 'union': {
      const options = (def as z.core.$ZodUnionDef).options.map(condition);
      if (options.length === 0 || options.some((o) => o === null)) return null;
      return options.map((o) => `(${o})`).join(' || ');
    }
    default:
      return null;
  }
}

function literalValues(schema: Schema): readonly unknown[] {
  return (schema._zod.def as z.core.$ZodLiteralDef<z.core.util.Literal>).values;
}

function isSingleLiteral(schema: Schema): boolean {
  return schema._zod.def.type === 'literal' && literalValues(schema).length === 1;
}

function either(a: string, b: string | null): string | null {
  return b === null ? null : `${a} || (${b})`;
}

/** zod 4's number accepts finite numbers only; `.int()` is a safe-integer format; bounds are greater/less_than. */
function numberCondition(checks: readonly z.core.$ZodCheck<never>[]): string | null {
  const parts = ['typeof v === "number"', 'Number.isFinite(v)'];
  for (const check of checks) {
    const def = check._zod.def as { check: string; format?: string; value?: unknown; inclusive?: boolean };
    if (def.check === 'number_format' && def.format === 'safeint') {
      parts.push('Number.isSafeInteger(v)');
    } else if ((def.check === 'greater_than' || def.check === 'less_than') && typeof def.value === 'number' && Number.isFinite(def.value)) {
      const op = (def.check === 'greater_than' ? '>' : '<') + (def.inclusive === true ? '=' : '');
      parts.push(`v ${op} ${def.value}`);
    } else {
      return null;
    }
  }
  return parts.join(' && ');
}
