// The generations object's own daily budget (rv-proxy 5). Which locations are
// "busy" is chosen by whoever sends requests, not by the operator: past the
// free plan's 100,000 requests a UTC day the platform refuses every call to the
// object until midnight UTC, and every location falls back to KV (~60 s). So
// the object counts the requests it serves per UTC day and, past the budget
// (EDGELB_FAST_BUDGET, below the hard limit), answers checks at once with a
// retry-after that the location writes into its lease. The retry-after is set
// so that the rest of the day's requests fit what is left below 125 % of the
// budget (the free plan's 100,000 for the default): the object measures its
// request rate and lengthens every location's back-off (60 s to 1 h) until the
// rate fits, however many locations clients make busy (several hundred). Pushes,
// heartbeats and value fetches are counted but never refused: they are the point.
import type { Logger } from "../log/index.ts";
import { MAX_RETRY_AFTER_MS } from "./api.ts";

export const DAY_MS = 86_400_000;
/** The default budget: 80 % of the free plan's 100,000 requests a day, leaving room for pushes and the back-offs. */
export const DEFAULT_FAST_BUDGET = 80_000;
/** The shortest back-off once the budget is spent. */
export const BUDGET_RETRY_MIN_MS = 60_000;
/** The most the object may serve a day, as a multiple of the budget: the default budget is 80 % of the free plan's 100,000. */
export const BUDGET_CEILING = 1.25;
/** Kept for pushes, heartbeats and value fetches below the ceiling, as a share of the budget. */
export const BUDGET_RESERVE = 0.05;
/** Checks for unknown hostnames stop once the day's count passes this share of the budget (see unknownHostRetry). */
export const UNKNOWN_HOST_SHARE = 0.5;
/** The request rate is measured over this many whole minutes. */
const WINDOW_MINUTES = 5;
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
 * The back-off for every location past the budget (pure): each location checks once per back-off,
 * so the object's rate is (busy locations / back-off); to fit the rest of the day into what is left
 * below BUDGET_CEILING × budget, the back-off grows by the ratio of the measured rate to the rate
 * that fits (and shrinks when it is lower), within 60 s and MAX_RETRY_AFTER_MS.
 */
export function adjustRetry(retryMs: number, recentPerS: number, count: number, budget: number, now: number): number {
  const secondsLeft = Math.max(1, ((Math.floor(now / DAY_MS) + 1) * DAY_MS - now) / 1000);
  // Checks may use what is left below the ceiling but a reserve (pushes, heartbeats and value fetches
  // go on: 5 % of the budget), aimed at 90 % of it (locations take a new back-off only at their next check).
  const left = budget * (BUDGET_CEILING - BUDGET_RESERVE) - count;
  if (!(left > 0)) return MAX_RETRY_AFTER_MS;
  const fits = (0.9 * left) / secondsLeft;
  const next = (retryMs * recentPerS) / fits;
  return Math.floor(Math.min(MAX_RETRY_AFTER_MS, Math.max(BUDGET_RETRY_MIN_MS, Number.isFinite(next) ? next : MAX_RETRY_AFTER_MS)));
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
  /** Requests in each of the last WINDOW_MINUTES whole minutes, and the current one. */
  private readonly perMinute: number[] = new Array<number>(WINDOW_MINUTES).fill(0);
  private minute = -1;
  private current = 0;
  /** The back-off past the budget, adjusted once a minute (adjustRetry). */
  private retryMs = BUDGET_RETRY_MIN_MS;

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
      this.retryMs = BUDGET_RETRY_MIN_MS;
      save = true;
    }
    this.tick(now, d.count);
    this.current++;
    d.count++;
    if (this.o.budget > 0 && d.count > this.o.budget && !d.spentSaid) {
      d.spentSaid = true;
      save = true;
      this.o.log("warn", "fast.budget_spent", {
        budget: this.o.budget,
        requests: d.count,
        until: new Date((today + 1) * DAY_MS).toISOString(),
        action: "checks are answered at once and each location waits 60 s to 1 h before its next one, so that the day stays below 125 % of the budget; pushes are still accepted",
      });
    }
    if (save || d.count % BUDGET_SAVE_EVERY === 0) {
      // A failed write loses only part of the count: it must not refuse the request (a push) that counted it.
      await Promise.resolve(this.o.storage.put(KEY, { ...d })).catch(() => {});
    }
    if (!(this.o.budget > 0) || d.count <= this.o.budget) return undefined;
    // Spread by up to a quarter: locations that backed off together do not come back together.
    return Math.min(MAX_RETRY_AFTER_MS, Math.floor(this.retryMs * (1 + 0.25 * Math.min(1, Math.max(0, this.o.random())))));
  }

  /**
   * Past half the day's budget (after spend()): how long a location starts no check for an unknown
   * hostname, the longest back-off a location keeps (an hour: at most 24 such checks a day per
   * location, answered at once); else undefined. Anyone can send requests for unknown hostnames,
   * so they may spend at most about half; a new hostname then arrives through KV.
   */
  unknownHostRetry(): number | undefined {
    const d = this.day;
    if (!d || !(this.o.budget > 0) || d.count <= this.o.budget * UNKNOWN_HOST_SHARE) return undefined;
    return MAX_RETRY_AFTER_MS;
  }

  /** Rolls the per-minute counts; past the budget, adjusts the back-off to the measured rate once a minute. */
  private tick(now: number, count: number): void {
    const minute = Math.floor(now / 60_000);
    if (minute === this.minute) return;
    if (this.minute >= 0) {
      const gone = Math.min(WINDOW_MINUTES, minute - this.minute);
      for (let i = 0; i < gone; i++) {
        this.perMinute.shift();
        this.perMinute.push(i === 0 ? this.current : 0);
      }
      if (this.o.budget > 0 && count > this.o.budget) {
        const recentPerS = this.perMinute.reduce((a, b) => a + b, 0) / (WINDOW_MINUTES * 60);
        this.retryMs = adjustRetry(this.retryMs, recentPerS, count, this.o.budget, now);
      }
    }
    this.minute = minute;
    this.current = 0;
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
