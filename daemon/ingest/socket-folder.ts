/**
 * The folder the ingest socket is bound in must be the daemon's own: whoever can write a folder can replace the socket
 * inside it with their own, and then every agent's prompts and tool names go to them.
 *
 * The default `/tmp/pocketpaw-status-<uid>` (no XDG_RUNTIME_DIR) is a name anyone can create first. So before binding,
 * the folder is checked with lstat (a symbolic link is not followed): a real folder, owned by this user (or root), that
 * nobody else can write: no write for others, and none for its group unless `--socket-group` gave that group access.
 * A folder with the sticky bit (such as /tmp itself) is accepted: there nobody but the owner can remove or rename the
 * socket file.
 */
import { lstatSync } from 'node:fs';
import { StartupError } from './socket.ts';

const STICKY = 0o1000;

/** Throws a StartupError saying why and what to do when `dir` is not safe to bind the ingest socket in. */
export function checkSocketFolder(dir: string, groupAccess: boolean, uid = process.getuid?.() ?? 0): void {
  const st = lstatSync(dir);
  const mode = st.mode & 0o7777;
  const octal = `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
  const instead = 'or choose another --socket (or set XDG_RUNTIME_DIR, whose folder only you can write)';
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new StartupError(`the socket folder ${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; another user may have put it there to intercept events: remove it, ${instead}`);
  }
  if (st.uid !== uid && st.uid !== 0) {
    throw new StartupError(
      `the socket folder ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}); another user may have created it to intercept events: remove it (rm -r ${dir}) and start again, ${instead}`,
    );
  }
  if (mode & STICKY) return;
  if (mode & 0o002) {
    throw new StartupError(`the socket folder ${dir} can be written by every user (mode ${octal}): anyone could replace the socket and read what agents send; restrict it (chmod 0750 ${dir}), ${instead}`);
  }
  if (mode & 0o020 && !groupAccess) {
    throw new StartupError(
      `the socket folder ${dir} can be written by its group (mode ${octal}) but no --socket-group was given: members could replace the socket; restrict it (chmod g-w ${dir}), pass --socket-group if that group is meant to write events, ${instead}`,
    );
  }
}

/**
 * A warning when `--socket-mode` grants more than 0660: the socket's write bit is what lets a process connect and
 * write events, so other-write means every local user can.
 */
export function socketModeWarning(mode: number): string | null {
  if ((mode & ~0o660 & 0o777) === 0) return null;
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  const who = mode & 0o002 ? 'every local user can now write events (and so start, change and end any session)' : 'it grants bits beyond 0660 that a socket does not need';
  return `--socket-mode ${octal} is wider than 0660: ${who}; use 0660 with --socket-group to let a group of users write events`;
}
