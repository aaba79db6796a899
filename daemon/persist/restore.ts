/**
 * Start-up side of the state file: read it before the store exists and before HTTP listens, and give the agents whose
 * sessions came back a grace to reconnect.
 */
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import type { Session } from '../state/fold.ts';
import type { StatusStore } from '../state/store.ts';
import { lockStateDir } from './lock.ts';
import { prepareStateDir, readStateFile, RESTORED_AGENT, STATE_FILE, type IdPosition } from './state-file.ts';

export interface LoadedState {
  readonly sessions: ReadonlyMap<string, Session>;
  readonly ids: IdPosition | null;
  readonly awaitingAgents: number;
  /** What was restored, for one log line once the daemon is ready (a start that fails says only why it failed). */
  readonly summary: { readonly fields: Record<string, unknown>; readonly message: string };
  /** Gives the state folder back (its lock) at shutdown. */
  readonly release: () => void;
}

const nothingToRelease = () => {};

function empty(fields: Record<string, unknown>, message: string, release: () => void): LoadedState {
  return { sessions: new Map(), ids: null, awaitingAgents: 0, summary: { fields, message }, release };
}

/**
 * The state to start from. A folder that is not safe to use stops the start (StartupError, as for the socket folder);
 * a bad file never does: it is moved aside, logged, and the daemon starts empty.
 */
export async function loadState(dir: string | null, maxAgeMs: number, clock: () => number, log: Logger): Promise<LoadedState> {
  if (dir === null) return empty({}, 'no state is kept (--state-dir none): a restart forgets every session', nothingToRelease);
  await prepareStateDir(dir);
  // Before reading: a second daemon on this folder would restore, and then overwrite, the first one's sessions.
  const release = lockStateDir(dir);
  const file = join(dir, STATE_FILE);
  const result = await readStateFile(dir, { wall: Date.now(), mono: clock() }, maxAgeMs);
  if (result.kind === 'absent') return empty({ file }, 'no state file yet: starting empty', release);
  if (result.kind === 'bad') {
    if (result.movedTo !== null) {
      log.warn({ file, reason: result.reason, movedTo: result.movedTo }, `the state file was not restored (${result.reason}); moved it aside to ${result.movedTo} and starting empty`);
    } else {
      log.error(
        { file, reason: result.reason, err: result.moveError },
        `the state file was not restored (${result.reason}) and could not be moved aside (${result.moveError}); starting empty, and the next write replaces it: copy it away now to keep it`,
      );
    }
    return empty({ file }, 'starting empty', release);
  }
  const { restored } = result;
  return {
    sessions: restored.sessions,
    ids: restored.ids,
    awaitingAgents: restored.awaitingAgents,
    summary: {
      fields: { file, sessions: restored.sessions.size, awaitingAgents: restored.awaitingAgents, continuesIds: restored.ids !== null },
      message: `restored ${restored.sessions.size} sessions from the state file`,
    },
    release,
  };
}

/**
 * Restored sessions of `hello` agents wait `graceMs` for their agent to reconnect and replay (a replayed event
 * adopts the session); the rest then turn error / "agent disconnected", as if the old connection had just closed.
 * Returns a function that cancels the timer (at shutdown).
 */
export function startReconnectGrace(store: StatusStore, awaitingAgents: number, graceMs: number, log: Logger): () => void {
  if (awaitingAgents === 0) return () => {};
  const over = () => {
    const before = countAwaiting(store);
    store.apply({ kind: 'producer_closed', producer: RESTORED_AGENT });
    if (before > 0) log.info({ sessions: before }, `${before} restored sessions were not taken back by their agent within --reconnect-grace; they are now in error (agent disconnected)`);
  };
  const timer = setTimeout(over, graceMs);
  return () => clearTimeout(timer);
}

function countAwaiting(store: StatusStore): number {
  let n = 0;
  for (const s of store.state.sessions.values()) if (s.owner === RESTORED_AGENT && s.state !== 'error') n++;
  return n;
}
