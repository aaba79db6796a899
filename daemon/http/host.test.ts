import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostAllowed, hostOf, machineNames, parseAllowedHost, parseAllowedHostList } from './host.ts';

test('hostOf: the host part, lower case, without port or final dot; null for what cannot be a host', () => {
  assert.equal(hostOf('LocalHost:8780'), 'localhost');
  assert.equal(hostOf('example.lan.'), 'example.lan');
  assert.equal(hostOf('[::1]:8780'), '[::1]');
  assert.equal(hostOf('[::1'), null);
  assert.equal(hostOf('[::1]x'), null);
  assert.equal(hostOf('a:b'), null);
});

test('hostAllowed: IP literals, the machine\'s names and the allowed ones; nothing else', () => {
  const names = new Set([...machineNames('Box.example.lan'), 'status.lan']);
  for (const ok of ['127.0.0.1', '10.0.0.5:8780', '[::1]', '[fe80::1]:80', 'localhost', 'box', 'box.local', 'box.example.lan', 'BOX.EXAMPLE.LAN.:1', 'status.lan']) {
    assert.equal(hostAllowed(ok, names), true, ok);
  }
  for (const bad of ['evil.example', 'box.evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', '[not-an-ip]', 'status.lan.evil', '']) {
    assert.equal(hostAllowed(bad, names), false, bad);
  }
  // No Host (HTTP/1.0): no browser sends that, so no rebinding page is behind it.
  assert.equal(hostAllowed(undefined, names), true);
});

test('--allowed-host values: names only, normalised; a list from the variable', () => {
  assert.equal(parseAllowedHost(' Status.Example.LAN. '), 'status.example.lan');
  for (const bad of ['*.lan', 'http://x.lan', 'x.lan:8780', 'x.lan/path', 'a b', '']) assert.throws(() => parseAllowedHost(bad), bad);
  assert.deepEqual(parseAllowedHostList('a.lan, b.lan,,A.LAN'), ['a.lan', 'b.lan']);
});
