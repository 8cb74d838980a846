// The snapshots this isolate serves: loaded from KV once, kept in memory,
// refreshed in the background after a TTL while the stale copy keeps serving.
// A bad KV value is logged and the last good snapshot stays. When KV cannot be
// read before a cluster was ever loaded, the isolate does not pretend the
// cluster is empty: it says so (unavailableFor) and retries with a short backoff.
import { parseSnapshot, snapshotKey, type Snapshot } from "../snapshot/schema.ts";
import type { Logger } from "../log/index.ts";
import { buildIndex, EMPTY_INDEX, type RouteIndex } from "./routes.ts";
import { buildGatewayIndex, EMPTY_GATEWAY_INDEX, type GatewayIndex } from "../gateway/index.ts";
import { epochOf, isOlder, parseTombstone, type Version } from "./stored.ts";

/** What the store needs of a KV namespace (tests wrap one to make it fail). */
export type ConfigKV = Pick<KVNamespace, "getWithMetadata">;

/** First retry after a failed first read, doubling up to RETRY_MAX_MS. */
export const RETRY_MIN_MS = 250;
export const RETRY_MAX_MS = 5_000;

export interface ClusterState {
  name: string;
  snapshot?: Snapshot;
  /** The text the snapshot was parsed from, to skip re-parsing an unchanged value. */
  text?: string;
  /** When this isolate installed the current snapshot (ms). */
  loadedAt?: number;
  /** When KV was last read for this cluster (ms). */
  checkedAt?: number;
  source?: "kv" | "push";
  /** Install epoch of the served snapshot (KV metadata); undefined for values written without one. */
  epoch?: number;
  /** The newest deletion seen (a tombstone): older snapshots read later are not served again. */
  deleted?: Version;
  /** The last problem with the stored value, cleared by the next good one. */
  lastError?: string;
}

export interface ConfigStoreOptions {
  kv: ConfigKV;
  clusters: string[];
  ttlMs: number;
  log: Logger;
  now?: () => number;
}

export class ConfigStore {
  readonly clusters: string[];
  private readonly states = new Map<string, ClusterState>();
  private index: RouteIndex = EMPTY_INDEX;
  private gatewayIndex: GatewayIndex = EMPTY_GATEWAY_INDEX;
  private loadedOnce: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private lastRefresh = 0;
  /** Failed refreshes in a row while some cluster was never read; sets the retry backoff. */
  private failures = 0;
  private retryAt = 0;
  /** Bumped by pushes and deletes so a KV read that raced them is not installed. */
  private epoch = 0;
  private readonly now: () => number;

  constructor(private readonly opts: ConfigStoreOptions) {
    this.clusters = opts.clusters;
    this.now = opts.now ?? Date.now;
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
   * Makes the config usable for this request: the first call waits for KV;
   * later calls return at once and, after the TTL, start one background
   * refresh (handed to waitUntil so it can finish after the response).
   */
  async ready(waitUntil: (p: Promise<unknown>) => void): Promise<void> {
    if (!this.loadedOnce) {
      this.loadedOnce = this.refresh();
    }
    await this.loadedOnce;
    if (this.failures > 0 && this.unknownClusters() > 0) {
      // Nothing to serve from memory for some cluster: this request waits for
      // the retry (once the backoff has passed) rather than answer without it.
      if (this.refreshing) await this.refreshing;
      else if (this.now() >= this.retryAt) await this.refresh();
      return;
    }
    if (this.now() - this.lastRefresh >= this.opts.ttlMs && !this.refreshing) {
      const p = this.refresh();
      waitUntil(p);
    }
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

  /** Reads every served cluster from KV (one flight at a time). */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.lastRefresh = this.now();
    const epoch = this.epoch;
    this.refreshing = Promise.all(this.clusters.map((c) => this.refreshCluster(c, epoch)))
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

  private async refreshCluster(name: string, epoch: number): Promise<boolean> {
    const state = this.states.get(name)!;
    let text: string | null;
    let metadata: unknown;
    try {
      const read = await this.opts.kv.getWithMetadata(snapshotKey(name), "text");
      text = read.value;
      metadata = read.metadata;
    } catch (err) {
      state.lastError = `reading KV key ${snapshotKey(name)} failed: ${(err as Error).message}`;
      this.opts.log("error", "config.read_failed", { cluster: name, error: state.lastError });
      return false;
    }
    // A push or delete landed while KV was being read: it is newer than this
    // read, unless it was for another cluster and this one is still unknown
    // (then this read is all there is: dropping it would look like a KV failure).
    if (epoch !== this.epoch && !this.isUnknown(state)) return false;
    const firstCheck = state.checkedAt === undefined;
    state.checkedAt = this.now();
    if (text === null) {
      if (!state.snapshot) {
        if (firstCheck) this.opts.log("warn", "config.missing", { cluster: name, key: snapshotKey(name) });
        return false;
      }
      this.opts.log("warn", "config.removed", { cluster: name, generation: state.snapshot.generation, key: snapshotKey(name) });
      this.clear(state);
      return true;
    }
    const storedEpoch = epochOf(metadata);
    if (text === state.text) return false;
    const tombstone = parseTombstone(text);
    if (tombstone) return this.deletedIn(state, tombstone, text);
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
      return false;
    }
    return this.accept(state, parsed.snapshot, text, "kv", storedEpoch);
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

  private accept(state: ClusterState, snapshot: Snapshot, text: string, source: "kv" | "push", epoch: number | undefined, force = false): boolean {
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

  private clear(state: ClusterState): void {
    delete state.snapshot;
    delete state.text;
    delete state.epoch;
    delete state.loadedAt;
    delete state.source;
    delete state.lastError;
  }

  /** A snapshot accepted by the push endpoint (already validated and written to KV with this install epoch). */
  install(snapshot: Snapshot, text: string, epoch: number | undefined): boolean {
    const state = this.states.get(snapshot.cluster);
    if (!state) return false;
    this.epoch++;
    // The push endpoint already enforced ordering against KV; take it as is.
    delete state.deleted;
    if (this.accept(state, snapshot, text, "push", epoch, true)) this.rebuild();
    return true;
  }

  /** The cluster was deleted through the control endpoint, leaving this tombstone in KV. */
  remove(cluster: string, tombstone: Version): void {
    const state = this.states.get(cluster);
    if (!state) return;
    this.epoch++;
    const had = state.snapshot !== undefined;
    this.clear(state);
    state.deleted = tombstone;
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
