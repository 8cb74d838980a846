// The generations object's own daily budget (rv-proxy 5). Which locations are
// "busy" is chosen by whoever sends requests, not by the operator: past the
// free plan's 100,000 requests a UTC day the platform refuses every call to the
// object until midnight UTC, and every location falls back to KV (~60 s). So
// the object counts the requests it serves per UTC day and, past the budget
// (EDGELB_FAST_BUDGET, below the hard limit), answers checks at once with a
// retry-after that the location writes into its lease. The retry-after is set
// so that the rest of the day's requests fit the aim (120 % of the budget: the
// free plan's 100,000 less a reserve, for the default): the object knows which
// checks it has already promised (each location it answered comes back once
// more before it learns a new back-off) and spreads what is left after them
// over the rest of the day, 60 s to 1 h, however many locations clients make
// busy (several hundred). Pushes, heartbeats and value fetches are counted but
// never refused: they are the point.
import type { Logger } from "../log/index.ts";
import { MAX_HOLD_MS, MAX_RETRY_AFTER_MS } from "./api.ts";

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
/**
 * The day's count is written every this many requests (a row write per request would double the
 * bill; this is at most ~2,000 row writes a day), and when it crosses the budget. A restarted object
 * loses at most BUDGET_SAVE_EVERY − 1; past half the budget it counts those as served (see load).
 */
export const BUDGET_SAVE_EVERY = 50;
const KEY = "budget";

/**
 * Per BUCKET_MS over the last HISTORY buckets: how many requests the object answered, and the
 * longest a location it answered stays away (the retry-after it was given, jitter included, or a
 * hold). Long enough for the longest back-off.
 */
const BUCKET_MS = 10_000;
const HISTORY = Math.ceil(MAX_RETRY_AFTER_MS / BUCKET_MS) + 2;
/** How long a location answered without a back-off stays away at most: a held check's hold. */
const ANSWERED_AWAY_MS = MAX_HOLD_MS;

export interface BudgetDay {
  /** The UTC day (ms since the epoch / DAY_MS). */
  day: number;
  /** Requests served that day (see BUDGET_SAVE_EVERY for what a restart may lose). */
  count: number;
  /** fast.budget_spent was logged that day. */
  spentSaid: boolean;
}

/**
 * The back-off for every location past the budget (pure). `pending`: the checks already promised,
 * one per location that was answered and has not come back yet (each comes back once more whatever
 * the object says next: it learns a new back-off only then). After those, a location that waits
 * r ms checks at most (ms left in the day) / r more times, so the day stays within the aim
 * (BUDGET_CEILING − BUDGET_RESERVE of the budget) when count + pending × (1 + left / r) ≤ aim:
 * r = pending × left / (aim − count − pending), within 60 s and MAX_RETRY_AFTER_MS (the longest
 * once nothing is left after the promised checks).
 */
export function backOffFor(pending: number, count: number, budget: number, now: number): number {
  const msLeft = Math.max(1, (Math.floor(now / DAY_MS) + 1) * DAY_MS - now);
  const free = budget * (BUDGET_CEILING - BUDGET_RESERVE) - count - pending;
  if (!(free > 0)) return MAX_RETRY_AFTER_MS;
  const r = (pending * msLeft) / free;
  return Math.floor(Math.min(MAX_RETRY_AFTER_MS, Math.max(BUDGET_RETRY_MIN_MS, Number.isFinite(r) ? r : MAX_RETRY_AFTER_MS)));
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
  /** Per bucket (a ring indexed by bucket number): requests answered, and the longest a location answered then stays away (ms). */
  private readonly answered = new Array<number>(HISTORY).fill(0);
  private readonly away = new Array<number>(HISTORY).fill(0);
  private bucket = -1;
  /** The back-off past the budget, set again every bucket (backOffFor). */
  private retryMs = BUDGET_RETRY_MIN_MS;
  /** Checks are answered with the back-off: past the budget, or earlier when even the longest back-off from the budget on would not hold the aim (see pace). */
  private pacing = false;
  /** The UTC day fast.budget_paced was said (in memory: a restart may say it again). */
  private pacedSaid = -1;

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
      this.pacing = false;
      save = true;
    }
    // Set again every bucket, and at the crossing (not a bucket of the shortest back-off for everyone).
    const rolled = this.roll(now);
    if (this.o.budget > 0 && (rolled || (!this.pacing && d.count + 1 > this.o.budget))) this.pace(d, now);
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
    let retry: number | undefined;
    // Spread by up to a quarter: locations that backed off together do not come back together.
    if (this.pacing) retry = Math.min(MAX_RETRY_AFTER_MS, Math.floor(this.retryMs * (1 + 0.25 * Math.min(1, Math.max(0, this.o.random())))));
    const slot = this.bucket % HISTORY;
    this.answered[slot]!++;
    this.away[slot] = Math.max(this.away[slot]!, retry ?? ANSWERED_AWAY_MS);
    return retry;
  }

  /**
   * Decides whether checks back off and for how long (backOffFor). Past the budget they do. Before
   * it too when so many locations are busy that, once the budget is spent, even the longest back-off
   * would not hold the aim: each location costs one promised check plus one an hour for the rest of
   * the day (more than ~650 locations spend the default budget within the first hour). Then the
   * back-off starts now, spread over the whole day, and stays until midnight.
   */
  private pace(d: BudgetDay, now: number): void {
    const pending = this.pending(now);
    const msLeft = (Math.floor(now / DAY_MS) + 1) * DAY_MS - now;
    const aim = this.o.budget * (BUDGET_CEILING - BUDGET_RESERVE);
    const past = d.count + 1 > this.o.budget;
    const early = !past && !this.pacing && this.o.budget + pending * (1 + msLeft / MAX_RETRY_AFTER_MS) > aim;
    if (early && this.pacedSaid !== d.day) {
      this.pacedSaid = d.day;
      this.o.log("warn", "fast.budget_paced", {
        budget: this.o.budget,
        requests: d.count,
        pending,
        action: "more locations check than the budget can hold at the longest back-off once it is spent: every location backs off from now until midnight UTC, spread over the day; pushes are still accepted",
      });
    }
    this.pacing ||= past || early;
    if (this.pacing) this.retryMs = backOffFor(pending, d.count, this.o.budget, now);
  }

  /** Moves to the bucket of `now` (the ones passed are emptied); true when it moved. */
  private roll(now: number): boolean {
    const bucket = Math.floor(now / BUCKET_MS);
    if (bucket === this.bucket) return false;
    const passed = this.bucket < 0 ? HISTORY : Math.min(HISTORY, bucket - this.bucket);
    for (let i = 0; i < passed; i++) {
      const slot = (bucket - i) % HISTORY;
      this.answered[slot] = 0;
      this.away[slot] = 0;
    }
    this.bucket = bucket;
    return true;
  }

  /**
   * Checks promised at `now`: the requests answered in a bucket whose end plus the longest wait
   * given in it is still ahead (a location answered then has not necessarily come back). Each
   * location's last answer counts once; its earlier ones lie behind it. Rounded up to whole buckets.
   */
  private pending(now: number): number {
    let n = 0;
    for (let i = 0; i < HISTORY && this.bucket - i >= 0; i++) {
      const b = this.bucket - i;
      const slot = b % HISTORY;
      if ((b + 1) * BUCKET_MS + this.away[slot]! > now) n += this.answered[slot]!;
    }
    return n;
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

  /** The day's count so far (for tests and the status of the fast path). */
  async count(): Promise<number> {
    const d = this.day ?? (await this.load());
    return d.day === Math.floor(this.o.now() / DAY_MS) ? d.count : 0;
  }

  private load(): Promise<BudgetDay> {
    this.loading ??= Promise.resolve(this.o.storage.get<BudgetDay>(KEY)).catch(() => undefined).then((stored) => {
      // A stored value of another shape (a hand edit, an older object) starts the day at 0.
      const ok = stored && Number.isSafeInteger(stored.day) && Number.isSafeInteger(stored.count) && stored.count >= 0;
      if (ok && this.o.budget > 0 && stored.count > this.o.budget * UNKNOWN_HOST_SHARE) {
        // Past half the budget the count decides, so a restart counts the requests the last save may
        // have missed as served (never under the truth). Below it the stored count stands: a quiet
        // object is evicted often, and each restart would otherwise add requests never served.
        stored.count += BUDGET_SAVE_EVERY - 1;
      }
      this.day ??= ok ? { day: stored.day, count: stored.count, spentSaid: stored.spentSaid === true } : { day: Math.floor(this.o.now() / DAY_MS), count: 0, spentSaid: false };
      return this.day;
    });
    return this.loading;
  }
}
