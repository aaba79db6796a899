/**
 * Rate-limited warnings for what producers can cause at will (rejected lines, refused or closed connections): a
 * reconnect loop sending one bad line per connection must not turn into thousands of log lines a second.
 *
 * At most one line per reason per window (10 s). Warnings in between are counted; the count is logged with the next
 * warning of that reason, or, if none comes, by flush() once the window is over.
 */
import type { Logger } from '../log.ts';

export const WARNING_WINDOW_MS = 10_000;

interface Entry {
  /** When the last line for this reason was written. */
  at: number;
  suppressed: number;
  msg: string;
}

export class WarningLimiter {
  /** One entry per reason: reasons are a fixed set chosen by the caller, never taken from the peer. */
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly windowMs = WARNING_WINDOW_MS,
  ) {}

  warn(reason: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.clock();
    const entry = this.entries.get(reason);
    if (entry && now - entry.at < this.windowMs) {
      entry.suppressed++;
      entry.msg = msg;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.entries.set(reason, { at: now, suppressed: 0, msg });
    // `warning` names the kind of warning (the key it is limited by), so a summary can be matched with its lines.
    if (suppressed === 0) this.log.warn({ ...fields, warning: reason }, msg);
    else this.log.warn({ ...fields, warning: reason, suppressed }, `${msg} (${suppressed} more like it not logged in the ${this.windowMs / 1000} s before)`);
  }

  /** Logs the counts of windows that ended without another warning to carry them. Call it every second or so. */
  flush(): void {
    const now = this.clock();
    for (const [reason, entry] of this.entries) {
      if (now - entry.at < this.windowMs) continue;
      if (entry.suppressed === 0) {
        this.entries.delete(reason);
        continue;
      }
      this.log.warn({ warning: reason, suppressed: entry.suppressed }, `${entry.suppressed} more like this not logged in the last ${this.windowMs / 1000} s: ${entry.msg}`);
      // The summary is this window's one line.
      this.entries.set(reason, { at: now, suppressed: 0, msg: entry.msg });
    }
  }
}
