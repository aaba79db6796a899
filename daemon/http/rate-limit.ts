/**
 * A token bucket per client address for failed API-key attempts: 10 per second, bursts of 30 (upstream's figures).
 *
 * Only failures take tokens, and the caller never asks for a request that presented the right key, so a dashboard
 * behind the same address as a client stuck on an old key keeps working. That rule also means the limit does not stop
 * a key from being guessed (a limited address still learns from a 200): what protects the key is its length. What the
 * limit does bound is the work and the noise wrong keys cause.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LimitOptions {
  readonly perSecond: number;
  readonly burst: number;
  /** Most addresses tracked at once: beyond it the least recently failing ones are forgotten (a fresh burst for them). */
  readonly maxAddresses: number;
}

export const FAILURE_LIMIT: LimitOptions = { perSecond: 10, burst: 30, maxAddresses: 10_000 };

interface Bucket {
  tokens: number;
  at: number;
  /**
   * Answered 429 since the bucket was last full: the first 429 of an episode is logged, the rest are not. A token
   * trickling back under a steady stream of failures does not end the episode (that would log 10 lines a second).
   */
  limited: boolean;
}

export type Verdict = { readonly limited: false } | { readonly limited: true; readonly retryAfterSeconds: number; readonly first: boolean };

export class FailureLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly options: LimitOptions = FAILURE_LIMIT,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Records a failed attempt from `address` and says whether it is over the limit. */
  fail(address: string): Verdict {
    const { perSecond, burst } = this.options;
    const key = addressKey(address);
    const now = this.clock();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: burst, at: now, limited: false };
      this.makeRoom();
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
      if (bucket.tokens >= burst) bucket.limited = false;
      // Re-inserted so that the Map's order is least recently failing first.
      this.buckets.delete(key);
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { limited: false };
    }
    const first = !bucket.limited;
    bucket.limited = true;
    return { limited: true, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)), first };
  }

  private makeRoom(): void {
    if (this.buckets.size < this.options.maxAddresses) return;
    // A bucket that has refilled is the same as no bucket: drop those first, then the least recently failing.
    const now = this.clock();
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.options.perSecond >= this.options.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.options.maxAddresses) break;
      this.buckets.delete(key);
    }
  }
}

/**
 * The bucket an address counts against: IPv4 (IPv4-mapped IPv6 included) by address, other IPv6 by its /64, because
 * one host usually holds a whole /64 and could otherwise take a fresh bucket per address.
 */
export function addressKey(address: string): string {
  const bare = address.split('%')[0]!;
  if (net.isIPv4(bare)) return bare;
  if (!net.isIPv6(bare)) return address;
  const groups = expandIPv6(bare);
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  if (groups.slice(0, 7).every((g) => g === 0)) return bare; // ::1 and ::
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** Eight 16-bit groups of a valid IPv6 address (as `net.isIPv6` accepts it, embedded IPv4 included). */
function expandIPv6(address: string): number[] {
  let text = address.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (net.isIPv4(tail)) {
    const b = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  if (rest === undefined) return left;
  const right = parse(rest);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}
