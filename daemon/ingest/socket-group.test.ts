/**
 * `--socket-group` lookups: Node has no getgrnam, so names are read from a group(5) file (then NSS via getent).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gidFromGroupFile, resolveGroup } from './socket-group.ts';

const dir = mkdtempSync(join(tmpdir(), 'pps-group-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const groupFile = join(dir, 'group');
writeFileSync(groupFile, 'root:x:0:\nagents:x:1234:alice,bob\nbroken:x:notanumber:\n# comment\n\nagentsplus:x:99:\n');

describe('group lookup', () => {
  test('gidFromGroupFile: exact names only', () => {
    const text = readFileSync(groupFile, 'utf8');
    assert.equal(gidFromGroupFile(text, 'agents'), 1234);
    assert.equal(gidFromGroupFile(text, 'root'), 0);
    assert.equal(gidFromGroupFile(text, 'agent'), null);
    assert.equal(gidFromGroupFile(text, 'broken'), null);
  });
  test('resolveGroup: a name from the file, a numeric gid as it is', () => {
    assert.deepEqual(resolveGroup('agents', groupFile, false), { spec: 'agents', gid: 1234 });
    assert.deepEqual(resolveGroup('4321', groupFile, false), { spec: '4321', gid: 4321 });
  });
  test('resolveGroup: an unknown name or a bad value says what to do', () => {
    assert.throws(() => resolveGroup('nope', groupFile, false), /no group named nope; create it \(groupadd nope\) or give a numeric gid/);
    assert.throws(() => resolveGroup('', groupFile, false), /group name or a numeric gid/);
    assert.throws(() => resolveGroup('a:b', groupFile, false), /group name or a numeric gid/);
    assert.throws(() => resolveGroup('4294967295', groupFile, false), /out of range/);
  });
  test('resolveGroup: the real /etc/group (its first group)', () => {
    const first = readFileSync('/etc/group', 'utf8').split('\n').find((l) => /^[^:#]+:[^:]*:\d+:/.test(l))!.split(':');
    assert.equal(resolveGroup(first[0]!).gid, Number(first[2]));
  });
});
