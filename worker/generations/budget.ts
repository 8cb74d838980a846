// The generations object's own daily budget (rv-proxy 5). Which locations are
// "busy" is chosen by whoever sends requests, not by the operator: past the
// free plan's 100,000 requests a UTC day the platform refuses every call to the
// object until midnight UTC, and every location falls back to KV (~60 s). So
// the object counts the requests it serves per UTC day and, past the budget
// (EDGELB_FAST_BUDGET, below the hard limit), answers checks at once with a
// retry-after that the location writes into its lease: each location slows to
// one check per 60–300 s instead of the object being switched off. Pushes,
// heartbeats and value fetches are counted but never refused: they are the point.
import type { Logger } from "../log/index.ts";
import { MAX_RETRY_AFTER_MS } from "./api.ts";

export const DAY_MS = 86_400_000;
/** The default budget: 80 % of the free plan's 100,000 requests a day, leaving room for pushes and the back-offs. */
export const DEFAULT_FAST_BUDGET = 80_000;
/** The shortest back-off once the budget is spent. */
export const BUDGET_RETRY_MIN_MS = 60_000;
/** Back-offs are spread over this much (locations that backed off together do not come back together). */
const SPREAD_MS = 60_000;
/**
 * Past the budget by this share of it, back-offs reach their longest (MAX_RETRY_AFTER_MS): with the
 * default, at 88,000, well before the free plan's refusal at 100,000.
 */
const RAMP = 0.1;
/** The day's count is written every this many requests (a row write per request would double the bill), and when it crosses the budget. */
export const BUDGET_SAVE_EVERY = 500;
const KEY = "budget";

export interface BudgetDay {
  /** The UTC day (ms since the epoch / DAY_MS). */
  day: number;
  /** Requests served that day (up to BUDGET_SAVE_EVERY - 1 are lost when the object is evicted: the budget sits below the limit for that too). */
  count: number;
  /** fast.budget_spent was logged that day. */
  spentSaid: boolean;
}

/**
 * How long a location waits before its next check after the day's `count`-th request (pure):
 * undefined within the budget (0: no budget); past it from 60 s, growing to 240 s at 110 % of the
 * budget, plus up to 60 s of spread (`random` in [0, 1)); never more than MAX_RETRY_AFTER_MS.
 */
export function budgetRetryAfter(count: number, budget: number, random: number): number | undefined {
  if (!(budget > 0) || count <= budget) return undefined;
  const over = Math.min(1, (count - budget) / Math.max(1, budget * RAMP));
  const floor = BUDGET_RETRY_MIN_MS + (MAX_RETRY_AFTER_MS - SPREAD_MS - BUDGET_RETRY_MIN_MS) * over;
  return Math.min(MAX_RETRY_AFTER_MS, Math.floor(floor + SPREAD_MS * Math.min(1, Math.max(0, random))));
}

export interface BudgetStorage {
  get<T>(key: string): Promise<T | undefined>;
  put<T>(key: string, value: T): Promise<void>;
}

export interface DailyBudgetOptions {
  /** Requests a UTC day before checks back off; 0: no budget. */
  budget: number;
  /** The object's storage (what it needs of DurableObjectStorage). */
  storage: BudgetStorage;
  now: () => number;
  random: () => number;
  log: Logger;
}

export class DailyBudget {
  private day: BudgetDay | undefined;
  private loading: Promise<BudgetDay> | undefined;

  constructor(private readonly o: DailyBudgetOptions) {}

  /** Counts one request; the retry-after (ms) when the day's budget is spent, else undefined. */
  async spend(): Promise<number | undefined> {
    const d = this.day ?? (await this.load());
    const now = this.o.now();
    const today = Math.floor(now / DAY_MS);
    let save = false;
    if (d.day !== today) {
      d.day = today;
      d.count = 0;
      d.spentSaid = false;
      save = true;
    }
    d.count++;
    if (this.o.budget > 0 && d.count > this.o.budget && !d.spentSaid) {
      d.spentSaid = true;
      save = true;
      this.o.log("warn", "fast.budget_spent", {
        budget: this.o.budget,
        requests: d.count,
        until: new Date((today + 1) * DAY_MS).toISOString(),
        action: "checks are answered at once and each location waits 60-300 s before its next one; pushes are still accepted",
      });
    }
    if (save || d.count % BUDGET_SAVE_EVERY === 0) {
      // A failed write loses only part of the count: it must not refuse the request (a push) that counted it.
      await Promise.resolve(this.o.storage.put(KEY, { ...d })).catch(() => {});
    }
    return budgetRetryAfter(d.count, this.o.budget, this.o.random());
  }

  /** The day's count so far (for tests and the status of the fast path). */
  async count(): Promise<number> {
    const d = this.day ?? (await this.load());
    return d.day === Math.floor(this.o.now() / DAY_MS) ? d.count : 0;
  }

  private load(): Promise<BudgetDay> {
    this.loading ??= Promise.resolve(this.o.storage.get<BudgetDay>(KEY)).catch(() => undefined).then((stored) => {
      // A stored value of another shape (a hand edit, an older object) starts the day at 0.
      const ok = stored && Number.isSafeInteger(stored.day) && Number.isSafeInteger(stored.count) && stored.count >= 0;
      this.day ??= ok ? { day: stored.day, count: stored.count, spentSaid: stored.spentSaid === true } : { day: Math.floor(this.o.now() / DAY_MS), count: 0, spentSaid: false };
      return this.day;
    });
    return this.loading;
  }
}
