/**
 * The helper for anyone who logs a URL: the key's value never reaches the log.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactUrl } from './auth.ts';

test('redactUrl replaces every key= value and keeps the rest', () => {
  assert.equal(redactUrl('/api/v1/agent/status/stream?key=s3cret&session=a:1'), '/api/v1/agent/status/stream?key=[redacted]&session=a:1');
  assert.equal(redactUrl('/x?session=a:1&KEY=s3cret#frag'), '/x?session=a:1&KEY=[redacted]#frag');
  assert.equal(redactUrl('/x?key=a&key=b'), '/x?key=[redacted]&key=[redacted]');
  assert.equal(redactUrl('/x?monkey=1&apikey=2'), '/x?monkey=1&apikey=2', 'only the parameter named key');
  assert.equal(redactUrl('/x?key='), '/x?key=[redacted]');
});
