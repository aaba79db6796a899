import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { z } from 'zod';

import { EVENT_SCHEMAS, EVENT_TYPES, StatusEvent } from '../../protocol/events.ts';
import { decodeLine, decodeObject, type Decoded } from './decode.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const decode = (text: string): Decoded => decodeLine(Buffer.from(text, 'utf8'));

function rejected(d: Decoded): { reason: string; message: string } {
  assert.equal(d.kind, 'rejected', `expected a rejection, got ${JSON.stringify(d)}`);
  return d as Extract<Decoded, { kind: 'rejected' }>;
}

function event(d: Decoded): Extract<Decoded, { kind: 'event' }>['event'] {
  assert.equal(d.kind, 'event', `expected an event, got ${JSON.stringify(d)}`);
  return (d as Extract<Decoded, { kind: 'event' }>).event;
}

describe('decodeLine: rejected lines', () => {
  test('invalid UTF-8 is rejected before parsing, even inside a JSON string', () => {
    const bytes = Buffer.concat([Buffer.from('{"type":"title","session_key":"a:b","title":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    assert.deepEqual(rejected(decodeLine(bytes)), { kind: 'rejected', reason: 'invalid_utf8', message: 'invalid UTF-8' });
    // A lone continuation byte and an overlong encoding of "/" are invalid too.
    assert.equal(rejected(decodeLine(Buffer.from([0x80]))).reason, 'invalid_utf8');
    assert.equal(rejected(decodeLine(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]))).reason, 'invalid_utf8');
  });

  test('invalid JSON', () => {
    for (const text of ['{', '{"type":"thinking",}', "{'type':'thinking'}", 'type=thinking', '{"type":"thinking"} trailing', '   ']) {
      assert.deepEqual(rejected(decode(text)), { kind: 'rejected', reason: 'invalid_json', message: 'invalid JSON' }, text);
    }
  });

  test('the rejection message never repeats the line', () => {
    const marker = 'SECRET_PAYLOAD_MARKER';
    for (const text of [`{"type":"thinking","x":"${marker}"`, `[${JSON.stringify(marker)}]`, `{"type":"tool_start","session_key":"a:b","name":{"${marker}":1}}`]) {
      assert.ok(!rejected(decode(text)).message.includes(marker), text);
    }
  });

  test('null, numbers, strings, booleans and arrays are not objects', () => {
    const cases: [string, string][] = [
      ['null', 'expected a JSON object, got null'],
      ['42', 'expected a JSON object, got number'],
      ['-1.5e3', 'expected a JSON object, got number'],
      ['"thinking"', 'expected a JSON object, got string'],
      ['true', 'expected a JSON object, got boolean'],
      ['[{"type":"thinking","session_key":"a:b"}]', 'expected a JSON object, got an array'],
      ['[]', 'expected a JSON object, got an array'],
    ];
    for (const [text, message] of cases) assert.deepEqual(rejected(decode(text)), { kind: 'rejected', reason: 'not_object', message }, text);
  });

  test('decodeObject (used by `emit` on JS values) refuses arrays and functions that carry a type', () => {
    const array = Object.assign([], { type: 'hello' });
    const fn = Object.assign(() => {}, { type: 'hello' });
    assert.equal(rejected(decodeObject(array)).message, 'expected a JSON object, got an array');
    assert.equal(rejected(decodeObject(fn)).message, 'expected a JSON object, got function');
  });

  test('every event type takes zod\'s compiled fast path: each schema compiles whole (z.compile strict mode)', () => {
    for (const type of EVENT_TYPES) {
      assert.doesNotThrow(() => z.compile(EVENT_SCHEMAS[type], { strict: true }), type);
      const input = { type, session_key: 'web:1', extra: { dropped: true } };
      assert.deepEqual(decodeObject(input), { kind: 'event', event: StatusEvent.parse(input) }, type);
    }
  });

  test('without code generation from strings (node --disallow-code-generation-from-strings) zod validates alone', () => {
    const script = `import('./daemon/ingest/decode.ts').then(({ decodeLine }) => process.stdout.write(JSON.stringify([
      decodeLine('{"type":"tool_start","session_key":"a:b","name":"x","params":{}}'),
      decodeLine('{"type":"tool_start","session_key":"a:b","name":3}'),
    ])))`;
    const out = execFileSync(process.execPath, ['--disallow-code-generation-from-strings', '--import', 'tsx', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), [
      { kind: 'event', event: { type: 'tool_start', session_key: 'a:b', name: 'x' } },
      { kind: 'rejected', reason: 'invalid_event', message: 'tool_start: field "name": Invalid input: expected string, received number' },
    ]);
  });

  test('a missing or non-string type is an invalid event', () => {
    for (const text of ['{}', '{"session_key":"a:b"}', '{"type":5,"session_key":"a:b"}', '{"type":"","session_key":"a:b"}', '{"type":null}']) {
      assert.equal(rejected(decode(text)).reason, 'invalid_event', text);
    }
  });

  test('wrong field types are invalid events, and the message names the field', () => {
    const cases: [object, string][] = [
      [{ type: 'tool_start', session_key: 'a:b', name: 5 }, 'name'],
      [{ type: 'token_usage', session_key: 'a:b', input_tokens: 'x' }, 'input_tokens'],
      [{ type: 'token_usage', session_key: 'a:b', output: -1 }, 'output'],
      [{ type: 'token_usage', session_key: 'a:b', input: 1.5 }, 'input'],
      [{ type: 'thinking', session_key: 5 }, 'session_key'],
      [{ type: 'agent_start', session_key: 'a:b', title: ['x'] }, 'title'],
      [{ type: 'error', session_key: 'a:b', message: {} }, 'message'],
      [{ type: 'hello', max_concurrent: 0 }, 'max_concurrent'],
      [{ type: 'hello', max_concurrent: '5' }, 'max_concurrent'],
    ];
    for (const [value, field] of cases) {
      const r = rejected(decode(JSON.stringify(value)));
      assert.equal(r.reason, 'invalid_event', JSON.stringify(value));
      assert.match(r.message, new RegExp(`^${(value as { type: string }).type}: field "${field}"`), JSON.stringify(value));
    }
  });

  test('v other than 1 is rejected with bad_version, even for an unknown type', () => {
    for (const v of [2, 0, '1', null, 1.5]) {
      const r = rejected(decode(JSON.stringify({ v, type: 'thinking', session_key: 'a:b' })));
      assert.equal(r.reason, 'bad_version', `v ${JSON.stringify(v)}`);
      assert.match(r.message, /unsupported protocol version/);
    }
    assert.equal(rejected(decode('{"v":2,"type":"some_future_event","session_key":"a:b"}')).reason, 'bad_version');
  });
});

describe('decodeLine: accepted and ignored lines', () => {
  test('v: 1 and no v are both accepted', () => {
    assert.deepEqual(event(decode('{"v":1,"type":"thinking","session_key":"a:b"}')), { v: 1, type: 'thinking', session_key: 'a:b' });
    assert.deepEqual(event(decode('{"type":"thinking","session_key":"a:b"}')), { type: 'thinking', session_key: 'a:b' });
  });

  test('an unknown type is ignored, not rejected (forward compatibility)', () => {
    assert.deepEqual(decode('{"type":"thinking_done","session_key":"a:b"}'), { kind: 'ignored', reason: 'unknown_type' });
    assert.deepEqual(decode('{"type":"mc_whatever"}'), { kind: 'ignored', reason: 'unknown_type' });
  });

  test('a missing or empty session_key is ignored for every type but hello', () => {
    assert.deepEqual(decode('{"type":"thinking"}'), { kind: 'ignored', reason: 'no_session_key' });
    assert.deepEqual(decode('{"type":"agent_start","session_key":""}'), { kind: 'ignored', reason: 'no_session_key' });
    assert.deepEqual(decode('{"type":"agent_end"}'), { kind: 'ignored', reason: 'no_session_key' });
    // Python forwarders send None for a missing key: ignored like upstream, not rejected.
    assert.deepEqual(decode('{"type":"thinking","session_key":null}'), { kind: 'ignored', reason: 'no_session_key' });
  });

  test('hello needs no session_key', () => {
    assert.deepEqual(event(decode('{"type":"hello","agent":"x","version":"1.2","max_concurrent":7}')), {
      type: 'hello',
      agent: 'x',
      version: '1.2',
      max_concurrent: 7,
    });
    assert.deepEqual(event(decode('{"type":"hello"}')), { type: 'hello' });
  });

  test('extra fields are ignored and not passed on', () => {
    const e = event(decode('{"type":"tool_start","session_key":"a:b","name":"bash","params":{"cmd":"ls"},"content":"x","model":"m"}'));
    assert.deepEqual(e, { type: 'tool_start', session_key: 'a:b', name: 'bash' });
  });

  test('PocketPaw\'s own payloads decode: tool as the name, backend token keys, a non-string result', () => {
    assert.deepEqual(event(decode('{"type":"tool_start","session_key":"a:b","tool":"grep"}')), { type: 'tool_start', session_key: 'a:b', tool: 'grep' });
    const tokens = event(decode('{"type":"token_usage","session_key":"a:b","input_tokens":10,"output_tokens":3,"cached_input_tokens":1,"model":"m","total_cost_usd":0.01}'));
    assert.deepEqual(tokens, { type: 'token_usage', session_key: 'a:b', input_tokens: 10, output_tokens: 3 });
    assert.equal(event(decode('{"type":"tool_result","session_key":"a:b","status":"success","name":"bash","result":{"ok":true}}')).type, 'tool_result');
  });

  test('10,000 levels of nesting in an extra field decode without throwing', () => {
    const arrays = '['.repeat(10_000) + ']'.repeat(10_000);
    const objects = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    assert.deepEqual(event(decode(`{"type":"thinking","session_key":"a:b","extra":${arrays}}`)), { type: 'thinking', session_key: 'a:b' });
    assert.deepEqual(event(decode(`{"type":"thinking","session_key":"a:b","extra":${objects}}`)), { type: 'thinking', session_key: 'a:b' });
    // Unbalanced deep nesting is just invalid JSON.
    assert.equal(rejected(decode(`{"type":"thinking","extra":${'['.repeat(10_000)}}`)).reason, 'invalid_json');
  });
});
