/**
 * One daemon per state folder: two daemons writing one state file would each restore the other's sessions as their
 * own after a restart. The lock is a file holding the owner's pid, created exclusively; a lock whose pid is gone (a
 * daemon that was killed) is taken over. Linux pids are reused only after the whole range wraps, and a reused pid
 * only makes the start refuse with a message naming it, never lose state.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { SocketInUseError } from '../ingest/socket.ts';

export const LOCK_FILE = 'daemon.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state folder is another running daemon's: a start-up conflict like a taken socket (one plain line). */
export class StateDirInUseError extends SocketInUseError {}

/** Takes the folder's lock or throws StateDirInUseError; returns the release. */
export function lockStateDir(dir: string): () => void {
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => release(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw new StateDirInUseError(
        `another daemon (pid ${owner}) keeps its state in ${dir} (a second npm start, or a service); stop it, or pass --state-dir DIR (or none) with --socket PATH and --port N to run one more beside it`,
      );
    }
    // Left by a daemon that is gone: take it over.
    unlinkSync(file);
  }
  throw new Error(`could not take the lock ${file}: it keeps coming back; is another daemon starting at this moment?`);
}

function release(file: string): void {
  try {
    if (Number.parseInt(readFileSync(file, 'utf8'), 10) === process.pid) unlinkSync(file);
  } catch {
    // Already gone: nothing to release.
  }
}
