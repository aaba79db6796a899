/**
 * Where the ingest socket lives by default, shared by the daemon (`serve`), the emitters, `emit` and the hook, so that
 * all of them meet without configuration.
 *
 * Node built-ins only: the Claude Code hook imports this, and its code path must stay free of anything heavy.
 */
import { join } from 'node:path';

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
