/**
 * Where the ingest socket lives by default, shared by the daemon (`serve`), the emitters, `emit` and the hook, so that
 * all of them meet without configuration.
 *
 * Node built-ins only: the Claude Code hook imports this, and its code path must stay free of anything heavy.
 */
import { lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The environment variable that names the socket for every command and emitter, as `--socket` does for `serve`. */
export const SOCKET_ENV = 'POCKETPAW_STATUS_SOCKET';

/**
 * `$RUNTIME_DIRECTORY/ingest.sock` (systemd's RuntimeDirectory=; the first one when several are listed), else
 * `$XDG_RUNTIME_DIR/pocketpaw-status/ingest.sock`, else `/tmp/pocketpaw-status-<uid>/ingest.sock`.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RUNTIME_DIRECTORY) return join(env.RUNTIME_DIRECTORY.split(':')[0]!, 'ingest.sock');
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'pocketpaw-status', 'ingest.sock');
  return join('/tmp', `pocketpaw-status-${process.getuid?.() ?? 'user'}`, 'ingest.sock');
}

/** The socket a producer should use: an explicit path, else `POCKETPAW_STATUS_SOCKET`, else the default. */
export function resolveSocketPath(explicit: string | null | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return explicit;
  const fromEnv = env[SOCKET_ENV];
  if (fromEnv && fromEnv.trim() !== '') return fromEnv;
  return defaultSocketPath(env);
}

/**
 * Why a producer must not connect to `path`, or null when it may.
 *
 * The default path is per user (`/tmp/pocketpaw-status-<uid>/` without XDG_RUNTIME_DIR), and a name in /tmp is one
 * another user can create first, bind a socket in, and so receive every prompt and tool name the agents send. A socket
 * at the default path whose folder or file belongs to a uid other than the producer's own or root is therefore not
 * the user's daemon: producers (emit, the hook, both emitters) refuse it. A path given explicitly (a flag, the
 * variable, a system daemon's /run socket) is the user's choice and is not checked.
 */
export function untrustedSocketReason(path: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const uid = process.getuid?.();
  if (uid === undefined || path !== defaultSocketPath(env)) return null;
  for (const [what, target] of [['folder', dirname(path)], ['file', path]] as const) {
    let owner: number;
    try {
      owner = lstatSync(target).uid;
    } catch {
      return null; // absent: there is nothing to connect to
    }
    if (owner !== uid && owner !== 0) {
      return `not connecting to ${path}: the socket ${what} ${target} belongs to uid ${owner}, not to this user (uid ${uid}) or root, so another user may be posing as the daemon to read what agents send; remove it and restart the daemon, or set ${SOCKET_ENV} to the daemon's socket`;
    }
  }
  return null;
}
