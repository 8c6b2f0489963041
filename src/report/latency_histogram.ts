/**
 * A fixed-bucket latency histogram: buckets grow by 10 % from 1 ms, so its size is bounded (at
 * most {@linkcode LATENCY_BUCKETS} counters) whatever the number of requests, and a percentile
 * read from it is within 5 % of the exact one. Kept sparse: only buckets that were hit.
 * @module
 */

/** Growth factor from one bucket's upper bound to the next. */
export const LATENCY_BUCKET_FACTOR = 1.1;
/** Number of buckets: the last one holds everything above 1.1^199 ms (about 50 hours). */
export const LATENCY_BUCKETS = 200;

/** Bucket of a latency in ms: bucket i holds (1.1^(i-1), 1.1^i] ms, bucket 0 holds ≤ 1 ms. */
export function latencyBucket(ms: number): number {
  if (!(ms > 1)) return 0;
  const i = Math.ceil(Math.log(ms) / Math.log(LATENCY_BUCKET_FACTOR) - 1e-9);
  return Math.min(i, LATENCY_BUCKETS - 1);
}

/** Upper bound of bucket `i`, in ms. */
export function bucketUpperMs(i: number): number {
  return LATENCY_BUCKET_FACTOR ** i;
}

/** Latencies seen: count, sum, min, max and the sparse bucket counts (`{ bucket: count }`). */
export interface LatencySummary {
  n: number;
  sum: number;
  min: number;
  max: number;
  h: Record<string, number>;
}

/** An empty {@linkcode LatencySummary}. */
export function emptyLatency(): LatencySummary {
  return { n: 0, sum: 0, min: Infinity, max: 0, h: {} };
}

/** Adds one latency to `s`. */
export function addLatency(s: LatencySummary, ms: number): void {
  s.n++;
  s.sum += ms;
  if (ms < s.min) s.min = ms;
  if (ms > s.max) s.max = ms;
  const b = latencyBucket(ms);
  s.h[b] = (s.h[b] ?? 0) + 1;
}

/** Adds every latency of `from` to `into`. */
export function mergeLatency(into: LatencySummary, from: LatencySummary): void {
  into.n += from.n;
  into.sum += from.sum;
  if (from.n > 0) {
    into.min = Math.min(into.min, from.min);
    into.max = Math.max(into.max, from.max);
  }
  for (const [b, c] of Object.entries(from.h)) into.h[b] = (into.h[b] ?? 0) + c;
}

/**
 * The `q` quantile (0..1) of the latencies in `s`, in ms: the geometric middle of the bucket it
 * falls in, kept within the smallest and largest latency seen. Undefined when `s` is empty.
 */
export function latencyQuantile(s: LatencySummary, q: number): number | undefined {
  if (s.n === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * s.n));
  const buckets = Object.keys(s.h).map(Number).sort((a, b) => a - b);
  let seen = 0;
  for (const b of buckets) {
    seen += s.h[b];
    if (seen >= rank) {
      const mid = b === 0 ? 1 : Math.sqrt(bucketUpperMs(b - 1) * bucketUpperMs(b));
      return Math.min(s.max, Math.max(s.min, mid));
    }
  }
  return s.max;
}
