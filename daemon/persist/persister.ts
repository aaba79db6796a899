/**
 * Writes the state file: an output of the change feed like SSE or metrics, never on the ingest path.
 *
 * A change only marks the state dirty; a timer writes at most once per `intervalMs` while changes keep coming, so a
 * flood of events costs one JSON encoding and one atomic write a second, not one per event. A write that fails is
 * logged once (until one succeeds again) and retried a second later; the daemon keeps serving meanwhile.
 *
 * At a clean shutdown `freeze()` captures the state before the ingest connections close (their closing would turn
 * agent-owned sessions to error, which is not what a restart should show), and `close()` writes it.
 */
import type { ChangeFeed } from '../feed/feed.ts';
import type { Logger } from '../log.ts';
import type { StatusState } from '../state/fold.ts';
import { encodeState, writeStateFile, type IdPosition } from './state-file.ts';

export interface PersisterSources {
  readonly state: () => StatusState;
  readonly ids: () => IdPosition;
  /** The daemon's monotonic clock. */
  readonly clock: () => number;
}

export class StatePersister {
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  private lastWriteAt = -Infinity;
  private failing = false;
  private frozen: string | null = null;
  private readonly unsubscribe: () => void;
  /** Writes done, and writes failed: for tests and metrics. */
  writes = 0;
  failures = 0;

  constructor(
    feed: ChangeFeed,
    private readonly dir: string,
    private readonly sources: PersisterSources,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {
    this.unsubscribe = feed.subscribe(() => this.markDirty());
  }

  /**
   * The first write, at start-up: it marks the file as not cleanly closed, so that after a crash the ids this process
   * issues are never issued again by the next one (it starts a new run instead of continuing this one's).
   */
  async start(): Promise<void> {
    this.dirty = false;
    await this.write(this.encode(false));
  }

  /** Something changed outside the feed (a restore that dropped sessions, say): write it soon. */
  markDirty(): void {
    this.dirty = true;
    this.schedule();
  }

  /** Stops following changes and keeps the state as it is now for the final write. */
  freeze(): void {
    if (this.frozen !== null) return;
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.frozen = this.encode(true);
  }

  /** The final write, after any in flight (clean: the ids counted are every id issued). */
  async close(): Promise<void> {
    this.freeze();
    while (this.writing) await this.writing;
    await this.write(this.frozen!);
  }

  private schedule(): void {
    if (this.timer || this.writing || this.frozen !== null || !this.dirty) return;
    const wait = Math.max(0, this.lastWriteAt + this.intervalMs - this.sources.clock());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dirty = false;
      this.writing = this.write(this.encode(false)).finally(() => {
        this.writing = null;
        this.schedule();
      });
    }, wait);
    // The final write at shutdown does not depend on this timer; it must not keep the process alive.
    this.timer.unref();
  }

  private encode(clean: boolean): string {
    const clock = this.sources.clock;
    return encodeState(this.sources.state(), this.sources.ids(), { wall: Date.now(), mono: clock() }, clean);
  }

  private async write(text: string): Promise<void> {
    this.lastWriteAt = this.sources.clock();
    try {
      await writeStateFile(this.dir, text);
      this.writes++;
      if (this.failing) this.log.info({ dir: this.dir }, 'the state file is written again');
      this.failing = false;
    } catch (error) {
      this.failures++;
      if (!this.failing) {
        this.log.error(
          { dir: this.dir, err: (error as Error).message },
          'cannot write the state file; retrying every second (the daemon keeps serving, but a restart would lose the sessions): check the folder\'s permissions and free space',
        );
      }
      this.failing = true;
      // Retried a second later even without a new change: the state on disk is stale.
      this.dirty = true;
    }
  }
}
