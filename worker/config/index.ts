// The snapshots this isolate serves: loaded from KV once, kept in memory,
// refreshed in the background after a TTL while the stale copy keeps serving.
// A bad KV value is logged and the last good snapshot stays.
import { parseSnapshot, snapshotKey, type Snapshot } from "../snapshot/schema.ts";
import type { Logger } from "../log/index.ts";
import { buildIndex, EMPTY_INDEX, type RouteIndex } from "./routes.ts";

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
  /** The last problem with the stored value, cleared by the next good one. */
  lastError?: string;
}

export interface ConfigStoreOptions {
  kv: KVNamespace;
  clusters: string[];
  ttlMs: number;
  log: Logger;
  now?: () => number;
}

export class ConfigStore {
  readonly clusters: string[];
  private readonly states = new Map<string, ClusterState>();
  private index: RouteIndex = EMPTY_INDEX;
  private loadedOnce: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private lastRefresh = 0;
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
    if (this.now() - this.lastRefresh >= this.opts.ttlMs && !this.refreshing) {
      const p = this.refresh();
      waitUntil(p);
    }
  }

  /** Reads every served cluster from KV (one flight at a time). */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.lastRefresh = this.now();
    const epoch = this.epoch;
    this.refreshing = Promise.all(this.clusters.map((c) => this.refreshCluster(c, epoch)))
      .then((changed) => {
        if (changed.some(Boolean)) this.rebuild();
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private async refreshCluster(name: string, epoch: number): Promise<boolean> {
    const state = this.states.get(name)!;
    let text: string | null;
    try {
      text = await this.opts.kv.get(snapshotKey(name), "text");
    } catch (err) {
      state.lastError = `reading KV key ${snapshotKey(name)} failed: ${(err as Error).message}`;
      this.opts.log("error", "config.read_failed", { cluster: name, error: state.lastError });
      return false;
    }
    // A push or delete landed while KV was being read: it is newer than this read.
    if (epoch !== this.epoch) return false;
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
    if (text === state.text) return false;
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
    return this.accept(state, parsed.snapshot, text, "kv");
  }

  private accept(state: ClusterState, snapshot: Snapshot, text: string, source: "kv" | "push"): boolean {
    if (snapshot.cluster !== state.name) {
      const error = `KV key ${snapshotKey(state.name)} holds a snapshot of cluster "${snapshot.cluster}"`;
      if (state.lastError !== error) this.opts.log("error", "config.rejected", { cluster: state.name, error });
      state.lastError = error;
      return false;
    }
    if (state.snapshot && snapshot.generation < state.snapshot.generation) {
      // KV is eventually consistent: an older value can be read after a newer one.
      const error = `KV holds generation ${snapshot.generation}, older than the served ${state.snapshot.generation}; keeping the newer one`;
      if (state.lastError !== error) this.opts.log("warn", "config.stale", { cluster: state.name, error });
      state.lastError = error;
      state.text = text;
      return false;
    }
    const previous = state.snapshot?.generation ?? null;
    state.snapshot = snapshot;
    state.text = text;
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
    delete state.loadedAt;
    delete state.source;
    delete state.lastError;
  }

  /** A snapshot accepted by the push endpoint (already validated and written to KV). */
  install(snapshot: Snapshot, text: string): boolean {
    const state = this.states.get(snapshot.cluster);
    if (!state) return false;
    this.epoch++;
    // The push endpoint already enforced ordering against KV; take it as is.
    if (state.snapshot && snapshot.generation < state.snapshot.generation) delete state.snapshot;
    if (this.accept(state, snapshot, text, "push")) this.rebuild();
    return true;
  }

  /** The cluster's key was deleted through the control endpoint. */
  remove(cluster: string): void {
    const state = this.states.get(cluster);
    if (!state) return;
    this.epoch++;
    if (state.snapshot) {
      this.clear(state);
      this.opts.log("info", "config.removed", { cluster });
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
  }

  cluster(name: string): ClusterState | undefined {
    return this.states.get(name);
  }

  all(): ClusterState[] {
    return this.clusters.map((c) => this.states.get(c)!);
  }
}
