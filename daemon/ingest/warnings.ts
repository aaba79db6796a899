/**
 * Rate-limited warnings for what producers can cause at will (rejected lines, refused or closed connections): a
 * reconnect loop sending one bad line per connection must not turn into thousands of log lines a second.
 *
 * At most `burst` lines per reason per window (10 s; one line unless told otherwise). Lines past that are counted; the
 * count is logged with the next line of that reason, or, if none comes, by flush() once the window is over. The same
 * holds for info lines a producer can cause (an agent connecting or leaving, in a reconnect loop).
 */
import type { Logger } from '../log.ts';

export const WARNING_WINDOW_MS = 10_000;

type Level = 'warn' | 'info';

/**
 * The field naming the kind of line (the key it is limited by), so a summary can be matched with its lines: `warning`
 * on warnings, `limited` on info lines (a consumer counting `warning` fields must not count agents connecting).
 */
const TAG: Readonly<Record<Level, string>> = { warn: 'warning', info: 'limited' };

interface Entry {
  /** When the window began: the first line for this reason in it was written then. */
  at: number;
  /** Lines written in this window. */
  written: number;
  suppressed: number;
  msg: string;
  level: Level;
}

export class WarningLimiter {
  /** One entry per reason: reasons are a fixed set chosen by the caller, never taken from the peer. */
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly windowMs = WARNING_WINDOW_MS,
    private readonly burst = 1,
  ) {}

  warn(reason: string, fields: Record<string, unknown>, msg: string): void {
    this.write('warn', reason, fields, msg);
  }

  info(reason: string, fields: Record<string, unknown>, msg: string): void {
    this.write('info', reason, fields, msg);
  }

  private write(level: Level, reason: string, fields: Record<string, unknown>, msg: string): void {
    const now = this.clock();
    const entry = this.entries.get(reason);
    if (entry && now - entry.at < this.windowMs) {
      if (entry.written < this.burst) {
        entry.written++;
        this.log[level]({ ...fields, [TAG[level]]: reason }, msg);
        return;
      }
      entry.suppressed++;
      entry.msg = msg;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.entries.set(reason, { at: now, written: 1, suppressed: 0, msg, level });
    if (suppressed === 0) this.log[level]({ ...fields, [TAG[level]]: reason }, msg);
    else this.log[level]({ ...fields, [TAG[level]]: reason, suppressed }, `${msg} (${suppressed} more like it not logged in the ${this.windowMs / 1000} s before)`);
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
      this.log[entry.level]({ [TAG[entry.level]]: reason, suppressed: entry.suppressed }, `${entry.suppressed} more like this not logged in the last ${this.windowMs / 1000} s: ${entry.msg}`);
      // The summary opens a window of its own, with its line spent.
      this.entries.set(reason, { at: now, written: this.burst, suppressed: 0, msg: entry.msg, level: entry.level });
    }
  }
}
