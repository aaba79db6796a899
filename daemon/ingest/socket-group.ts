/**
 * `--socket-group`: the group given the ingest socket, so that an agent running as another user can write events
 * when it is a member (with the default mode 0660).
 *
 * Node has no getgrnam(3). A group is looked up in /etc/group first (no process spawned, works in minimal images),
 * then through `getent group`, which asks NSS and so also finds LDAP/sssd groups; a numeric gid is taken as it is,
 * the way out when neither can see the group.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface SocketGroup {
  /** As given: a name or a number. */
  readonly spec: string;
  readonly gid: number;
}

/** The largest valid gid: (gid_t)-1 means "leave unchanged" to chown(2). */
const MAX_GID = 0xfffffffe;

/** The gid of `name` in the text of a group(5) file, or null. */
export function gidFromGroupFile(text: string, name: string): number | null {
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 3 && fields[0] === name && /^\d+$/.test(fields[2]!)) return Number(fields[2]);
  }
  return null;
}

function fromGroupFile(name: string, path: string): number | null {
  try {
    return gidFromGroupFile(readFileSync(path, 'utf8'), name);
  } catch {
    return null;
  }
}

function fromGetent(name: string): number | null {
  try {
    return gidFromGroupFile(execFileSync('getent', ['group', name], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }), name);
  } catch {
    // Exit status 2 (no such group), or no getent on this system.
    return null;
  }
}

/** Resolves a group name or numeric gid. Throws an Error saying what to do when the group does not exist. */
export function resolveGroup(spec: string, groupFile = '/etc/group', useGetent = true): SocketGroup {
  const text = spec.trim();
  if (/^\d+$/.test(text)) {
    const gid = Number(text);
    if (gid > MAX_GID) throw new Error(`gid ${text} is out of range`);
    return { spec: text, gid };
  }
  if (text === '' || text.includes(':') || /\s/.test(text)) throw new Error('expected a group name or a numeric gid');
  const gid = fromGroupFile(text, groupFile) ?? (useGetent ? fromGetent(text) : null);
  if (gid === null) throw new Error(`no group named ${text}; create it (groupadd ${text}) or give a numeric gid`);
  return { spec: text, gid };
}

/**
 * Gives the socket, and the folders this start created for it, to the group. Called right after bind, while the
 * socket still has the daemon's own group: the window only ever narrows access, never widens it.
 *
 * A folder created by the daemon has mode 0750 and the daemon's group, so a member of the socket group could not
 * reach the socket inside it; such folders get the group too. Folders that existed before are left alone (their
 * owner chose their access).
 */
export function applySocketGroup(socketPath: string, gid: number, firstCreatedDir: string | undefined): void {
  giveToGroup(socketPath, gid);
  if (firstCreatedDir === undefined) return;
  for (let dir = dirname(socketPath); ; dir = dirname(dir)) {
    giveToGroup(dir, gid);
    // The umask may have narrowed mkdir's 0750.
    chmodSync(dir, 0o750);
    if (dir === firstCreatedDir || dir === dirname(dir)) break;
  }
}

function giveToGroup(path: string, gid: number): void {
  try {
    chownSync(path, -1, gid);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new Error(`cannot give ${path} to group ${gid} (${code}); the daemon's user must be root or a member of that group (check --socket-group)`);
  }
}
