/**
 * Watches the processes named by sessions' `pid` (one-shot producers such as the Claude Code hook cannot hold a
 * connection whose close would tell us their agent died). Once a second it probes each watched pid with signal 0;
 * a pid that no longer exists becomes one `pid_gone` input to the store, which marks its sessions `agent
 * disconnected` exactly as a long-lived agent's closed connection does. This is I/O, so it lives outside the fold.
 *
 * Same host only: a pid means nothing across machines or PID namespaces. `EPERM` (a process of another user) is
 * alive; only `ESRCH` is gone.
 */
import type { StatusStore } from '../state/store.ts';

export const PID_WATCH_INTERVAL_MS = 1000;

/** Signal 0 checks existence and permission and delivers nothing. */
export type ProcessProbe = (pid: number) => boolean;

export const probeProcess: ProcessProbe = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
};

export class PidWatch {
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: StatusStore,
    private readonly alive: ProcessProbe = probeProcess,
    intervalMs: number = PID_WATCH_INTERVAL_MS,
  ) {
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  /** Probes every watched pid once (each pid once, however many sessions name it). */
  check(): void {
    let pids: Set<number> | null = null;
    for (const s of this.store.state.sessions.values()) {
      if (s.pid !== null) (pids ??= new Set()).add(s.pid);
    }
    if (pids === null) return;
    for (const pid of pids) {
      if (!this.alive(pid)) this.store.apply({ kind: 'pid_gone', pid });
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
