// The snapshots this isolate serves: loaded once, kept in memory, refreshed in
// the background while the stale copy keeps serving. With a location copy
// (./location, the Cache API) the isolates of one location share what one of
// them read: KV is read only when that copy is older than the refresh
// interval (ttlMs), and each isolate looks at the copy every checkMs.
// A bad KV value is logged and the last good snapshot stays. When KV cannot be
// read before a cluster was ever loaded, the isolate does not pretend the
// cluster is empty: it says so (unavailableFor) and retries with a short backoff.
import { parseSnapshot, snapshotKey, type Snapshot } from "../snapshot/schema.ts";
import type { Logger } from "../log/index.ts";
import { buildIndex, EMPTY_INDEX, type RouteIndex } from "./routes.ts";
import { buildGatewayIndex, EMPTY_GATEWAY_INDEX, type GatewayIndex } from "../gateway/index.ts";
import type { Versions } from "../generations/api.ts";
import { versionKey, type FastPath } from "./fast/index.ts";
import { mayBeNewHost, servedDomains } from "./fast/hosts/index.ts";
import { headTag, LocationCopy, type EntryHead, type StoredValue } from "./location/index.ts";
import { epochOf, heartbeatOf, isOlder, parseTombstone, type Version } from "./stored.ts";
import { LOCATION_CHECK_MS } from "./timing.ts";

/** What the store needs of a KV namespace (tests wrap one to make it fail). */
export type ConfigKV = Pick<KVNamespace, "getWithMetadata">;

/** First retry after a failed first read, doubling up to RETRY_MAX_MS. */
export const RETRY_MIN_MS = 250;
export const RETRY_MAX_MS = 5_000;
/**
 * How long KV may go on answering with an older value (or "missing") in other
 * locations after a write: a pushed or fast-path snapshot younger than this is
 * not taken back by a KV read that says the key is missing.
 */
export const KV_PROPAGATION_MS = 60_000;
export { LOCATION_CHECK_MS } from "./timing.ts";

export interface ClusterState {
  name: string;
  snapshot?: Snapshot;
  /** The text the snapshot was parsed from, to skip re-parsing an unchanged value. */
  text?: string;
  /** When this isolate installed the current snapshot (ms). */
  loadedAt?: number;
  /**
   * The agent's newest heartbeat any source told this isolate of (ms, the worker's clock, never
   * in the future): KV metadata, the location copy, the fast path, or a push/heartbeat taken here.
   * Undefined for values stored without one (then staleness counts from loadedAt).
   */
  heartbeatAt?: number;
  /** The KV metadata's heartbeat was dated far in the future (logged once per change). */
  heartbeatRefused?: boolean;
  /** When KV was last read for this cluster (ms): by this isolate, or by another of its location (the location copy's read time). */
  checkedAt?: number;
  source?: "kv" | "push" | "location" | "fast";
  /** Install epoch of the served snapshot (KV metadata); undefined for values written without one. */
  epoch?: number;
  /** The newest deletion seen (a tombstone): older snapshots read later are not served again. */
  deleted?: Version;
  /** The last problem with the stored value, cleared by the next good one. */
  lastError?: string;
  /** The last valid stored value considered (from any source), to refresh the location copy without re-parsing. */
  lastRead?: StoredValue;
  /** Tag of the location copy's value this isolate has considered (its body need not be read again). */
  tag?: string;
  /** The last reason the location copy was ignored, to log each reason once. */
  locationError?: string;
  /** The fast path's version this isolate last considered (not fetched again). */
  fastSeen?: string;
  /** When KV (read here or by the location) last said the key is missing: the object's older values are not served over it. */
  missingAt?: number;
}

export interface ConfigStoreOptions {
  kv: ConfigKV;
  clusters: string[];
  /** Refresh interval: how old the location's copy (or, without one, this isolate's read) may get before KV is read. */
  ttlMs: number;
  log: Logger;
  now?: () => number;
  /** The location's shared copy (Cache API); without one every isolate reads KV itself every ttlMs. */
  location?: LocationCopy;
  /** How often to look at the location copy (default LOCATION_CHECK_MS, at most ttlMs). */
  checkMs?: number;
  /** The fast path (generations Durable Object): newer versions are fetched from it without waiting for KV. */
  fast?: FastPath;
}

export class ConfigStore {
  readonly clusters: string[];
  private readonly states = new Map<string, ClusterState>();
  private index: RouteIndex = EMPTY_INDEX;
  private gatewayIndex: GatewayIndex = EMPTY_GATEWAY_INDEX;
  /** Domains of the served names, for unknown hostnames (see unknownHost). */
  private domainsFor: { index: RouteIndex; gateways: GatewayIndex; set: ReadonlySet<string> } | undefined;
  private loadedOnce: Promise<void> | undefined;
  /** The first load has settled (ok or not): readyNow() may answer without waiting. */
  private loadSettled = false;
  private refreshing: Promise<void> | undefined;
  private lastRefresh = 0;
  /** Failed refreshes in a row while some cluster was never read; sets the retry backoff. */
  private failures = 0;
  private retryAt = 0;
  /** Bumped by pushes and deletes so a KV read that raced them is not installed. */
  private epoch = 0;
  private readonly now: () => number;
  private readonly location: LocationCopy | undefined;
  /** How often ready() starts a refresh: the location copy is looked at that often, KV only after ttlMs. */
  private readonly checkMs: number;

  constructor(private readonly opts: ConfigStoreOptions) {
    this.clusters = opts.clusters;
    this.now = opts.now ?? Date.now;
    this.location = opts.location;
    this.checkMs = opts.location || opts.fast ? Math.min(opts.ttlMs, opts.checkMs ?? LOCATION_CHECK_MS) : opts.ttlMs;
    for (const name of opts.clusters) this.states.set(name, { name });
  }

  /** The current index, without waiting. */
  get routes(): RouteIndex {
    return this.index;
  }

  /** The Gateway API hostnames' match tables (worker/gateway), rebuilt with the routes. */
  get gateways(): GatewayIndex {
    return this.gatewayIndex;
  }

  /**
   * Makes the config usable for this request: the first call waits for the
   * location copy or KV; later calls return at once and, every checkMs, start
   * one background refresh (handed to waitUntil so it can finish after the
   * response).
   */
  async ready(waitUntil: (p: Promise<unknown>) => void): Promise<void> {
    if (!this.loadedOnce) {
      // The first request waits for the location copy or KV, never for the fast path (a round trip
      // to the Durable Object, maybe across the world): the next check, checkMs later, asks it.
      this.loadedOnce = this.refresh({ fast: false });
    }
    await this.loadedOnce;
    this.loadSettled = true;
    if (this.failures > 0 && this.unknownClusters() > 0) {
      // Nothing to serve from memory for some cluster: this request waits for
      // the retry (once the backoff has passed) rather than answer without it.
      if (this.refreshing) await this.refreshing;
      else if (this.now() >= this.retryAt) await this.refresh();
      return;
    }
    if (this.now() - this.lastRefresh >= this.checkMs && !this.refreshing) {
      const p = this.refresh();
      waitUntil(p);
    }
  }

  /**
   * ready() without a promise, for the common case: true when the config is usable now and
   * nothing must be waited for (a due refresh is started, handed to waitUntil, as ready() does);
   * false when the caller must await ready() (the first load, or a cluster never read).
   */
  readyNow(waitUntil: (p: Promise<unknown>) => void): boolean {
    if (!this.loadSettled || (this.failures > 0 && this.unknownClusters() > 0)) return false;
    if (this.now() - this.lastRefresh >= this.checkMs && !this.refreshing) waitUntil(this.refresh());
    return true;
  }

  /**
   * A request matched a route of a served cluster and goes to its origins: the location is busy,
   * so the fast path's held check starts (or polling asks the object) when this isolate's turn has
   * come; a few comparisons and nothing allocated otherwise. Not called for unknown hosts, control
   * paths or the edge's own answers (404, 403, 503): anyone on the internet can send those, and
   * each busy location costs object requests (the free plan's are per day).
   */
  busy(waitUntil: (p: Promise<unknown>) => void): void {
    const watch = this.opts.fast?.busy(this.installChecked);
    if (watch) waitUntil(watch);
  }

  /**
   * A request for a hostname no route serves: this location may lack a new one (a Service just
   * created), so a check starts when the location's last answer from the fast path is older than a
   * minute (UNKNOWN_HOST_CHECK_MS), never more often: anyone can send such requests. Only for a
   * name next to a served one (./fast/hosts: `new.example.com` beside `www.example.com`): made-up
   * names elsewhere never spend the object's daily budget. `host` is normalized.
   */
  unknownHost(host: string, waitUntil: (p: Promise<unknown>) => void): void {
    const fast = this.opts.fast;
    if (!fast || !mayBeNewHost(this.domains(), host)) return;
    const watch = fast.unknownHost(this.installChecked);
    if (watch) waitUntil(watch);
  }

  /** The served names' domains, rebuilt lazily when the routes change (the 404 path only). */
  private domains(): ReadonlySet<string> {
    const d = this.domainsFor;
    if (d && d.index === this.index && d.gateways === this.gatewayIndex) return d.set;
    const g = this.gatewayIndex;
    const set = servedDomains([...this.index.exact.keys(), ...g.exact.keys()], [...this.index.wildcard.keys(), ...g.wildcard.keys()]);
    this.domainsFor = { index: this.index, gateways: g, set };
    return set;
  }

  /** What a held check's answer does (bound once: busy() runs per request). */
  private readonly installChecked = (versions: Versions): Promise<void> => this.refreshWith(versions);

  /** A refresh with the versions a held check answered (after any refresh in flight, which had older ones). */
  private async refreshWith(versions: Versions): Promise<void> {
    while (this.refreshing) await this.refreshing.catch(() => {});
    await this.refresh({ versions });
  }

  /** Never read from KV, and neither pushed nor deleted here: nothing is known of it. */
  private isUnknown(s: ClusterState): boolean {
    return s.checkedAt === undefined && !s.snapshot && !s.deleted;
  }

  /** Served clusters whose state is unknown (their reads failed so far). */
  private unknownClusters(): number {
    let n = 0;
    for (const s of this.states.values()) if (this.isUnknown(s)) n++;
    return n;
  }

  /**
   * Milliseconds until the next KV retry when some served cluster could not be
   * read yet (a request for a host not in the index cannot be answered: it may
   * be that cluster's); undefined when every cluster's state is known.
   */
  unavailableFor(): number | undefined {
    if (this.failures === 0 || this.unknownClusters() === 0) return undefined;
    return Math.max(0, this.retryAt - this.now());
  }

  /**
   * Like unavailableFor, for a hostname `cluster` serves: milliseconds until the next KV retry when a
   * cluster listed before it (EDGELB_CLUSTERS order) could not be read yet. That cluster may own the
   * hostname: handing it to a later claimer in this isolate alone would split ownership between isolates.
   */
  unavailableBefore(cluster: string): number | undefined {
    if (this.failures === 0) return undefined;
    for (const s of this.states.values()) {
      if (s.name === cluster) return undefined;
      if (this.isUnknown(s)) return Math.max(0, this.retryAt - this.now());
    }
    return undefined;
  }

  /** Brings every served cluster up to date from the location copy and, when that is too old, KV (one flight at a time). */
  refresh(o: { fast?: boolean; versions?: Versions } = {}): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.lastRefresh = this.now();
    const epoch = this.epoch;
    const versions = o.versions ? Promise.resolve(o.versions) : this.opts.fast && o.fast !== false ? this.opts.fast.versions() : Promise.resolve(undefined);
    this.refreshing = versions
      .then((versions) => Promise.all(this.clusters.map((c) => this.refreshCluster(c, epoch, versions))))
      .then((changed) => {
        if (changed.some(Boolean)) this.rebuild();
        if (this.unknownClusters() > 0) {
          this.failures++;
          const backoff = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.failures - 1, 20));
          this.retryAt = this.now() + backoff;
          this.opts.log("warn", "config.unavailable", { clusters: this.unknownNames(), failures: this.failures, retryInMs: backoff });
        } else {
          this.failures = 0;
        }
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private unknownNames(): string[] {
    return [...this.states.values()].filter((s) => this.isUnknown(s)).map((s) => s.name);
  }

  private async refreshCluster(name: string, epoch: number, versions: Versions | undefined): Promise<boolean> {
    const state = this.states.get(name)!;
    let changed = false;
    let seen: EntryHead | undefined;
    if (this.location) {
      const r = await this.fromLocation(state, epoch);
      changed = r.changed;
      seen = r.seen;
    }
    const fast = versions?.[name];
    if (fast && this.opts.fast && this.wantsFast(state, fast, seen)) {
      const value = await this.opts.fast.value(name);
      if (value && (epoch === this.epoch || this.isUnknown(state))) {
        // Considered (installed, or refused for its version): not fetched again. A failed or
        // raced fetch leaves fastSeen alone, so the next check asks again.
        state.fastSeen = versionKey(fast);
        const at = this.now();
        const installed = this.consider(state, value, at, "fast");
        if (installed) changed = true;
        // The location's other isolates take it from the copy instead of asking the object too;
        // never over a copy that says KV has no key (that copy's read time would hide the deletion).
        if (installed && this.location && seen?.kind !== "missing" && !newerThan(seen, value)) await this.share(state, value, at);
      }
    }
    if (fast?.kind === "snapshot" && fast.heartbeatAt !== undefined) this.noteHeartbeat(state, fast.heartbeatAt);
    // The location (or this isolate) read KV less than ttlMs ago: KV has nothing newer to say yet.
    if (state.checkedAt !== undefined && this.now() - state.checkedAt < this.opts.ttlMs) return changed;
    const read = await this.fromKV(state, epoch);
    if (read.value?.kind === "tombstone" && fast?.kind === "snapshot" && this.opts.fast) {
      // KV holds a deletion the object has not heard of (the agent's KV sink wrote it on `cleanup`, not
      // the push endpoint): this location tells the object, so every other location drops the cluster at
      // its next check instead of serving the object's snapshot until its own KV read catches up.
      const t = read.value.tombstone;
      if (isOlder({ epoch: fast.epoch ?? undefined, generation: fast.generation }, { epoch: t.installEpoch, generation: t.generation })) {
        await this.opts.fast.publish(name, read.value);
        state.fastSeen = versionKey({ kind: "tombstone", generation: t.generation, epoch: t.installEpoch });
        this.opts.log("info", "config.fast_tombstoned", { cluster: name, generation: t.generation, replaced: fast.generation });
      }
    }
    // Shared unless the copy (a push) or this isolate (a push it took) holds a newer snapshot than this KV read.
    if (read.value && this.location && !newerThan(seen, read.value) && !newerThan(servedHead(state), read.value)) await this.share(state, read.value, read.at);
    return read.changed || changed;
  }

  /** Considers the location's copy; `seen` is its head when it was valid. */
  private async fromLocation(state: ClusterState, epoch: number): Promise<{ changed: boolean; seen?: EntryHead }> {
    const r = await this.location!.read(state.name, this.now(), (head) => headTag(head) !== state.tag && !newerThan(servedHead(state), head));
    if (r.kind === "none") return { changed: false };
    if (r.kind === "unavailable") {
      // No shared copy here (a runtime without a cache): this isolate's own reads pace KV.
      if (state.locationError !== r.reason) this.opts.log("warn", "config.location_unavailable", { cluster: state.name, reason: r.reason });
      state.locationError = r.reason;
      return { changed: false };
    }
    if (r.kind === "ignored") {
      if (state.locationError !== r.reason) this.opts.log("warn", "config.location_ignored", { cluster: state.name, reason: r.reason, action: "reading KV" });
      state.locationError = r.reason;
      // Not trusted: KV is read now, whatever this isolate's last read was.
      delete state.checkedAt;
      return { changed: false };
    }
    delete state.locationError;
    if (epoch !== this.epoch && !this.isUnknown(state)) return { changed: false, seen: r.head };
    let changed = false;
    if (r.kind === "value") {
      state.tag = headTag(r.head);
      changed = this.consider(state, r.value, r.head.readAt);
    }
    // Also from a head alone: a heartbeat changes no tag, so the body is not read again for it.
    if (r.head.heartbeatAt !== undefined) this.noteHeartbeat(state, r.head.heartbeatAt);
    state.checkedAt = Math.max(state.checkedAt ?? 0, r.head.readAt);
    return { changed, seen: r.head };
  }

  /** Is the fast path's version one this isolate has not considered, and not older than what it serves? */
  private wantsFast(state: ClusterState, fast: Versions[string], seen: EntryHead | undefined): boolean {
    const key = versionKey(fast);
    if (state.fastSeen === key) return false;
    if (seen && seen.kind === fast.kind && seen.generation === fast.generation && (seen.epoch ?? null) === fast.epoch) return false;
    const version: Version = { epoch: fast.epoch ?? undefined, generation: fast.generation };
    const served = servedHead(state);
    if (fast.kind === "snapshot") {
      if (served) return isOlder(served, version);
      // KV said "missing" after the object got this snapshot: the key was removed since (the agent's
      // KV sink deletes it on cleanup, and the object never hears of that). Not brought back.
      if (state.missingAt !== undefined && (fast.at === undefined || fast.at <= state.missingAt)) return false;
      return true;
    }
    // A deletion: news only while something at or before it is served.
    return served !== undefined && !isOlder(version, served);
  }

  /** A valid value from the location copy (read from KV at `readAt`) or the fast path. */
  private consider(state: ClusterState, value: StoredValue, readAt: number, source: "location" | "fast" = "location"): boolean {
    if (value.kind === "missing") {
      state.missingAt = Math.max(state.missingAt ?? 0, readAt);
      // A read from before this isolate installed its snapshot (a push) says nothing about it,
      // nor does one that KV may not have caught up with yet.
      if (!state.snapshot || readAt <= (state.loadedAt ?? 0) || this.tooSoonForKV(state, readAt)) return false;
      this.opts.log("warn", "config.removed", { cluster: state.name, generation: state.snapshot.generation, key: snapshotKey(state.name), source: "location" });
      this.clear(state);
      return true;
    }
    if (value.text === state.text) return false;
    if (value.kind === "tombstone") return this.deletedIn(state, value.tombstone, value.text);
    const accepted = this.accept(state, value.snapshot, value.text, source, value.epoch);
    if (accepted) state.lastRead = value;
    if (accepted && value.heartbeatAt !== undefined) this.noteHeartbeat(state, value.heartbeatAt);
    return accepted;
  }

  /** Writes the location copy; a failed write is logged and costs only extra KV reads. */
  private async share(state: ClusterState, value: StoredValue, readAt: number): Promise<void> {
    // The copy carries the newest heartbeat this isolate knows for the snapshot it serves.
    if (value.kind === "snapshot" && value.text === state.text && state.heartbeatAt !== undefined && state.heartbeatAt > (value.heartbeatAt ?? -1)) {
      value = { ...value, heartbeatAt: state.heartbeatAt };
    }
    try {
      const head = await this.location!.write(state.name, value, readAt);
      state.tag = headTag(head);
    } catch (err) {
      this.opts.log("warn", "config.location_write_failed", { cluster: state.name, error: (err as Error).message });
    }
  }

  /**
   * After a push or delete through this isolate: the location's other
   * isolates take it from the copy, other locations from the fast path.
   */
  async publish(cluster: string): Promise<void> {
    const state = this.states.get(cluster);
    const value = state?.lastRead;
    if (!state || !value) return;
    await Promise.all([
      this.location ? this.share(state, value, this.now()) : undefined,
      this.opts.fast?.publish(cluster, value).then(() => {
        if (value.kind === "snapshot") state.fastSeen = versionKey({ kind: "snapshot", generation: value.snapshot.generation, epoch: value.epoch ?? null });
        else if (value.kind === "tombstone") state.fastSeen = versionKey({ kind: "tombstone", generation: value.tombstone.generation, epoch: value.tombstone.installEpoch });
      }),
    ]);
  }

  /** Reads KV; `value` is what it held when valid (to share with the location). */
  private async fromKV(state: ClusterState, epoch: number): Promise<{ changed: boolean; value?: StoredValue; at: number }> {
    const name = state.name;
    const at = this.now();
    let text: string | null;
    let metadata: unknown;
    try {
      const read = await this.opts.kv.getWithMetadata(snapshotKey(name), "text");
      text = read.value;
      metadata = read.metadata;
    } catch (err) {
      state.lastError = `reading KV key ${snapshotKey(name)} failed: ${(err as Error).message}`;
      this.opts.log("error", "config.read_failed", { cluster: name, error: state.lastError });
      return { changed: false, at };
    }
    // A push or delete landed while KV was being read: it is newer than this
    // read, unless it was for another cluster and this one is still unknown
    // (then this read is all there is: dropping it would look like a KV failure).
    if (epoch !== this.epoch && !this.isUnknown(state)) return { changed: false, at };
    const firstCheck = state.checkedAt === undefined && !state.tag;
    state.checkedAt = at;
    if (text === null) {
      const value: StoredValue = { kind: "missing" };
      state.missingAt = at;
      if (!state.snapshot) {
        if (firstCheck) this.opts.log("warn", "config.missing", { cluster: name, key: snapshotKey(name) });
        return { changed: false, value, at };
      }
      if (this.tooSoonForKV(state, at)) {
        // Installed by a push or the fast path less than KV's propagation time ago: this location's
        // KV has not seen the write yet (on workers.dev nothing shares reads, so this is common).
        // Not shared either: the location copy would then hide the snapshot from its other isolates.
        return { changed: false, at };
      }
      this.opts.log("warn", "config.removed", { cluster: name, generation: state.snapshot.generation, key: snapshotKey(name) });
      this.clear(state);
      return { changed: true, value, at };
    }
    const storedEpoch = epochOf(metadata);
    const beat = heartbeatOf(metadata, at);
    if ((beat === 0) !== (state.heartbeatRefused === true)) {
      state.heartbeatRefused = beat === 0;
      if (beat === 0) this.opts.log("warn", "config.heartbeat_refused", { cluster: name, reason: "heartbeat dated more than 60 s ahead of the worker's clock (the agent's clock is wrong): the cluster counts as stale" });
    }
    if (text === state.text) {
      if (beat !== undefined) this.noteHeartbeat(state, beat);
      const last = state.lastRead;
      return { changed: false, at, ...(last && last.kind !== "missing" && last.text === text ? { value: last } : {}) };
    }
    const tombstone = parseTombstone(text);
    if (tombstone) {
      const value: StoredValue = { kind: "tombstone", text, tombstone };
      const changed = this.deletedIn(state, tombstone, text);
      if (tombstone.cluster === name) state.lastRead = value;
      return { changed, at, ...(tombstone.cluster === name ? { value } : {}) };
    }
    const parsed = parseSnapshot(text);
    if (!parsed.ok) {
      if (state.lastError !== parsed.error) {
        this.opts.log("error", "config.rejected", {
          cluster: name,
          key: snapshotKey(name),
          error: parsed.error,
          keeping: state.snapshot?.generation ?? null,
        });
      }
      state.lastError = parsed.error;
      return { changed: false, at };
    }
    const changed = this.accept(state, parsed.snapshot, text, "kv", storedEpoch);
    if (parsed.snapshot.cluster !== name) return { changed, at };
    if (changed && beat !== undefined) this.noteHeartbeat(state, beat);
    const value: StoredValue = { kind: "snapshot", text, snapshot: parsed.snapshot, epoch: storedEpoch, ...(beat !== undefined ? { heartbeatAt: beat } : {}) };
    state.lastRead = value;
    return { changed, value, at };
  }

  /** KV holds a tombstone: the cluster was deleted, unless what is served is newer. */
  private deletedIn(state: ClusterState, tombstone: { cluster: string; generation: number; installEpoch: number }, text: string): boolean {
    if (tombstone.cluster !== state.name) {
      const error = `KV key ${snapshotKey(state.name)} holds a deletion of cluster "${tombstone.cluster}"`;
      if (state.lastError !== error) this.opts.log("error", "config.rejected", { cluster: state.name, error });
      state.lastError = error;
      return false;
    }
    const version: Version = { epoch: tombstone.installEpoch, generation: tombstone.generation };
    if (!state.deleted || !isOlder(version, state.deleted)) state.deleted = version;
    if (!state.snapshot) {
      state.text = text;
      return false;
    }
    if (isOlder(version, { epoch: state.epoch, generation: state.snapshot.generation })) {
      // A deletion from before the served install (a stale read): keep serving.
      state.text = text;
      return false;
    }
    this.opts.log("warn", "config.removed", { cluster: state.name, generation: state.snapshot.generation, reason: "deleted", key: snapshotKey(state.name) });
    this.clear(state);
    state.text = text;
    return true;
  }

  private accept(state: ClusterState, snapshot: Snapshot, text: string, source: "kv" | "push" | "location" | "fast", epoch: number | undefined, force = false): boolean {
    if (snapshot.cluster !== state.name) {
      const error = `KV key ${snapshotKey(state.name)} holds a snapshot of cluster "${snapshot.cluster}"`;
      if (state.lastError !== error) this.opts.log("error", "config.rejected", { cluster: state.name, error });
      state.lastError = error;
      return false;
    }
    const version: Version = { epoch, generation: snapshot.generation };
    const newer = state.snapshot ? { epoch: state.epoch, generation: state.snapshot.generation } : state.deleted;
    if (!force && newer && (state.snapshot ? isOlder(version, newer) : deletedBefore(version, newer))) {
      // KV is eventually consistent: an older value (or the deleted one) can be read after a newer one.
      const error = state.snapshot
        ? `KV holds generation ${snapshot.generation}, older than the served ${state.snapshot.generation}; keeping the newer one`
        : `KV holds generation ${snapshot.generation} of an install that was deleted; not serving it`;
      if (state.lastError !== error) this.opts.log("warn", "config.stale", { cluster: state.name, error });
      state.lastError = error;
      state.text = text;
      return false;
    }
    const previous = state.snapshot?.generation ?? null;
    state.snapshot = snapshot;
    state.text = text;
    state.epoch = epoch;
    state.loadedAt = this.now();
    state.source = source;
    delete state.lastError;
    this.opts.log("info", "config.loaded", {
      cluster: state.name,
      generation: snapshot.generation,
      previous,
      source,
      nodes: snapshot.nodes.length,
      services: snapshot.services.length,
    });
    return true;
  }

  /** Was the served snapshot (pushed here or from the fast path) installed too recently for a KV read at `at` to know it? */
  private tooSoonForKV(state: ClusterState, at: number): boolean {
    return (state.source === "push" || state.source === "fast") && state.loadedAt !== undefined && at - state.loadedAt < KV_PROPAGATION_MS;
  }

  /** A heartbeat from any source: the newest wins, never later than this isolate's clock. */
  private noteHeartbeat(state: ClusterState, at: number): void {
    if (!state.snapshot) return;
    const bounded = Math.min(at, this.now());
    if (state.heartbeatAt === undefined || bounded > state.heartbeatAt) state.heartbeatAt = bounded;
  }

  private clear(state: ClusterState): void {
    delete state.heartbeatAt;
    delete state.snapshot;
    delete state.text;
    delete state.epoch;
    delete state.loadedAt;
    delete state.source;
    delete state.lastError;
    delete state.lastRead;
  }

  /**
   * A snapshot accepted by the push endpoint (already validated and written to KV with this install
   * epoch); `heartbeatAt`: the push's time on this worker's clock (a push is a heartbeat).
   */
  install(snapshot: Snapshot, text: string, epoch: number | undefined, heartbeatAt?: number): boolean {
    const state = this.states.get(snapshot.cluster);
    if (!state) return false;
    this.epoch++;
    // The push endpoint already enforced ordering against KV; take it as is.
    delete state.deleted;
    delete state.missingAt;
    // A heartbeat re-sends the served snapshot: nothing to load, log or rebuild (a rebuild costs a snapshot load's CPU).
    const same = state.snapshot !== undefined && state.text === text && state.epoch === epoch;
    if (!same && this.accept(state, snapshot, text, "push", epoch, true)) this.rebuild();
    if (heartbeatAt !== undefined) this.noteHeartbeat(state, heartbeatAt);
    state.lastRead = { kind: "snapshot", text, snapshot, epoch, ...(state.heartbeatAt !== undefined ? { heartbeatAt: state.heartbeatAt } : {}) };
    return true;
  }

  /**
   * After a heartbeat taken here (install() first): the location's other isolates see it in the
   * copy's head, other locations through the fast path. Neither rewrites the snapshot itself.
   */
  async publishHeartbeat(cluster: string): Promise<void> {
    const state = this.states.get(cluster);
    const value = state?.lastRead;
    if (!state || value?.kind !== "snapshot" || state.heartbeatAt === undefined) return;
    await Promise.all([
      this.location ? this.share(state, value, this.now()) : undefined,
      this.opts.fast?.heartbeat(cluster, { generation: value.snapshot.generation, epoch: value.epoch ?? null }, state.heartbeatAt),
    ]);
  }

  /** The cluster was deleted through the control endpoint, leaving this tombstone (and its text) in KV. */
  remove(cluster: string, tombstone: Version, text?: string): void {
    const state = this.states.get(cluster);
    if (!state) return;
    this.epoch++;
    const had = state.snapshot !== undefined;
    this.clear(state);
    state.deleted = tombstone;
    const parsed = text === undefined ? undefined : parseTombstone(text);
    if (parsed && text !== undefined) {
      state.text = text;
      state.lastRead = { kind: "tombstone", text, tombstone: parsed };
    }
    if (had) {
      this.opts.log("info", "config.removed", { cluster, reason: "deleted" });
      this.rebuild();
    }
  }

  private rebuild(): void {
    const list: { cluster: string; snapshot: Snapshot }[] = [];
    for (const name of this.clusters) {
      const s = this.states.get(name)?.snapshot;
      if (s) list.push({ cluster: name, snapshot: s });
    }
    this.index = buildIndex(list);
    this.gatewayIndex = buildGatewayIndex(list);
    // A route's filter entry the edge refuses (e.g. setting X-Forwarded-For) is said once per change, not per request.
    for (const problem of this.gatewayIndex.problems.slice(0, 20)) this.opts.log("warn", "gateway.filter_ignored", { problem });
    for (const c of this.gatewayIndex.conflicts.slice(0, 20)) this.opts.log("warn", "gateway.hostname_conflict", c);
  }

  cluster(name: string): ClusterState | undefined {
    return this.states.get(name);
  }

  all(): ClusterState[] {
    return this.clusters.map((c) => this.states.get(c)!);
  }
}

/**
 * After a deletion (tombstone `deleted`), is this snapshot the deleted install
 * or older? Only a snapshot older than the tombstone is: the tombstone carries
 * one more than the deleted generation, so an equal version is a push made
 * after the deletion (stored with the old epoch when KV still returned the old
 * snapshot). A value without an epoch (the agent's KV sink) after a tombstone
 * whose install had one cannot be a stale read of it: it is a new install.
 */
function deletedBefore(version: Version, deleted: Version): boolean {
  if (version.epoch === undefined && deleted.epoch !== undefined && deleted.epoch > 0) return false;
  return isOlder(version, deleted);
}

/** The version a location head or stored value stands for (undefined: nothing to order by). */
function versionOf(v: EntryHead | StoredValue | undefined): Version | undefined {
  if (!v) return undefined;
  if ("readAt" in v) return v.kind === "snapshot" ? { epoch: v.epoch, generation: v.generation } : undefined;
  return v.kind === "snapshot" ? { epoch: v.epoch, generation: v.snapshot.generation } : undefined;
}

/** Is snapshot `a` newer than snapshot `b` (false when either is not a snapshot)? */
function newerThan(a: EntryHead | StoredValue | Version | undefined, b: EntryHead | StoredValue | undefined): boolean {
  const va = a && "kind" in a ? versionOf(a) : (a as Version | undefined);
  const vb = versionOf(b);
  return va !== undefined && vb !== undefined && isOlder(vb, va);
}

/** The served snapshot's version, if any. */
function servedHead(state: ClusterState): Version | undefined {
  return state.snapshot ? { epoch: state.epoch, generation: state.snapshot.generation } : undefined;
}
