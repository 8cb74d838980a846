// Retries an isolate may spend, like Envoy's retry budget, kept per Service
// (route) so that a flood at one broken hostname does not spend another's: at
// most a share of the requests seen over a sliding window (with a small floor so a quiet
// isolate can still fail over), so an overloaded app is not hit again for
// every request it already refused. A 503 with Retry-After also puts its
// Service on hold: no immediate retry on 503s from it until the time passes.

export interface RetryBudgetOptions {
  /** Share of requests that may be retries (default 0.2). */
  ratio?: number;
  /** Retries always allowed per window, whatever the traffic (default 10). */
  floor?: number;
  windowMs?: number;
  /** Longest hold a Retry-After may ask for (default 60 s). */
  maxHoldMs?: number;
  /** Services whose budgets are kept; the least recently used is dropped beyond this (default 1000). */
  maxServices?: number;
  now?: () => number;
}

const BUCKETS = 10;

interface Ring {
  requests: number[];
  retries: number[];
  epochs: number[];
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly floor: number;
  private readonly bucketMs: number;
  private readonly maxHoldMs: number;
  private readonly now: () => number;
  /** Per Service (route key): a ring of per-bucket counts; `epochs` says which bucket number each slot holds. */
  private readonly rings = new Map<string, Ring>();
  private readonly maxServices: number;
  private readonly holds = new Map<string, number>();
  private readonly windowMs: number;
  private lastReport = Number.NEGATIVE_INFINITY;

  constructor(opts: RetryBudgetOptions = {}) {
    this.ratio = opts.ratio ?? 0.2;
    this.floor = opts.floor ?? 10;
    this.windowMs = opts.windowMs ?? 10_000;
    this.bucketMs = Math.max(1, Math.floor(this.windowMs / BUCKETS));
    this.maxHoldMs = opts.maxHoldMs ?? 60_000;
    this.now = opts.now ?? Date.now;
    this.maxServices = opts.maxServices ?? 1_000;
  }

  private ring(service: string): Ring {
    let r = this.rings.get(service);
    if (r) {
      // Most recently used last: the first key is the one to drop when the map is full.
      this.rings.delete(service);
    } else {
      if (this.rings.size >= this.maxServices) this.rings.delete(this.rings.keys().next().value!);
      r = { requests: new Array<number>(BUCKETS).fill(0), retries: new Array<number>(BUCKETS).fill(0), epochs: new Array<number>(BUCKETS).fill(-1) };
    }
    this.rings.set(service, r);
    return r;
  }

  private slot(r: Ring): number {
    const epoch = Math.floor(this.now() / this.bucketMs);
    const i = epoch % BUCKETS;
    if (r.epochs[i] !== epoch) {
      r.epochs[i] = epoch;
      r.requests[i] = 0;
      r.retries[i] = 0;
    }
    return i;
  }

  /** Counts one client request to `service` (a route key). */
  request(service = ""): void {
    const r = this.ring(service);
    r.requests[this.slot(r)]!++;
  }

  /** Takes one retry from `service`'s budget; false when it is spent. */
  tryRetry(service = ""): boolean {
    const r = this.ring(service);
    const current = this.slot(r);
    const oldest = r.epochs[current]! - BUCKETS + 1;
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (r.epochs[i]! < oldest) continue;
      requests += r.requests[i]!;
      retries += r.retries[i]!;
    }
    if (retries >= Math.max(this.floor, Math.floor(requests * this.ratio))) return false;
    r.retries[current]!++;
    return true;
  }

  /** True at most once per window: when a spent budget should be logged (not once per request). */
  reportSpent(): boolean {
    const now = this.now();
    if (now - this.lastReport < this.windowMs) return false;
    this.lastReport = now;
    return true;
  }

  /** A Service said Retry-After: no immediate retries on its 503s for that long (capped). */
  hold(service: string, ms: number): void {
    const until = this.now() + Math.min(Math.max(ms, 0), this.maxHoldMs);
    if (until > (this.holds.get(service) ?? 0)) this.holds.set(service, until);
  }

  isHeld(service: string): boolean {
    const until = this.holds.get(service);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.holds.delete(service);
    return false;
  }
}

/**
 * Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date, in ms from
 * now; undefined when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  // IMF-fixdate (and the obsolete forms) always name GMT; Date.parse alone takes "-5" as a year.
  if (!/GMT$/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
