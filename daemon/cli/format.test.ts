import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatDuration } from './format.ts';

test('upstream 22 test_format_duration_seconds', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(45), '45s');
});

test('upstream 23 test_format_duration_minutes', () => {
  assert.equal(formatDuration(90), '1m 30s');
  assert.equal(formatDuration(120), '2m 0s');
});

test('upstream 24 test_format_duration_hours', () => {
  assert.equal(formatDuration(3661), '1h 1m 1s');
});

test('formatDuration truncates fractions and handles the boundaries', () => {
  assert.equal(formatDuration(59.9), '59s');
  assert.equal(formatDuration(60), '1m 0s');
  assert.equal(formatDuration(3599.99), '59m 59s');
  assert.equal(formatDuration(3600), '1h 0m 0s');
  assert.equal(formatDuration(90061), '25h 1m 1s');
});
