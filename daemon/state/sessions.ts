/**
 * The sessions of a StatusState: an ordered map (first-start order, as a Map's insertion order) that is persistent,
 * as the pure fold needs (every state keeps its contents for ever), while a change costs O(changed), not O(sessions).
 *
 * Why this structure rather than a copy, or a library (measured on Node 20, one change per batch, 10 and 10,000
 * sessions; /tmp scripts, not kept):
 *  - a native Map copied per batch (what the fold did): 0.6 µs per change at 10 sessions, 1,450 µs at 10,000;
 *  - immutable's OrderedMap (HAMT + vector, the well-kept library for this): 0.15 µs / 0.93 µs per change, get 0.04 /
 *    0.17 µs, iteration 14x slower than a native Map (0.48 ms per 10,000 sessions, paid by every snapshot rendering);
 *  - this table: the same cost per change at both sizes (a whole one-event fold, ~1 µs, is the same at 10 and at
 *    10,000 sessions), a native Map's speed for get and iteration, nothing to load at start (the idle footprint is a
 *    goal of its own), and ~25 ns more per event than the copy when a read carries hundreds of events for few
 *    sessions (an overlay lookup); a persistent map library would cost that and its slower lookups as well.
 * The runtime only ever reads the newest state, so the newest version of a lineage (its `head`) owns a native Map
 * that each commit updates in place. The version a commit replaces keeps an undo log (its own values of the keys
 * that changed, with their insertion sequence) and a link to its successor, so it still reads exactly as before: a
 * lookup walks the undo logs up to the head (one step in practice); iterating it, or folding from it again, rebuilds
 * its Map once from the head's (sorted by insertion sequence, which restores the order deletions disturbed). After as
 * many logged changes as four times its sessions (at least 1,024), a lineage starts afresh from one O(n) copy:
 * amortised O(1) per change (a 10,000-entry copy is ~3 ms, so ~0.08 µs per change), and an old state somebody keeps
 * holds at most O(n) undo entries, as an old version of any persistent map would. sessions.test.ts checks every
 * version against a plain copying model (a fast-check property test).
 *
 * Iterators of the newest state are the Map's own: consume them before the next fold (all code here does, it is
 * single-threaded and iterates synchronously).
 */
import { SESSION_STATES, type SessionState } from '../../protocol/snapshot.ts';
import type { Session } from './fold.ts';

/** A key's value and insertion sequence in the version that holds the undo log (value undefined: absent there). */
interface Undo {
  readonly value: Session | undefined;
  readonly seq: number;
}

export type StateCounts = Readonly<Record<SessionState, number>>;

/** The mutable data behind the versions of one lineage; `map` shows `head`. */
class Lineage {
  head: SessionTable | null = null;
  logged = 0;
  constructor(
    readonly map: Map<string, Session>,
    /** Each key's insertion sequence: only read to rebuild an older version's order. */
    readonly seqs: Map<string, number>,
    public nextSeq: number,
  ) {}
}

/** A lineage restarts after max(MIN, PER_SESSION x sessions) logged changes (see the top of the file). */
const MIN_LINEAGE_CHANGES = 1024;
/** Entries copied into new Maps since start: what the tests check to see that a change does not copy the table. */
export const tableStats = { copiedEntries: 0 };
const LINEAGE_CHANGES_PER_SESSION = 4;

export class SessionTable implements ReadonlyMap<string, Session> {
  /** Set when this version is no longer its lineage's head: how to read it from `newer`. */
  private newer: SessionTable | null = null;
  private undo: Map<string, Undo> | null = null;
  /** This version's own Map, once rebuilt (stale versions only). */
  private rebuilt: Map<string, Session> | null = null;
  private rebuiltSeqs: Map<string, number> | null = null;

  private constructor(
    private readonly lineage: Lineage,
    readonly size: number,
    /** Sessions by state, kept up to date by every commit: global state and metrics need no scan. */
    readonly counts: StateCounts,
  ) {}

  static empty(): SessionTable {
    const lineage = new Lineage(new Map(), new Map(), 1);
    const counts = Object.fromEntries(SESSION_STATES.map((s) => [s, 0])) as Record<SessionState, number>;
    return (lineage.head = new SessionTable(lineage, 0, counts));
  }

  /** A table with the entries of any map, in its order. */
  static from(entries: Iterable<readonly [string, Session]>): SessionTable {
    const draft = SessionTable.empty().edit();
    for (const [key, s] of entries) draft.set(key, s);
    return draft.result();
  }

  /** Sessions in this state. */
  countIn(state: SessionState): number {
    return this.counts[state] ?? 0;
  }

  get(key: string): Session | undefined {
    if (this.rebuilt !== null) return this.rebuilt.get(key);
    const head = this.lineage.head;
    for (let t: SessionTable = this; t !== head; t = t.newer!) {
      const u = t.undo!.get(key);
      if (u !== undefined) return u.value;
    }
    return this.lineage.map.get(key);
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  keys(): MapIterator<string> {
    return this.view().keys();
  }

  values(): MapIterator<Session> {
    return this.view().values();
  }

  entries(): MapIterator<[string, Session]> {
    return this.view().entries();
  }

  [Symbol.iterator](): MapIterator<[string, Session]> {
    return this.view().entries();
  }

  forEach(callback: (value: Session, key: string, map: ReadonlyMap<string, Session>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.view()) callback.call(thisArg, value, key, this);
  }

  /** A number that orders the sessions as iteration does (-1: absent), to sort a few looked-up sessions. */
  orderOf(key: string): number {
    if (this.lineage.head === this) return this.lineage.seqs.get(key) ?? -1;
    this.view();
    return this.rebuiltSeqs!.get(key) ?? -1;
  }

  /** A draft of the next version: reads see its own writes; `result()` commits them (or returns this, unchanged). */
  edit(): TableDraft {
    return new TableDraft(this);
  }

  /** The Map that shows this version: the lineage's own for the head, else rebuilt once. */
  private view(): ReadonlyMap<string, Session> {
    if (this.lineage.head === this) return this.lineage.map;
    if (this.rebuilt === null) ({ map: this.rebuilt, seqs: this.rebuiltSeqs } = this.rebuild());
    return this.rebuilt;
  }

  /** This version's entries and sequences, in its order, in new Maps (O(n log n); for stale versions only). */
  private rebuild(): { map: Map<string, Session>; seqs: Map<string, number> } {
    const lineage = this.lineage;
    const chain: SessionTable[] = [];
    for (let t: SessionTable = this; t !== lineage.head; t = t.newer!) chain.push(t);
    const values = new Map(lineage.map);
    const seqs = new Map(lineage.seqs);
    tableStats.copiedEntries += 2 * values.size;
    for (let i = chain.length - 1; i >= 0; i--) {
      for (const [key, u] of chain[i]!.undo!) {
        if (u.value === undefined) {
          values.delete(key);
          seqs.delete(key);
        } else {
          values.set(key, u.value);
          seqs.set(key, u.seq);
        }
      }
    }
    const order = [...seqs.keys()].sort((a, b) => seqs.get(a)! - seqs.get(b)!);
    const map = new Map<string, Session>();
    const orderedSeqs = new Map<string, number>();
    for (const key of order) {
      map.set(key, values.get(key)!);
      orderedSeqs.set(key, seqs.get(key)!);
    }
    return { map, seqs: orderedSeqs };
  }

  /** Applies a draft's changes: in place when this is the head of a young lineage, else on a new lineage. */
  commit(changes: ReadonlyMap<string, Session | null>, appended: ReadonlySet<string> | null): SessionTable {
    let base: SessionTable = this;
    const lineage = this.lineage;
    if (lineage.head !== this || lineage.logged >= Math.max(MIN_LINEAGE_CHANGES, LINEAGE_CHANGES_PER_SESSION * this.size)) {
      if (lineage.head === this) tableStats.copiedEntries += lineage.map.size;
      const { map, seqs } = lineage.head === this ? { map: new Map(lineage.map), seqs: new Map(lineage.seqs) } : this.rebuild();
      const fresh = new Lineage(map, seqs, lineage.nextSeq);
      base = fresh.head = new SessionTable(fresh, this.size, this.counts);
    }
    return base.applyInPlace(changes, appended);
  }

  private applyInPlace(changes: ReadonlyMap<string, Session | null>, appended: ReadonlySet<string> | null): SessionTable {
    const lineage = this.lineage;
    const { map, seqs } = lineage;
    const undo = new Map<string, Undo>();
    const counts: Record<SessionState, number> = { ...this.counts };
    let size = this.size;
    for (const [key, value] of changes) {
      const old = map.get(key);
      undo.set(key, { value: old, seq: old === undefined ? 0 : seqs.get(key)! });
      if (old !== undefined) {
        counts[old.state] = (counts[old.state] ?? 0) - 1;
        size--;
      }
      if (value === null) {
        if (old !== undefined) {
          map.delete(key);
          seqs.delete(key);
        }
        continue;
      }
      if (old === undefined || appended?.has(key)) {
        // New to the map, or removed and started again within the batch: it goes to the end, as a Map would put it.
        if (old !== undefined) map.delete(key);
        map.set(key, value);
        seqs.set(key, lineage.nextSeq++);
      } else {
        map.set(key, value);
      }
      counts[value.state] = (counts[value.state] ?? 0) + 1;
      size++;
    }
    const next = new SessionTable(lineage, size, counts);
    this.undo = undo;
    this.newer = next;
    lineage.head = next;
    lineage.logged += changes.size;
    return next;
  }
}

/** The changes of one fold batch over a table: O(changed) memory, nothing is copied. */
export class TableDraft {
  /** Changed keys: the new session, or null for removed. A key (re)added in the batch sits after the others. */
  private changes: Map<string, Session | null> | null = null;
  /** Keys added in this batch (absent from the base, or removed from it first): they go to the end. */
  private appended: Set<string> | null = null;
  private delta = 0;

  constructor(private readonly base: SessionTable) {}

  get size(): number {
    return this.base.size + this.delta;
  }

  get(key: string): Session | undefined {
    const changed = this.changes?.get(key);
    if (changed !== undefined) return changed ?? undefined;
    return this.base.get(key);
  }

  /** `present`: whether the key has a session now, when the caller just read it (saves a lookup per event). */
  set(key: string, s: Session, present: boolean = this.get(key) !== undefined): void {
    const changes = (this.changes ??= new Map());
    if (!present) {
      changes.delete(key);
      (this.appended ??= new Set()).add(key);
      this.delta++;
    }
    changes.set(key, s);
  }

  delete(key: string): void {
    if (this.get(key) === undefined) return;
    (this.changes ??= new Map()).set(key, null);
    this.appended?.delete(key);
    this.delta--;
  }

  /** The entries as of now, in order, as an array: safe to iterate while writing. */
  entries(): [string, Session][] {
    const out: [string, Session][] = [];
    const changes = this.changes;
    for (const [key, s] of this.base) {
      if (changes === null || !changes.has(key)) out.push([key, s]);
      else if (!this.appended?.has(key)) {
        const now = changes.get(key);
        if (now) out.push([key, now]);
      }
    }
    if (changes !== null && this.appended !== null) {
      for (const [key, s] of changes) if (s !== null && this.appended.has(key)) out.push([key, s]);
    }
    return out;
  }

  result(): SessionTable {
    return this.changes === null ? this.base : this.base.commit(this.changes, this.appended);
  }
}
