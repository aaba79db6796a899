/**
 * The failure token bucket on a fake clock: bursts of 30, 10 per second, per address, bounded memory.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressKey, FailureLimiter } from './rate-limit.ts';

function limiter(maxAddresses = 10_000) {
  let now = 0;
  const l = new FailureLimiter({ perSecond: 10, burst: 30, maxAddresses }, () => now);
  return { l, advance: (ms: number) => (now += ms) };
}

describe('failure limiter', () => {
  test('30 failures pass, the 31st is limited with a Retry-After of at least one second', () => {
    const { l } = limiter();
    for (let i = 0; i < 30; i++) assert.deepEqual(l.fail('10.0.0.1'), { limited: false }, `failure ${i + 1}`);
    const v = l.fail('10.0.0.1');
    assert.equal(v.limited, true);
    assert.ok(v.limited && v.retryAfterSeconds >= 1 && v.first);
    const again = l.fail('10.0.0.1');
    assert.ok(again.limited && !again.first, 'only the first 429 of an episode is flagged for the log');
  });

  test('a steady stream of failures is one episode (one log line), until the bucket has refilled', () => {
    const { l, advance } = limiter();
    const firsts = () => {
      let n = 0;
      for (let i = 0; i < 200; i++) {
        const v = l.fail('a');
        if (v.limited && v.first) n++;
        advance(20); // 50 failures a second, above the refill rate
      }
      return n;
    };
    assert.equal(firsts(), 1);
    advance(3000);
    assert.equal(firsts(), 1, 'quiet long enough to refill: a new episode');
  });

  test('refills at 10 per second, never above the burst', () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 31; i++) l.fail('a');
    advance(99);
    assert.equal(l.fail('a').limited, true, 'less than a token after 99 ms');
    advance(2);
    assert.equal(l.fail('a').limited, false, 'a token after 101 ms in all');
    assert.equal(l.fail('a').limited, true);
    advance(3_600_000);
    for (let i = 0; i < 30; i++) assert.equal(l.fail('a').limited, false);
    assert.equal(l.fail('a').limited, true, 'an hour of quiet gives a burst of 30, not more');
  });

  test('Retry-After covers the wait for the next token', () => {
    const { l, advance } = limiter();
    for (let i = 0; i < 30; i++) l.fail('a');
    advance(50);
    const v = l.fail('a');
    assert.ok(v.limited);
    assert.equal(v.retryAfterSeconds, 1);
  });

  test('addresses are independent', () => {
    const { l } = limiter();
    for (let i = 0; i < 31; i++) l.fail('10.0.0.1');
    assert.equal(l.fail('10.0.0.1').limited, true);
    assert.equal(l.fail('10.0.0.2').limited, false);
  });

  test('memory is bounded: beyond maxAddresses the least recently failing address is forgotten', () => {
    const { l } = limiter(3);
    for (let i = 0; i < 31; i++) l.fail('a');
    l.fail('b');
    l.fail('c');
    l.fail('d');
    assert.equal(l.size, 3);
    assert.equal(l.fail('a').limited, false, 'a was forgotten, so it starts a fresh bucket');
  });

  test('buckets that have refilled go first when room is needed, even if more recent', () => {
    const { l, advance } = limiter(2);
    for (let i = 0; i < 31; i++) l.fail('busy');
    l.fail('recent');
    advance(1000); // recent is full again, busy has 10 tokens
    l.fail('new');
    assert.equal(l.size, 2);
    for (let i = 0; i < 10; i++) assert.equal(l.fail('busy').limited, false);
    assert.equal(l.fail('busy').limited, true, 'busy kept its bucket: the least recent, but not refilled');
  });
});

describe('addressKey', () => {
  test('IPv4 as it is; IPv4-mapped IPv6 as IPv4; loopback ::1 as it is', () => {
    assert.equal(addressKey('192.168.1.7'), '192.168.1.7');
    assert.equal(addressKey('::ffff:192.168.1.7'), '192.168.1.7');
    assert.equal(addressKey('::1'), '::1');
  });
  test('other IPv6 by /64: one host cannot take a fresh bucket per address', () => {
    assert.equal(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  });
  test('anything else is its own key', () => {
    assert.equal(addressKey('unknown'), 'unknown');
  });
});
