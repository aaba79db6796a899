/**
 * The last N transitions with their ids, for clients that resume with Last-Event-ID. A ring buffer: O(1) per
 * transition, bounded memory. Frames are encoded on first use and shared by every client that gets them.
 */
import type { Transition } from '../state/transitions.ts';

export interface HistoryEntry {
  readonly seq: number;
  readonly transition: Transition;
  frame: Buffer | null;
}

export class TransitionHistory {
  private readonly ring: (HistoryEntry | undefined)[];
  private start = 0;
  private size = 0;
  /** The seq of the newest transition pushed out of the ring (0: none yet). */
  private evictedUpTo = 0;

  constructor(readonly capacity: number) {
    this.ring = new Array<HistoryEntry | undefined>(capacity);
  }

  push(entry: HistoryEntry): void {
    if (this.size === this.capacity) {
      this.evictedUpTo = this.ring[this.start]!.seq;
      this.ring[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    } else {
      this.ring[(this.start + this.size) % this.capacity] = entry;
      this.size++;
    }
  }

  /** Transitions after `seq`, oldest first; null when some of them were already discarded. */
  since(seq: number): HistoryEntry[] | null {
    if (seq < this.evictedUpTo) return null;
    const out: HistoryEntry[] = [];
    for (let i = 0; i < this.size; i++) {
      const entry = this.ring[(this.start + i) % this.capacity]!;
      if (entry.seq > seq) out.push(entry);
    }
    return out;
  }
}
