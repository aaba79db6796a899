/**
 * The key: upstream's four auth scenarios (pocketpaw-behaviour.md §12, 14–17) on the key check, the precedence of the
 * three ways to present it, the sources and their order, and reload.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../log.ts';
import { ApiKey, checkKeyFile, CREDENTIAL_NAME, KeyError, loadKey, presentedKey, readKeyFile } from './key.ts';

const dir = mkdtempSync(join(tmpdir(), 'pps-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(contents: string | Buffer, mode = 0o600): string {
  const path = join(dir, `key-${n++}`);
  writeFileSync(path, contents);
  chmodSync(path, mode);
  return path;
}

/** A logger whose lines are kept, to check what reload says (and that it never says the key). */
function memoryLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

describe('upstream scenarios on the key check', () => {
  test('upstream 14 test_rejects_bad_key', () => {
    assert.equal(ApiKey.fixed('correct-key').check({ header: 'wrong' }), 'wrong');
  });
  test('upstream 15 test_allows_correct_key_via_header', () => {
    assert.equal(ApiKey.fixed('my-key').check({ header: 'my-key' }), 'ok');
  });
  test('upstream 16 test_allows_correct_key_via_query_param', () => {
    assert.equal(ApiKey.fixed('my-key').check({ query: 'my-key' }), 'ok');
  });
  test('upstream 17 test_allows_when_no_key_configured', () => {
    const open = ApiKey.fixed('');
    assert.equal(open.required, false);
    assert.equal(open.check({}), 'open');
    assert.equal(open.check({ header: 'anything' }), 'open');
  });
});

describe('presenting the key', () => {
  const k1 = ApiKey.fixed('k1');
  test('each way alone', () => {
    assert.equal(k1.check({ query: 'k1' }), 'ok');
    assert.equal(k1.check({ header: 'k1' }), 'ok');
    assert.equal(k1.check({ authorization: 'Bearer k1' }), 'ok');
    assert.equal(k1.check({ authorization: 'bearer   k1 ' }), 'ok', 'the scheme is case-insensitive, spaces around the token are not part of it');
    assert.equal(k1.check({}), 'missing');
  });
  test('the first present of ?key=, X-Status-Key, Bearer decides (upstream: ?key=bad plus header k1 is refused)', () => {
    assert.equal(k1.check({ query: 'bad', header: 'k1' }), 'wrong');
    assert.equal(k1.check({ query: 'k1', header: 'bad' }), 'ok');
    assert.equal(k1.check({ header: 'bad', authorization: 'Bearer k1' }), 'wrong');
    assert.equal(k1.check({ header: 'k1', authorization: 'Bearer bad' }), 'ok');
    assert.equal(k1.check({ query: 'bad', authorization: 'Bearer k1' }), 'wrong');
  });
  test('an empty value counts as absent (upstream: ?key= plus header k1 passes)', () => {
    assert.equal(k1.check({ query: '', header: 'k1' }), 'ok');
    assert.equal(k1.check({ query: '', header: '', authorization: 'Bearer k1' }), 'ok');
    assert.equal(k1.check({ query: '', header: '' }), 'missing');
  });
  test('Authorization with another scheme is not a key', () => {
    assert.equal(presentedKey({ authorization: 'Basic azE6' }), null);
    assert.equal(presentedKey({ authorization: 'Bearer' }), null);
    assert.equal(k1.check({ authorization: 'Basic k1' }), 'missing');
  });
  test('keys of other lengths and contents are refused without error (digests of equal length are compared)', () => {
    for (const key of ['k', 'k1k1', 'K1', 'k1 ', '\u00e9', 'x'.repeat(10_000)]) assert.equal(k1.check({ header: key }), 'wrong', key);
  });
});

describe('key sources', () => {
  test('a key file: contents with trailing newlines stripped', () => {
    assert.equal(readKeyFile(file('secret-key-0123456789\n')), 'secret-key-0123456789');
    assert.equal(readKeyFile(file('secret-key-0123456789\r\n\n')), 'secret-key-0123456789');
    assert.equal(readKeyFile(file('secret-key-0123456789')), 'secret-key-0123456789');
  });

  test('a key file that cannot be used says why, without its contents', () => {
    const cases: [string, RegExp][] = [
      [join(dir, 'absent'), /cannot read .*ENOENT/],
      [file(''), /is empty/],
      [file('\n'), /is empty/],
      [file('two words\n'), /visible ASCII/],
      [file('x'.repeat(5000)), /larger than 4096 bytes/],
      // A folder: EISDIR, or on file systems with large folder entries, too large to be a key file.
      [dir, /cannot read .*EISDIR|larger than 4096 bytes/],
    ];
    for (const [path, why] of cases) {
      assert.throws(() => readKeyFile(path), (e: unknown) => e instanceof KeyError && why.test(e.message) && !e.message.includes('two words'), path);
    }
    assert.throws(() => checkKeyFile(''), KeyError);
  });

  test('first found wins: the file, then the credential, then the variable', () => {
    const creds = mkdtempSync(join(dir, 'creds-'));
    writeFileSync(join(creds, CREDENTIAL_NAME), 'from-credential-0123\n');
    const env = { CREDENTIALS_DIRECTORY: creds, POCKETPAW_STATUS_API_KEY: 'from-env-0123456789' };
    const keyFile = file('from-file-0123456789\n');
    const holds = (loaded: ReturnType<typeof loadKey>, key: string) => loaded.digest !== null && loaded.digest.equals(sha256(key));

    assert.equal(loadKey(keyFile, env).source.kind, 'file');
    assert.ok(holds(loadKey(keyFile, env), 'from-file-0123456789'));
    assert.equal(loadKey(null, env).source.kind, 'credential');
    assert.ok(holds(loadKey(null, env), 'from-credential-0123'));
    const noCredential = loadKey(null, { ...env, CREDENTIALS_DIRECTORY: join(dir, 'no-such-dir') });
    assert.equal(noCredential.source.kind, 'env', 'no credential: the variable');
    assert.ok(holds(noCredential, 'from-env-0123456789'));
    assert.equal(loadKey(null, {}).digest, null, 'no source: open access');
  });

  test('a credential that exists but cannot be used stops the search (no silent fall-back to the variable)', () => {
    const creds = mkdtempSync(join(dir, 'creds-'));
    writeFileSync(join(creds, CREDENTIAL_NAME), '\n');
    assert.throws(() => loadKey(null, { CREDENTIALS_DIRECTORY: creds, POCKETPAW_STATUS_API_KEY: 'from-env-0123456789' }), /credential .* is empty/);
  });

  test('an empty variable means open access, with a warning; a short key loads with a warning', () => {
    const empty = loadKey(null, { POCKETPAW_STATUS_API_KEY: '' });
    assert.equal(empty.digest, null);
    assert.match(empty.warnings.join('\n'), /set but empty/);
    const short = loadKey(null, { POCKETPAW_STATUS_API_KEY: 'k1' });
    assert.notEqual(short.digest, null);
    assert.match(short.warnings.join('\n'), /shorter than 16 characters/);
    assert.ok(!short.warnings.join('\n').includes('k1'), 'the warning does not quote the key');
    assert.throws(() => loadKey(null, { POCKETPAW_STATUS_API_KEY: 'has space' }), /POCKETPAW_STATUS_API_KEY holds spaces/);
  });

  test('a key file every local user may read loads, with a warning', () => {
    assert.match(loadKey(file('world-readable-key-0123\n', 0o644), {}).warnings.join('\n'), /readable by every local user/);
    assert.deepEqual(loadKey(file('private-key-0123456789\n', 0o600), {}).warnings, []);
  });
});

function sha256(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

describe('reload', () => {
  test('a changed file: the new key in force, the old one refused, the change logged without either key', () => {
    const path = file('first-key-0123456789\n');
    const { apiKey } = ApiKey.load(path, {});
    const { log, lines } = memoryLog();
    writeFileSync(path, 'second-key-0123456789\n');
    assert.equal(apiKey.reload(log), true);
    assert.equal(apiKey.check({ header: 'second-key-0123456789' }), 'ok');
    assert.equal(apiKey.check({ header: 'first-key-0123456789' }), 'wrong');
    assert.match(lines.join('\n'), /"changed":true/);
    assert.doesNotMatch(lines.join('\n'), /first-key|second-key/);
    assert.equal(apiKey.reload(log), true);
    assert.match(lines.at(-1)!, /"changed":false/);
  });

  test('an unreadable or empty file keeps the old key and logs why', () => {
    const path = file('kept-key-0123456789\n');
    const { apiKey } = ApiKey.load(path, {});
    const { log, lines } = memoryLog();
    writeFileSync(path, '');
    assert.equal(apiKey.reload(log), false);
    assert.equal(apiKey.check({ header: 'kept-key-0123456789' }), 'ok');
    assert.match(lines.at(-1)!, /previous key stays in force.*is empty/);
    rmSync(path);
    assert.equal(apiKey.reload(log), false);
    assert.equal(apiKey.check({ header: 'kept-key-0123456789' }), 'ok');
    assert.match(lines.at(-1)!, /previous key stays in force.*ENOENT/);
    assert.doesNotMatch(lines.join('\n'), /kept-key/);
  });

  test('a reload never removes the key: a vanished credential keeps it', () => {
    const creds = mkdtempSync(join(dir, 'creds-'));
    writeFileSync(join(creds, CREDENTIAL_NAME), 'credential-key-0123\n');
    const { apiKey } = ApiKey.load(null, { CREDENTIALS_DIRECTORY: creds });
    rmSync(join(creds, CREDENTIAL_NAME));
    const { log, lines } = memoryLog();
    assert.equal(apiKey.reload(log), false);
    assert.equal(apiKey.required, true);
    assert.equal(apiKey.check({}), 'missing');
    assert.match(lines.at(-1)!, /no key source was found now/);
  });
});
