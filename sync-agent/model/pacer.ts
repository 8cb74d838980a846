// When to write: the coalescing and rate decisions, with time passed in so
// they are testable without clocks. A burst of changes (a rollout, a node
// draining) becomes one write after a quiet period, but no change waits
// longer than maxDelay; KV allows one write per second per key; the free tier
// allows 1,000 writes a day, so an optional budget holds writes until the
// next UTC day rather than failing them.
export interface PacerOptions {
  /** Write once nothing changed for this long. */
  quietMs: number;
  /** …but never hold a change longer than this. */
  maxDelayMs: number;
  /** At most one write per this interval (KV: 1 write/s per key). */
  minIntervalMs: number;
  /** Writes allowed per UTC day; 0 or undefined = unlimited. */
  dailyBudget?: number | undefined;
}

export type PacerDecision =
  | { kind: "idle" }
  | { kind: "write" }
  | { kind: "wait"; at: number; why: "quiet" | "rate" }
  | { kind: "budget"; at: number };

function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

function nextUtcMidnight(now: number): number {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

export class Pacer {
  /** First moment the desired state differed from what is stored. */
  pendingSince: number | undefined;
  /** Last time the desired state changed while pending. */
  changedAt: number | undefined;
  lastWriteAt: number | undefined;
  private day = "";
  writesToday = 0;

  constructor(readonly opts: PacerOptions) {}

  /** The desired snapshot changed and differs from the stored one. */
  changed(now: number): void {
    this.pendingSince ??= now;
    this.changedAt = now;
  }

  /** The desired snapshot equals the stored one again: nothing to write. */
  settled(): void {
    this.pendingSince = undefined;
    this.changedAt = undefined;
  }

  /** A write (successful or not) reached the sink. */
  wrote(now: number): void {
    this.lastWriteAt = now;
    if (utcDay(now) !== this.day) {
      this.day = utcDay(now);
      this.writesToday = 0;
    }
    this.writesToday++;
  }

  budgetLeft(now: number): number {
    const budget = this.opts.dailyBudget;
    if (!budget) return Infinity;
    return utcDay(now) === this.day ? budget - this.writesToday : budget;
  }

  decide(now: number): PacerDecision {
    if (this.pendingSince === undefined || this.changedAt === undefined) return { kind: "idle" };
    if (this.budgetLeft(now) <= 0) return { kind: "budget", at: nextUtcMidnight(now) };
    const quietAt = Math.min(this.changedAt + this.opts.quietMs, this.pendingSince + this.opts.maxDelayMs);
    const rateAt = this.lastWriteAt === undefined ? 0 : this.lastWriteAt + this.opts.minIntervalMs;
    if (now < quietAt && quietAt >= rateAt) return { kind: "wait", at: quietAt, why: "quiet" };
    if (now < rateAt) return { kind: "wait", at: Math.max(rateAt, quietAt), why: "rate" };
    return { kind: "write" };
  }
}
