// The fast path's client (issue 19). With a hold time (the default), one
// isolate per location keeps a check held at the generations Durable Object
// (worker/generations, a long poll): a push anywhere answers it at once with
// the changed values, the isolate installs them and writes the location copy,
// where the location's other isolates take them at their next look. "One per
// location" is a lease in the location's Cache API (best effort: the Cache
// API has no compare-and-set; on workers.dev it keeps nothing, so there every
// isolate holds its own check). Each check is started from a request's
// waitUntil and ends before the runtime's 30 s limit for it; a quiet location
// (no requests for a routed hostname: unknown hosts and the edge's own answers
// do not count, anyone can send those) holds none. Past its daily budget the
// object answers at once with a retry-after, kept in the lease's `next`. At most one check per location per interval
// (EDGELB_FAST_CHECK) bounds the cost however often the cluster changes.
// Without a hold time the isolate asks which versions the object holds at
// most once per interval (polling). Every answer is validated; a failure is
// logged once and the isolate goes on with KV and the location copy.
import * as v from "valibot";
import type { Logger } from "../../log/index.ts";
import { parseSnapshot } from "../../snapshot/schema.ts";
import type { CheckCause, Known, ValueVersion, Versions as VersionsT, WatchableGenerationsApi } from "../../generations/api.ts";
import { MAX_HOLD_MS, MAX_RETRY_AFTER_MS, ValueVersion as ValueVersionSchema, versionKey, Versions, WatchAnswer } from "../../generations/api.ts";
import { DEFAULT_INSTANCE, type LocationCache, type StoredValue } from "../location/index.ts";
import { parseTombstone } from "../stored.ts";

/** The location's shared answer; per deployment, as caches.default is shared by every worker on the zone. */
export function sharedKey(instance: string | undefined): string {
  return instance === undefined || instance === DEFAULT_INSTANCE
    ? "https://edgelb-location-copy.invalid/v1/generations"
    : `https://edgelb-location-copy.invalid/v1/instances/${encodeURIComponent(instance)}/generations`;
}
const SHARED_FORMAT = "edgelb.dev/location-generations/v1";
/** A versions answer is a few dozen bytes per cluster: anything far bigger is not one. */
const MAX_SHARED_BYTES = 1024 * 1024;

/** Where the location's one held check is announced (see Lease). */
export function leaseKey(instance: string | undefined): string {
  return sharedKey(instance).replace(/\/generations$/, "/watch-lease");
}
const LEASE_FORMAT = "edgelb.dev/location-watch-lease/v1";
/**
 * The location's lease on its held check: who holds it, until when at most, and when the location
 * may start its next check (the interval, shared by the location's isolates).
 */
const Lease = v.object({
  format: v.literal(LEASE_FORMAT),
  instance: v.string(),
  holder: v.pipe(v.string(), v.maxLength(64)),
  until: v.pipe(v.number(), v.integer(), v.minValue(0)),
  next: v.pipe(v.number(), v.integer(), v.minValue(0)),
  /** No check for an unknown hostname before this time (the object's day is past half its budget). */
  hosts: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
type Lease = v.InferOutput<typeof Lease>;
/** Longest back-off after failed checks: the object is asked again at least this often. */
export const MAX_BACKOFF_MS = 60_000;
/**
 * Checks a location may start at once, one after another (a burst of changes: a rollout pushes
 * several), before the interval applies; on average still at most one per interval (a generic cell
 * rate algorithm: the lease carries the theoretical time of the next check).
 */
export const CHECK_BURST = 3;

const SharedAnswer = v.object({ format: v.literal(SHARED_FORMAT), instance: v.optional(v.string()), at: v.pipe(v.number(), v.integer(), v.minValue(0)), versions: Versions });
const ValueAnswer = v.nullable(v.object({ version: ValueVersionSchema, text: v.string() }));

export interface FastPathOptions {
  /** The generations object (a new stub per call is cheap). */
  stub: () => WatchableGenerationsApi;
  /** The location's cache: shares each answer among its isolates; none: every isolate asks. */
  cache?: LocationCache;
  /** At most one request for versions (a check, held or not) per location per this many ms. */
  intervalMs: number;
  /** How long the object holds a check (ms, at most MAX_HOLD_MS); 0 or absent: poll every intervalMs instead. */
  holdMs?: number;
  now: () => number;
  log: Logger;
  /** This deployment's identity (see DEFAULT_INSTANCE): another deployment's shared answer is never used. */
  instance?: string;
  /** Longest wait for one call (default CALL_TIMEOUT_MS): a hung object must not hold the refresh. */
  timeoutMs?: number;
}

export const CALL_TIMEOUT_MS = 3_000;
/**
 * A request for a hostname no route serves starts a check only when the location's last answer is
 * older than this: the location may lack a new hostname (a Service just created), but anyone can
 * send such requests, so they keep a location checking at most about once a minute, not every hold.
 */
export const UNKNOWN_HOST_CHECK_MS = 60_000;

export { versionKey };

export class FastPath {
  private memo: { at: number; versions: VersionsT | undefined } | undefined;
  private problem: string | undefined;
  /** Requests this isolate made to the object (for tests and the status page). */
  requests = 0;
  /** Checks this isolate had held by the object (a subset of requests). */
  held = 0;
  private readonly holdMs: number;
  /** This isolate's name in the lease. */
  private readonly me = crypto.randomUUID();
  private watching = false;
  /** No check from this isolate before this time (the budget, a back-off, or another isolate's lease). */
  private watchAt = 0;
  /** When the next check would be due at exactly one per interval (see CHECK_BURST). */
  private tat = 0;
  private watchFailures = 0;
  /** Values the last check's answer carried, taken by value() instead of asking the object. */
  private inline = new Map<string, { version: ValueVersion; text: string }>();
  /** Polling: a routed request came since the last question (an idle or unrouted location asks nothing). */
  private routed = false;
  /** Polling: a request for an unknown hostname (see unknownHost) came since the last question. */
  private unknownAsked = false;
  /** No check for an unknown hostname before this time (the object's day is past half its budget). */
  private hostsAt = 0;

  constructor(private readonly o: FastPathOptions) {
    this.holdMs = Math.max(0, Math.min(MAX_HOLD_MS, o.holdMs ?? 0));
  }

  /** Does this isolate learn changes from held checks (watch) rather than from polling (versions)? */
  get watches(): boolean {
    return this.holdMs > 0;
  }

  /**
   * For a request that matched a route (the location is busy): starts this isolate's held check
   * when it is due (hand the promise to waitUntil); undefined when not (a few comparisons, nothing
   * allocated: this runs on every routed request). When polling, lets the next refresh ask the
   * object. `install` gets the answer's versions; the answer's changed values are served to value() meanwhile.
   */
  busy(install: (versions: VersionsT) => Promise<void>): Promise<void> | undefined {
    if (this.holdMs === 0) {
      this.routed = true;
      return undefined;
    }
    return this.check(install, "routed");
  }

  /**
   * For a request whose hostname no route serves but may be new (see UNKNOWN_HOST_CHECK_MS and
   * ./hosts); nothing allocated when not due. Past half the object's daily budget none starts until
   * the object's unknownHostRetryAfterMs has passed.
   */
  unknownHost(install: (versions: VersionsT) => Promise<void>): Promise<void> | undefined {
    const now = this.o.now();
    if (now < this.hostsAt) return undefined;
    const last = this.memo?.at;
    if (last !== undefined && now - last < UNKNOWN_HOST_CHECK_MS) return undefined;
    if (this.holdMs === 0) {
      this.unknownAsked = true;
      return undefined;
    }
    return this.check(install, "unknown-host");
  }

  private check(install: (versions: VersionsT) => Promise<void>, cause: CheckCause): Promise<void> | undefined {
    if (this.watching) return undefined;
    const now = this.o.now();
    if (now < this.watchAt) return undefined;
    this.watching = true;
    return this.runWatch(now, install, cause).finally(() => {
      this.watching = false;
    });
  }

  private async runWatch(start: number, install: (versions: VersionsT) => Promise<void>, cause: CheckCause): Promise<void> {
    if (!(await this.takeLease(start, cause))) return;
    let answer: WatchAnswer;
    try {
      this.requests++;
      // Bounded past the hold time: an object that never answers is given up on before waitUntil's 30 s.
      answer = v.parse(WatchAnswer, await this.bounded(() => this.o.stub().watch(this.known(), this.holdMs, cause), this.holdMs + (this.o.timeoutMs ?? CALL_TIMEOUT_MS)));
      this.ok();
      this.watchFailures = 0;
    } catch (err) {
      this.watchFailures++;
      const backoff = Math.min(MAX_BACKOFF_MS, this.o.intervalMs * 2 ** Math.min(this.watchFailures - 1, 20));
      this.watchAt = Math.max(this.watchAt, this.o.now() + backoff);
      this.fail("watch", err);
      // The location's other isolates wait for the back-off too.
      await this.writeLease({ until: 0, next: this.watchAt + CHECK_BURST * this.o.intervalMs });
      return;
    }
    if (answer.held) this.held++;
    const at = this.o.now();
    this.backOff(at, answer);
    this.memo = { at, versions: answer.versions };
    this.inline = new Map(Object.entries(answer.values));
    try {
      await install(answer.versions);
    } finally {
      this.inline.clear();
    }
    // Installed and in the location copy first: an isolate that reads this answer finds the value there.
    await this.writeShared(at, answer.versions);
    await this.writeLease({ until: 0, next: this.tat });
  }

  /** The object's back-offs in an answer: kept here and (by the caller's writeLease) for the location's other isolates. */
  private backOff(at: number, answer: WatchAnswer): void {
    const retry = answer.retryAfterMs;
    if (retry !== undefined) {
      // The object's daily budget is spent: no check from this location before then (the lease tells its other isolates).
      const until = at + retry;
      this.watchAt = Math.max(this.watchAt, until);
      this.tat = Math.max(this.tat, until + CHECK_BURST * this.o.intervalMs);
      this.o.log("warn", "config.fast_budget_backoff", { retryInMs: retry, until: new Date(until).toISOString(), reason: "the generations object's daily budget (EDGELB_FAST_BUDGET) is spent, or so many locations check that it paces them all day", fallback: "the location copy and KV meanwhile" });
    }
    const hosts = answer.unknownHostRetryAfterMs;
    if (hosts !== undefined && at + hosts > this.hostsAt) {
      // Said when checks for unknown hostnames stop, not at every answer that keeps them stopped.
      if (this.hostsAt <= at) this.o.log("info", "config.fast_unknown_hosts_paused", { retryInMs: hosts, until: new Date(at + hosts).toISOString(), reason: "the generations object's day is past half its budget (EDGELB_FAST_BUDGET): requests for unknown hostnames, which anyone can send, must not spend what routed traffic needs", fallback: "a new hostname arrives through KV" });
      this.hostsAt = at + hosts;
    }
  }

  /** What this isolate last learned from the object (null: nothing yet, so the object answers at once). */
  private known(): Known | null {
    const versions = this.memo?.versions;
    if (!versions) return null;
    const out: Known = {};
    for (const [cluster, x] of Object.entries(versions)) out[cluster] = versionKey(x);
    return out;
  }

  /** Takes the location's lease unless another isolate holds it or the location's check budget is spent. */
  private async takeLease(now: number, cause: CheckCause): Promise<boolean> {
    const interval = this.o.intervalMs;
    const lease = this.o.cache ? await this.readLease(now) : undefined;
    // Another isolate of the location learned that checks for unknown hostnames stopped.
    if (lease?.hosts !== undefined) this.hostsAt = Math.max(this.hostsAt, lease.hosts);
    if (cause === "unknown-host" && now < this.hostsAt) return false;
    if (lease && lease.holder !== this.me && lease.until > now) {
      // Looked at again after an interval (the holder may stop getting requests and leave it early).
      this.watchAt = Math.max(this.watchAt, Math.min(lease.until, now + interval));
      return false;
    }
    const due = Math.max(this.tat, lease?.next ?? 0);
    if (due - now > CHECK_BURST * interval) {
      this.watchAt = Math.max(this.watchAt, due - CHECK_BURST * interval);
      return false;
    }
    this.tat = Math.max(due, now) + interval;
    this.watchAt = Math.max(this.watchAt, this.tat - CHECK_BURST * interval);
    if (!this.o.cache) return true;
    await this.writeLease({ until: now + this.holdMs + (this.o.timeoutMs ?? CALL_TIMEOUT_MS), next: this.tat });
    // Two isolates that wrote at once: the one whose write is read back holds it (best effort).
    const mine = await this.readLease(now);
    return !mine || mine.holder === this.me;
  }

  private async readLease(now: number): Promise<Lease | undefined> {
    try {
      const res = await this.o.cache!.match(leaseKey(this.o.instance));
      if (!res) return undefined;
      if (!(Number(res.headers.get("content-length") ?? NaN) <= 1024)) {
        await res.body?.cancel();
        return undefined;
      }
      const r = v.safeParse(Lease, JSON.parse(await res.text()));
      // Not ours, or dated far ahead (a clock or a writer gone wrong): ignored, not obeyed.
      if (!r.success || r.output.instance !== (this.o.instance ?? DEFAULT_INSTANCE)) return undefined;
      if (r.output.until > now + 2 * MAX_HOLD_MS || r.output.next > now + Math.max(MAX_BACKOFF_MS, MAX_RETRY_AFTER_MS) + (CHECK_BURST + 1) * this.o.intervalMs) return undefined;
      if (r.output.hosts !== undefined && r.output.hosts > now + MAX_RETRY_AFTER_MS) return undefined;
      return r.output;
    } catch {
      return undefined;
    }
  }

  private async writeLease(o: { until: number; next: number }): Promise<void> {
    if (!this.o.cache) return;
    const lease: Lease = { format: LEASE_FORMAT, instance: this.o.instance ?? DEFAULT_INSTANCE, holder: this.me, until: Math.floor(o.until), next: Math.floor(o.next), ...(this.hostsAt > 0 ? { hosts: Math.floor(this.hostsAt) } : {}) };
    await this.o.cache
      // Kept as long as the longest back-off it may carry (the object's budget: MAX_RETRY_AFTER_MS).
      .put(leaseKey(this.o.instance), new Response(JSON.stringify(lease), { headers: { "content-type": "application/json", "cache-control": "public, max-age=3900" } }))
      .catch(() => {});
  }

  /**
   * The object's versions. Polling: no older than the interval (asked when older); undefined when
   * it cannot be reached. Held checks: the newest answer this isolate or its location has (never
   * asked here: the held check asks).
   */
  async versions(): Promise<VersionsT | undefined> {
    const now = this.o.now();
    if (this.holdMs > 0) {
      const shared = await this.readShared(now);
      if (shared && (!this.memo || shared.at > this.memo.at)) this.memo = shared;
      return this.memo?.versions;
    }
    if (this.memo && now - this.memo.at < this.o.intervalMs) return this.memo.versions;
    const shared = await this.readShared(now);
    if (shared && now - shared.at < this.o.intervalMs) {
      this.memo = shared;
      return shared.versions;
    }
    // No routed request (nor one for a hostname that may be new) since the last question: nobody
    // here needs it sooner than KV. Nor before a back-off the object asked for (this isolate's, or
    // another's of the location, in the lease).
    const stale = () => {
      if (shared && (!this.memo || shared.at > this.memo.at)) this.memo = shared;
      return this.memo?.versions;
    };
    if (!this.routed && !this.unknownAsked) return stale();
    const lease = now < this.watchAt || !this.o.cache ? undefined : await this.readLease(now);
    if (lease) {
      this.watchAt = Math.max(this.watchAt, lease.next);
      if (lease.hosts !== undefined) this.hostsAt = Math.max(this.hostsAt, lease.hosts);
    }
    const cause: CheckCause = this.routed ? "routed" : "unknown-host";
    if (now < this.watchAt || (cause === "unknown-host" && now < this.hostsAt)) return stale();
    this.routed = false;
    this.unknownAsked = false;
    try {
      this.requests++;
      // A check that is not held: answered at once, with the changed values and the daily budget's back-offs.
      const answer = v.parse(WatchAnswer, await this.bounded(() => this.o.stub().watch(this.known(), 0, cause)));
      this.memo = { at: now, versions: answer.versions };
      this.inline = new Map(Object.entries(answer.values));
      this.ok();
      this.backOff(now, answer);
      await this.writeShared(now, answer.versions);
      if (answer.retryAfterMs !== undefined || answer.unknownHostRetryAfterMs !== undefined) await this.writeLease({ until: 0, next: this.watchAt });
      return answer.versions;
    } catch (err) {
      // Not asked again before the interval: an unreachable object must not cost a request per refresh.
      this.memo = { at: now, versions: undefined };
      this.fail("versions", err);
      return undefined;
    }
  }

  /** The object's value for `cluster`, validated; undefined when unreachable or not valid. */
  async value(cluster: string): Promise<StoredValue | undefined> {
    let answer: v.InferOutput<typeof ValueAnswer>;
    const carried = this.inline.get(cluster);
    if (carried) {
      // Came with the held check's answer (already validated with it): no request.
      this.inline.delete(cluster);
      answer = carried;
    } else {
      try {
        this.requests++;
        answer = v.parse(ValueAnswer, await this.bounded(() => this.o.stub().value(cluster)));
        this.ok();
      } catch (err) {
        this.fail("value", err);
        return undefined;
      }
    }
    if (!answer) return undefined;
    const { version, text } = answer;
    if (version.kind === "tombstone") {
      const t = parseTombstone(text);
      if (!t || t.cluster !== cluster || t.generation !== version.generation || t.installEpoch !== version.epoch) return this.invalid(cluster, "tombstone does not match its version");
      return { kind: "tombstone", text, tombstone: t };
    }
    const parsed = parseSnapshot(text);
    if (!parsed.ok) return this.invalid(cluster, parsed.error);
    if (parsed.snapshot.cluster !== cluster || parsed.snapshot.generation !== version.generation) return this.invalid(cluster, "snapshot does not match its version");
    return { kind: "snapshot", text, snapshot: parsed.snapshot, epoch: version.epoch ?? undefined };
  }

  /** Hands a value the push endpoint accepted to the object; a failure is logged (KV has it anyway). */
  async publish(cluster: string, value: StoredValue): Promise<void> {
    if (value.kind === "missing") return;
    const version: ValueVersion =
      value.kind === "snapshot"
        ? { kind: "snapshot", generation: value.snapshot.generation, epoch: value.epoch ?? null, at: this.o.now(), ...(value.heartbeatAt !== undefined ? { heartbeatAt: value.heartbeatAt } : {}) }
        : { kind: "tombstone", generation: value.tombstone.generation, epoch: value.tombstone.installEpoch, at: this.o.now() };
    try {
      this.requests++;
      await this.bounded(() => this.o.stub().publish(cluster, version, value.text));
      this.ok();
      // This isolate knows the new version now: it need not ask before the next interval.
      if (this.memo?.versions) this.memo.versions[cluster] = version;
    } catch (err) {
      this.fail("publish", err);
    }
  }

  /** Hands the agent's heartbeat (the worker's clock) for the stored snapshot to the object; a failure is logged. */
  async heartbeat(cluster: string, version: { generation: number; epoch: number | null }, at: number): Promise<void> {
    try {
      this.requests++;
      await this.bounded(() => this.o.stub().heartbeat(cluster, version, at));
      this.ok();
      const known = this.memo?.versions?.[cluster];
      if (known && known.kind === "snapshot" && known.generation === version.generation && known.epoch === version.epoch) known.heartbeatAt = Math.max(known.heartbeatAt ?? 0, at);
    } catch (err) {
      this.fail("heartbeat", err);
    }
  }

  private async bounded<T>(call: () => Promise<T>, ms: number = this.o.timeoutMs ?? CALL_TIMEOUT_MS): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        call(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private ok(): void {
    if (this.problem) this.o.log("info", "config.fast_recovered", { after: this.problem });
    this.problem = undefined;
  }

  private fail(call: string, err: unknown): void {
    const problem = `${call}: ${(err as Error)?.message ?? String(err)}`.slice(0, 300);
    if (this.problem !== problem) this.o.log("warn", "config.fast_unavailable", { error: problem, fallback: "KV and the location copy" });
    this.problem = problem;
  }

  private invalid(cluster: string, error: string): undefined {
    this.o.log("error", "config.fast_rejected", { cluster, error: error.slice(0, 300) });
    return undefined;
  }

  private async readShared(now: number): Promise<{ at: number; versions: VersionsT } | undefined> {
    if (!this.o.cache) return undefined;
    try {
      const res = await this.o.cache.match(sharedKey(this.o.instance));
      if (!res) return undefined;
      const length = Number(res.headers.get("content-length") ?? NaN);
      if (!(length <= MAX_SHARED_BYTES)) {
        await res.body?.cancel();
        return undefined;
      }
      const r = v.safeParse(SharedAnswer, JSON.parse(await res.text()));
      if (!r.success || r.output.at > now + 60_000) return undefined;
      if ((r.output.instance ?? DEFAULT_INSTANCE) !== (this.o.instance ?? DEFAULT_INSTANCE)) return undefined;
      return { at: r.output.at, versions: r.output.versions };
    } catch {
      return undefined; // unreadable or not ours: ask the object
    }
  }

  private async writeShared(at: number, versions: VersionsT): Promise<void> {
    if (!this.o.cache) return;
    const body = JSON.stringify({ format: SHARED_FORMAT, instance: this.o.instance ?? DEFAULT_INSTANCE, at, versions });
    await this.o.cache
      .put(sharedKey(this.o.instance), new Response(body, { headers: { "content-type": "application/json", "cache-control": "public, max-age=3600" } }))
      .catch(() => {});
  }
}
