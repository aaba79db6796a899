/**
 * What counts as loopback for the "no open LAN listener" rule, and the refusal itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../config.ts';
import { checkExposure, isLoopback } from './exposure.ts';
import { ApiKey } from './key.ts';

describe('isLoopback', () => {
  test('loopback: 127.0.0.0/8, ::1 in any spelling, IPv4-mapped loopback, localhost', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) {
      assert.equal(isLoopback(host), true, host);
    }
  });
  test('not loopback: every interface, LAN and public addresses, other names', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1', '128.0.0.1', '::ffff:192.168.1.10', 'fe80::1', 'my-laptop.local', 'localhost.example.com']) {
      assert.equal(isLoopback(host), false, host);
    }
  });
});

describe('checkExposure', () => {
  const open = ApiKey.fixed(null);
  test('refuses a non-loopback address without a key, naming the ways out', () => {
    assert.throws(
      () => checkExposure('0.0.0.0', open, false),
      (e: unknown) => e instanceof ConfigError && /0\.0\.0\.0/.test(e.message) && /--api-key-file/.test(e.message) && /--allow-open/.test(e.message),
    );
  });
  test('allows loopback, a key, or --allow-open', () => {
    checkExposure('127.0.0.1', open, false);
    checkExposure('0.0.0.0', ApiKey.fixed('a-key-0123456789abc'), false);
    checkExposure('0.0.0.0', open, true);
  });
});
