/**
 * Token buckets keyed by tenant or client address: `perMinute` tokens of capacity, refilled
 * continuously at `perMinute / 60` per second, so a client may burst up to a minute's worth.
 * Pure apart from the injected clock. A full bucket is the same as no bucket, so `sweep`
 * forgets them and memory stays bounded by the clients active in the last minute.
 */
export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterS: number };

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.perMs = perMinute / 60_000;
  }

  take(key: string): TakeResult {
    const bucket = this.refill(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000)) };
  }

  /** Returns a token taken by `take` (a request that turned out not to count). */
  refund(key: string): void {
    const bucket = this.refill(key);
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + 1);
  }

  sweep(): void {
    for (const key of [...this.buckets.keys()]) {
      if (this.refill(key).tokens >= this.perMinute) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }

  private refill(key: string): Bucket {
    const now = this.clock();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = { tokens: this.perMinute, updatedAtMs: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.updatedAtMs) * this.perMs);
    bucket.updatedAtMs = now;
    return bucket;
  }
}
