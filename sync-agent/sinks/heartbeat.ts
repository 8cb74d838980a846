// The agent's heartbeat: while nothing changes, the controller writes nothing,
// and the edge would count the cluster's age from its last change. Every
// intervalMs without a push, the leader tells the sink "the stored snapshot is
// still mine and current"; the edge records when with its own clock
// (worker/control) and skips a cluster whose heartbeat is older than its
// EDGELB_STALE_AFTER. A push is a heartbeat too, so a busy cluster sends none.
import type { Logger } from "pino";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { SinkError, type Sink } from "./types.ts";

/** Default --heartbeat-interval for the worker sink: no KV write per heartbeat (the worker rate-limits its own). */
export const DEFAULT_HEARTBEAT_MS = 60_000;
/** Default for the kv-api sink: every heartbeat is a KV write (144 a day), inside the free plan's 1,000 with room for changes. */
export const DEFAULT_KV_HEARTBEAT_MS = 600_000;

export interface HeartbeatOptions {
  sink: Sink;
  intervalMs: number;
  /** The snapshot the edge holds as far as the controller knows, and when it was pushed. */
  last: () => { snapshot: Snapshot | null; pushedAt: number | undefined };
  /** Only the leader writes (and so heartbeats). */
  shouldWrite: () => boolean;
  /** A heartbeat was refused because the edge holds something else: push again. */
  onRefused: (reason: string) => void;
  log: Logger;
  now?: () => number;
  /**
   * Runs the heartbeat exclusive of the controller's pushes (agent.ts: one lock around
   * `sink.write` and `sink.heartbeat`). The kv-api sink rewrites the whole value: a heartbeat
   * PUT racing a push could leave the older generation in KV (last write wins). `last()` is
   * read after the lock is taken, so a heartbeat never carries a snapshot a push replaced.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  /**
   * Heartbeats that are KV writes (kv-api sink) count against --daily-write-budget, the same
   * pacer as pushes: none is sent once the day's budget is spent.
   */
  budget?: { daily: number; left: (now: number) => number; spend: (now: number) => void };
}

export class Heartbeat {
  /** Heartbeats the sink accepted. */
  sent = 0;
  /** Of those, how many were KV writes on the agent's side (kv-api sink). */
  kvWrites = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private busy = false;
  private budgetSpent = false;
  private lastProblem: string | undefined;
  private readonly now: () => number;

  constructor(private readonly o: HeartbeatOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    if (this.running || this.o.intervalMs <= 0 || !this.o.sink.heartbeat) return;
    this.running = true;
    const perDay = Math.floor(86_400_000 / this.o.intervalMs);
    if (this.o.budget?.daily && this.o.budget.daily < perDay + 1) {
      this.o.log.warn(
        { dailyWriteBudget: this.o.budget.daily, heartbeatsPerDay: perDay },
        `--daily-write-budget ${this.o.budget.daily} leaves no room for changes: heartbeats alone are ${perDay} KV writes a day at --heartbeat-interval ${this.o.intervalMs / 1000}s; ` +
          "once the budget is spent, neither changes nor heartbeats are written until the next UTC day (raise the budget or the interval)",
      );
    }
    // A restarted agent found its snapshot already stored (and pushed nothing): the first heartbeat
    // a quarter interval after start, not at once, so a restart (rollout, failover) costs no KV write
    // of its own when a change would carry the heartbeat anyway.
    this.lastAt ??= this.now() - this.o.intervalMs + Math.floor(this.o.intervalMs / 4);
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * The next check is due when the next heartbeat is (last heartbeat or push, taken when it
   * started, + interval), never later than a quarter interval from now (a push or a new leader
   * moves it), never sooner than 250 ms. A polling grid would miss the due time by up to a
   * quarter interval: heartbeats went every 1.25 × interval.
   */
  private schedule(): void {
    if (!this.running) return;
    const { pushedAt } = this.o.last();
    const due = Math.max(pushedAt ?? 0, this.lastAt ?? 0) + this.o.intervalMs;
    const delay = Math.max(250, Math.min(due - this.now(), Math.floor(this.o.intervalMs / 4)));
    this.timer = setTimeout(() => {
      void this.tick().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  /** Sends a heartbeat when one is due (exported for tests that drive time themselves). */
  async tick(): Promise<boolean> {
    if (this.busy || !this.due()) return false;
    this.busy = true;
    try {
      return await (this.o.exclusive ?? ((fn) => fn()))(() => this.beat());
    } finally {
      this.busy = false;
    }
  }

  /** A heartbeat is due: leader, something pushed, and nothing sent (push or heartbeat) for an interval. */
  private due(): Snapshot | undefined {
    if (!this.o.shouldWrite() || !this.o.sink.heartbeat) return undefined;
    const { snapshot, pushedAt } = this.o.last();
    const lastBeat = Math.max(pushedAt ?? 0, this.lastAt ?? 0);
    if (!snapshot || this.now() - lastBeat < this.o.intervalMs) return undefined;
    return snapshot;
  }

  private async beat(): Promise<boolean> {
    // Again under the lock: a push that went first is the heartbeat (and the newer snapshot).
    const snapshot = this.due();
    if (!snapshot || !this.o.sink.heartbeat) return false;
    // Timed from its start: the next one is due one interval after this one left, whatever the
    // sink's latency (taken after the answer, every heartbeat came a check late).
    const started = this.now();
    if (this.o.budget) {
      if (this.o.budget.left(started) <= 0) {
        this.lastAt = started;
        if (!this.budgetSpent) {
          this.o.log.warn(
            { dailyWriteBudget: this.o.budget.daily, generation: snapshot.generation },
            `heartbeat not sent: the daily write budget of ${this.o.budget.daily} is spent (every kv-api heartbeat is a KV write); the edge may count this cluster as stale until the next UTC day`,
          );
        }
        this.budgetSpent = true;
        return false;
      }
      this.budgetSpent = false;
      this.o.budget.spend(started);
    }
    try {
      const r = await this.o.sink.heartbeat(snapshot);
      this.lastAt = started;
      this.sent++;
      if (r.kvWrite) this.kvWrites++;
      if (this.lastProblem) this.o.log.info({ generation: snapshot.generation }, `heartbeat accepted again (after: ${this.lastProblem})`);
      this.lastProblem = undefined;
      this.o.log.debug({ generation: snapshot.generation, kvWrite: r.kvWrite }, `heartbeat for generation ${snapshot.generation}`);
      return true;
    } catch (err) {
      const e = err as Error;
      // Counted as an attempt: a failing edge is not asked again before the next interval.
      this.lastAt = started;
      if (e instanceof SinkError && (e.details.status === 404 || e.kind === "conflict")) this.o.onRefused(e.message);
      if (this.lastProblem !== e.message) this.o.log.warn({ err: e.message, generation: snapshot.generation }, `heartbeat failed: ${e.message}`);
      this.lastProblem = e.message;
      return false;
    }
  }

  private lastAt: number | undefined;
}
