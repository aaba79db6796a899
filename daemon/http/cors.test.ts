/**
 * `--cors-origin` values: exact origins in the form browsers send, never `*` or `null`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseOrigin, parseOriginList } from './cors.ts';

describe('parseOrigin', () => {
  test('normalised to what a browser sends in Origin', () => {
    assert.equal(parseOrigin('https://dash.example.lan'), 'https://dash.example.lan');
    assert.equal(parseOrigin(' https://Dash.Example.LAN/ '), 'https://dash.example.lan', 'host in lower case, a lone / dropped');
    assert.equal(parseOrigin('https://dash.example.lan:443'), 'https://dash.example.lan', 'default port dropped');
    assert.equal(parseOrigin('http://192.168.1.5:8080'), 'http://192.168.1.5:8080');
    assert.equal(parseOrigin('http://[::1]:3000'), 'http://[::1]:3000');
  });
  test('refused: wildcards, null, other schemes, paths, queries, users, non-URLs', () => {
    const cases: [string, RegExp][] = [
      ['*', /never allowed/],
      ['null', /never allowed/],
      ['https://*.example.lan', /never allowed/],
      ['file:///home/me/page.html', /not an http or https origin/],
      ['ftp://example.lan', /not an http or https origin/],
      ['https://example.lan/app', /drop the path/],
      ['https://example.lan/?x=1', /drop the path/],
      ['https://me@example.lan', /drop the path/],
      ['example.lan', /not an origin/],
    ];
    for (const [raw, why] of cases) assert.throws(() => parseOrigin(raw), why, raw);
  });
});

describe('parseOriginList', () => {
  test('comma-separated, blanks skipped, duplicates merged', () => {
    assert.deepEqual(parseOriginList('https://a.lan, https://b.lan:8443,,https://A.lan'), ['https://a.lan', 'https://b.lan:8443']);
    assert.deepEqual(parseOriginList(''), []);
  });
  test('one bad item fails the list', () => {
    assert.throws(() => parseOriginList('https://a.lan,*'), /"\*" is never allowed/);
  });
});
