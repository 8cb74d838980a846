// Event correlation like client-go's EventCorrelator, so that a flapping node
// cannot flood the API server with Events:
// - an identical Event seen again bumps `count` on the existing object (a patch)
//   instead of creating a new one;
// - after `aggregateMaxEvents` similar Events (same object, type and reason,
//   different messages) within `aggregateIntervalMs`, they are folded into one
//   "(combined from similar events): …" Event;
// - a token bucket per involved object and reason (burst, then one per refill
//   interval) drops what is left. client-go keys it by object only; per reason
//   means a flood of one kind (UpdatedLoadBalancer from a flapping node) cannot
//   starve a different, rarer one (UnAvailableLoadBalancer, DeletedLoadBalancer).
// Stateful but I/O-free: the recorder asks, then performs the returned action.

export type EventType = "Normal" | "Warning";

export interface ObjectRef {
  kind?: string;
  apiVersion?: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventInput {
  ref: ObjectRef;
  type: EventType;
  reason: string;
  message: string;
}

export interface CorrelatorOptions {
  /** Similar Events (same object/type/reason) before they are aggregated. client-go: 10. */
  aggregateMaxEvents: number;
  /** Window for similar Events and for count bumps on identical ones. client-go: 10 minutes. */
  aggregateIntervalMs: number;
  /** Events of one reason an object may get in a burst. client-go: 25 (per object). */
  burst: number;
  /** One more token per this many ms. client-go: 5 minutes. */
  refillIntervalMs: number;
  /** Remembered Event keys (LRU). client-go: 4096. */
  maxEntries: number;
}

export const DEFAULT_CORRELATOR: CorrelatorOptions = {
  aggregateMaxEvents: 10,
  aggregateIntervalMs: 10 * 60_000,
  burst: 25,
  refillIntervalMs: 5 * 60_000,
  maxEntries: 4096,
};

export type Correlation =
  | { action: "create"; message: string; count: 1; key: string }
  | { action: "patch"; name: string; message: string; count: number; firstTimestamp: number; key: string }
  | { action: "drop"; why: "rate-limited" };

interface Seen {
  name: string | null;
  count: number;
  firstTimestamp: number;
  lastTimestamp: number;
}

interface Similar {
  messages: Set<string>;
  firstAt: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const AGGREGATE_PREFIX = "(combined from similar events): ";

function objectKey(ref: ObjectRef): string {
  return [ref.kind ?? "Service", ref.namespace, ref.name, ref.uid ?? ""].join("\u0000");
}

export class EventCorrelator {
  private readonly opts: CorrelatorOptions;
  private readonly seen = new Map<string, Seen>();
  private readonly similar = new Map<string, Similar>();
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: Partial<CorrelatorOptions> = {}) {
    this.opts = { ...DEFAULT_CORRELATOR, ...opts };
  }

  correlate(ev: EventInput, now: number): Correlation {
    const obj = objectKey(ev.ref);
    if (!this.take(`${obj}\u0000${ev.reason}`, now)) return { action: "drop", why: "rate-limited" };

    // Aggregate: many different messages for the same object/type/reason.
    const simKey = [obj, ev.type, ev.reason].join("\u0000");
    let sim = this.similar.get(simKey);
    if (!sim || now - sim.firstAt > this.opts.aggregateIntervalMs) {
      sim = { messages: new Set(), firstAt: now };
      this.similar.set(simKey, sim);
    }
    sim.messages.add(ev.message);
    const aggregated = sim.messages.size >= this.opts.aggregateMaxEvents;
    const message = aggregated ? AGGREGATE_PREFIX + ev.message : ev.message;
    // All aggregated Events share one key, so they become count bumps of one object.
    const key = aggregated ? `${simKey}\u0000${AGGREGATE_PREFIX}` : `${simKey}\u0000${ev.message}`;

    const prev = this.lru(key);
    if (prev && prev.name && now - prev.lastTimestamp <= this.opts.aggregateIntervalMs) {
      prev.count++;
      prev.lastTimestamp = now;
      return { action: "patch", name: prev.name, message, count: prev.count, firstTimestamp: prev.firstTimestamp, key };
    }
    this.remember(key, { name: null, count: 1, firstTimestamp: now, lastTimestamp: now });
    return { action: "create", message, count: 1, key };
  }

  /** The recorder reports the created object's name so later repeats can patch it. */
  created(key: string, name: string): void {
    const s = this.seen.get(key);
    if (s) s.name = name;
  }

  /** The object is gone (404 on patch, or creation failed): the next repeat creates afresh. */
  forget(key: string): void {
    this.seen.delete(key);
  }

  private take(obj: string, now: number): boolean {
    let b = this.buckets.get(obj);
    if (!b) {
      b = { tokens: this.opts.burst, at: now };
      this.buckets.set(obj, b);
    }
    const refill = Math.floor((now - b.at) / this.opts.refillIntervalMs);
    if (refill > 0) {
      b.tokens = Math.min(this.opts.burst, b.tokens + refill);
      b.at += refill * this.opts.refillIntervalMs;
    }
    if (b.tokens >= this.opts.burst) b.at = now;
    if (b.tokens <= 0) return false;
    b.tokens--;
    return true;
  }

  private lru(key: string): Seen | undefined {
    const s = this.seen.get(key);
    if (s) {
      this.seen.delete(key);
      this.seen.set(key, s);
    }
    return s;
  }

  private remember(key: string, s: Seen): void {
    this.seen.delete(key);
    this.seen.set(key, s);
    while (this.seen.size > this.opts.maxEntries) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    if (this.buckets.size > this.opts.maxEntries) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
    if (this.similar.size > this.opts.maxEntries) {
      const oldest = this.similar.keys().next().value as string;
      this.similar.delete(oldest);
    }
  }
}
