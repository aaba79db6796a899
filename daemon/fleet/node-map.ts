/**
 * An immutable map of nodes, for the fleet fold's `next === prev` discipline at fleet scale.
 *
 * Copying a 1,000-entry Map for every message cost about 120 µs, most of the aggregator's work per node update. Here
 * the nodes sit in BUCKETS small arrays by a hash of their id (a few entries each: copying a small Map, its hash
 * table included, cost more than the scan a lookup makes here), the buckets in GROUPS arrays of GROUP_SIZE: a change
 * copies the array of groups, one group and one bucket, and everything else is shared with the previous state. (One
 * flat array of 256 buckets made every change copy 2 KiB of it, three changes per node update: more garbage than the
 * JSON.parse of the messages themselves, collected on V8's helper threads.)
 */
const GROUP_BITS = 4;
const GROUP_SIZE = 1 << GROUP_BITS;
const GROUPS = 16;
const BUCKETS = GROUPS * GROUP_SIZE;

function bucketOf(id: string): number {
  // FNV-1a over the UTF-16 code units: cheap, and spreads short ids like `node-0042` evenly.
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BUCKETS;
}

/** A bucket: its entries in insertion order. A few entries each: a scan beats hashing, and a copy is one slice. */
type Bucket<V> = readonly (readonly [string, V])[];
type Group<V> = readonly Bucket<V>[];

const EMPTY_BUCKET: Bucket<never> = [];
const EMPTY_GROUP: Group<never> = new Array<Bucket<never>>(GROUP_SIZE).fill(EMPTY_BUCKET);

function indexIn<V>(bucket: Bucket<V>, id: string): number {
  for (let i = 0; i < bucket.length; i++) if (bucket[i]![0] === id) return i;
  return -1;
}

export class NodeMap<V> {
  private constructor(
    private readonly groups: readonly Group<V>[],
    readonly size: number,
  ) {}

  static empty<V>(): NodeMap<V> {
    return new NodeMap<V>(new Array<Group<V>>(GROUPS).fill(EMPTY_GROUP), 0);
  }

  private bucket(b: number): Bucket<V> {
    return this.groups[b >>> GROUP_BITS]![b & (GROUP_SIZE - 1)]!;
  }

  get(id: string): V | undefined {
    const bucket = this.bucket(bucketOf(id));
    const i = indexIn(bucket, id);
    return i < 0 ? undefined : bucket[i]![1];
  }

  has(id: string): boolean {
    return indexIn(this.bucket(bucketOf(id)), id) >= 0;
  }

  /** A new map with `id` set to `value`; this one is unchanged. */
  set(id: string, value: V): NodeMap<V> {
    const b = bucketOf(id);
    const bucket = this.bucket(b).slice();
    const i = indexIn(bucket, id);
    if (i < 0) bucket.push([id, value]);
    else bucket[i] = [id, value];
    return new NodeMap(this.replaced(b, bucket), this.size + (i < 0 ? 1 : 0));
  }

  /** A new map without `id` (this one when it has no `id`). */
  delete(id: string): NodeMap<V> {
    const b = bucketOf(id);
    const i = indexIn(this.bucket(b), id);
    if (i < 0) return this;
    const bucket = this.bucket(b).slice();
    bucket.splice(i, 1);
    return new NodeMap(this.replaced(b, bucket), this.size - 1);
  }

  /** The groups with bucket `b` replaced: copies of the array of groups and of one group. */
  private replaced(b: number, bucket: Bucket<V>): Group<V>[] {
    const g = b >>> GROUP_BITS;
    const group = this.groups[g]!.slice();
    group[b & (GROUP_SIZE - 1)] = bucket;
    const groups = this.groups.slice();
    groups[g] = group;
    return groups;
  }

  *values(): IterableIterator<V> {
    for (const group of this.groups) for (const bucket of group) for (const entry of bucket) yield entry[1];
  }

  *keys(): IterableIterator<string> {
    for (const group of this.groups) for (const bucket of group) for (const entry of bucket) yield entry[0];
  }
}
