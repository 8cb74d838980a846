// Retries an isolate may spend, like Envoy's retry budget: at most a share of
// the requests seen over a sliding window (with a small floor so a quiet
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
  now?: () => number;
}

const BUCKETS = 10;

export class RetryBudget {
  private readonly ratio: number;
  private readonly floor: number;
  private readonly bucketMs: number;
  private readonly maxHoldMs: number;
  private readonly now: () => number;
  /** Ring of per-bucket counts; `epochs` says which bucket number each slot holds. */
  private readonly requests = new Array<number>(BUCKETS).fill(0);
  private readonly retries = new Array<number>(BUCKETS).fill(0);
  private readonly epochs = new Array<number>(BUCKETS).fill(-1);
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
  }

  private slot(): number {
    const epoch = Math.floor(this.now() / this.bucketMs);
    const i = epoch % BUCKETS;
    if (this.epochs[i] !== epoch) {
      this.epochs[i] = epoch;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }

  /** Counts one client request. */
  request(): void {
    this.requests[this.slot()]!++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const current = this.slot();
    const oldest = this.epochs[current]! - BUCKETS + 1;
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.epochs[i]! < oldest) continue;
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    if (retries >= Math.max(this.floor, Math.floor(requests * this.ratio))) return false;
    this.retries[current]!++;
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
