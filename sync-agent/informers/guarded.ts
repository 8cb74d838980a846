// An informer that survives. @kubernetes/client-node 1.4's informer stops for
// good after a socket error (only a clean close re-watches), and calling
// start() from its 'error' callback loops: its own abort of the old request
// reports an AbortError, which would start it again, and so on. So:
// - AbortError is never an error (it is us, stopping or replacing a watch);
// - at most one restart is pending, after exponential backoff with jitter;
// - a restart is a fresh informer (fresh LIST), swapped in only once it has
//   listed, so the last good cache keeps serving meanwhile and nothing a
//   broken watch missed can stay lost;
// - a periodic full resync does the same swap, catching a watch that is
//   stuck without an error.
// Ingest (see ./strip): every object from a LIST page or a watch event is
// stripped to the fields the agent reads before it is cached. An update whose
// stripped content equals the cached object (a Node heartbeat) only moves the
// cached object's resourceVersion: no update callback, no evaluation. A
// re-LIST reuses the cached object for everything unchanged, so the fresh
// cache shares its objects with the old one instead of doubling memory.
import {
  ListWatch,
  Watch,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import { backoffDelay, type BackoffOptions } from "../sinks/retry.ts";
import { sameContent, strip, type Shape } from "./strip/index.ts";

/** Ingest maps each raw item to what is cached; a paged lister applies it per page so only one raw page is alive at a time. */
export type Ingest<T> = (raw: T) => T;
type ListFn<T extends KubernetesObject> = (ingest: Ingest<T>) => Promise<KubernetesListObject<T>>;

export interface GuardedInformerOptions<T extends KubernetesObject> {
  /** Plural resource name for logs and metrics: "nodes", "services", "endpointslices". */
  resource: string;
  /** Watch path, e.g. /api/v1/nodes. */
  path: string;
  list: ListFn<T>;
  kubeConfig: KubeConfig;
  log: Logger;
  /** Any add/update/delete, a swap to a fresh cache, or a lost sync. */
  onChange: (reason: string) => void;
  /** An informer failed and a restart is scheduled. */
  onRestart?: (resource: string, error: unknown, nextAttemptAt: Date) => void;
  backoff: BackoffOptions;
  /** Fresh LIST + swap every so often; 0 disables. */
  resyncMs: number;
  /** What the cache keeps of each object (./strip); undefined keeps everything. */
  shape?: Shape | undefined;
  /**
   * Is the periodic resync worth a LIST now? A standby replica says no: its
   * cache matters only once it leads, and `resyncIfSkipped()` then catches up.
   */
  resyncWhen?: (() => boolean) | undefined;
  /**
   * Can an add/update/delete of this object change anything? When not, the
   * cache still takes it but no evaluation is asked for (level-triggered: the
   * evaluation that does run reads the whole cache).
   */
  relevant?: ((obj: T) => boolean) | undefined;
}

/** client-node's Watch, with every event object ingested before the ListWatch caches it. */
class IngestingWatch extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly ingest: (phase: string, obj: unknown) => unknown,
  ) {
    super(kc);
  }

  override watch(path: string, query: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void, done: (err: unknown) => void): Promise<AbortController> {
    return super.watch(path, query, (phase, obj, watchObj) => callback(phase, this.ingest(phase, obj), watchObj), done);
  }
}

function keyOf(o: KubernetesObject): [name: string, namespace: string | undefined] {
  return [o.metadata?.name ?? "", o.metadata?.namespace || undefined];
}

type Live<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; type?: string; code?: string } | undefined;
  return e?.name === "AbortError" || e?.type === "aborted" || e?.code === "ABORT_ERR";
}

export function describeError(err: unknown): string {
  const e = err as { statusCode?: number; code?: number | string; message?: string; body?: unknown } | undefined;
  if (!e) return "watch closed";
  const status = e.statusCode ?? (typeof e.code === "number" ? e.code : undefined);
  const msg = (e.message ?? String(err)).split("\n")[0]!;
  if (status) return `HTTP ${status}: ${msg.replace(/^HTTP-Code: \d+\s*/, "").slice(0, 200)}`;
  // node-fetch: "request to http://… failed, reason: connect ECONNREFUSED 127.0.0.1:6443"
  const reason = /, reason: (.*)$/.exec(msg)?.[1];
  if (reason) return reason;
  return msg === "Premature close" ? "the API server closed the connection" : msg;
}

export class GuardedInformer<T extends KubernetesObject> {
  private current: Live<T> | undefined;
  private candidate: Live<T> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = true;
  /** Restarts after errors (not resyncs), for metrics. */
  restarts = 0;
  /** Updates dropped at the edge because nothing the agent reads changed (heartbeats). */
  unchangedUpdates = 0;
  /** Updates whose content changed (cached; they trigger an evaluation unless irrelevant). */
  changedUpdates = 0;
  /** Adds/updates/deletes cached without an evaluation because relevant() said no. */
  irrelevantChanges = 0;
  /** Periodic resyncs skipped because resyncWhen() said no. */
  private resyncSkipped = false;
  private syncedOnce: Promise<void>;
  private resolveSynced!: () => void;

  constructor(private readonly opts: GuardedInformerOptions<T>) {
    this.syncedOnce = new Promise((r) => (this.resolveSynced = r));
  }

  get resource(): string {
    return this.opts.resource;
  }

  /** True once a LIST succeeded; the cache then stays usable even while the watch is down. */
  get synced(): boolean {
    return this.current !== undefined;
  }

  waitForSync(): Promise<void> {
    return this.syncedOnce;
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.current?.list(namespace) ?? [];
  }

  get(name: string, namespace?: string): T | undefined {
    return this.current?.get(name, namespace);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.spawn("start");
    if (this.opts.resyncMs > 0) {
      this.resyncTimer = setInterval(() => {
        if (this.candidate || this.restartTimer) return;
        if (this.opts.resyncWhen && !this.opts.resyncWhen()) {
          this.resyncSkipped = true;
          return;
        }
        this.spawn("resync");
      }, this.opts.resyncMs);
      this.resyncTimer.unref?.();
    }
  }

  /** Replace the cache with a fresh LIST now (e.g. after becoming leader). */
  resync(): void {
    if (!this.stopped && !this.candidate) this.spawn("resync");
  }

  /** The drift repair a standby skipped, now that it leads (no-op otherwise). */
  resyncIfSkipped(): void {
    if (!this.resyncSkipped) return;
    this.resyncSkipped = false;
    this.resync();
  }

  /**
   * Raw LIST item → cached object: stripped, and when the cache already holds
   * the same content, that very object (its resourceVersion moved forward).
   */
  private ingestItem(raw: T, cache: ObjectCache<T> | undefined): T {
    if (this.ingested.has(raw)) return raw;
    const item = this.opts.shape ? strip(this.opts.shape, raw) : raw;
    const cached = cache?.get(...keyOf(item));
    if (cached && sameContent(cached, item)) {
      cached.metadata!.resourceVersion = item.metadata?.resourceVersion;
      return cached;
    }
    this.ingested.add(item);
    return item;
  }

  private readonly ingested = new WeakSet<object>();

  /** Watch event → cached object; an update that changes nothing we read keeps the cached object (no callback). */
  private ingestEvent(inf: ObjectCache<T>, phase: string, obj: unknown): unknown {
    if (phase !== "ADDED" && phase !== "MODIFIED" && phase !== "DELETED") return obj;
    try {
      const item = this.opts.shape ? strip(this.opts.shape, obj as T) : (obj as T);
      if (phase === "DELETED") return item;
      const cached = inf.get(...keyOf(item));
      if (cached && sameContent(cached, item)) {
        // Same object back with the new resourceVersion: the ListWatch sees
        // the same version and fires no update.
        cached.metadata!.resourceVersion = item.metadata?.resourceVersion;
        if (inf === this.current) this.unchangedUpdates++;
        return cached;
      }
      if (cached && inf === this.current) this.changedUpdates++;
      return item;
    } catch (err) {
      // client-node swallows errors thrown here, losing the event: never throw.
      this.opts.log.warn({ resource: this.opts.resource, err: describeError(err) }, `${this.opts.resource}: could not strip a watch event (${describeError(err)}); caching it whole`);
      return obj;
    }
  }

  private spawn(why: string): void {
    // Unchanged items are reused from the cache that serves now.
    const serving = this.current;
    const list = async () => {
      const ingest: Ingest<T> = (raw) => this.ingestItem(raw, serving);
      const result = await this.opts.list(ingest);
      result.items = result.items.map(ingest);
      // The informer fills its cache right after this promise settles;
      // setImmediate runs after that, so the swap sees a complete cache.
      setImmediate(() => this.listed(inf, why));
      return result;
    };
    const watch = new IngestingWatch(this.opts.kubeConfig, (phase, obj) => this.ingestEvent(inf, phase, obj));
    const inf: Live<T> = new ListWatch<T>(this.opts.path, watch, list, false);
    this.candidate = inf;
    const changed = (verb: string) => (obj: T) => {
      if (inf === this.current) {
        this.attempt = 0;
        if (this.opts.relevant && !this.opts.relevant(obj)) {
          this.irrelevantChanges++;
          return;
        }
        this.opts.onChange(`${this.opts.resource} ${verb}`);
      }
    };
    inf.on("add", changed("added"));
    inf.on("update", changed("updated"));
    inf.on("delete", changed("deleted"));
    inf.on("error", (err: unknown) => this.failed(inf, err));
    inf.start().catch((err: unknown) => this.failed(inf, err));
  }

  private listed(inf: Live<T>, why: string): void {
    if (this.stopped || inf !== this.candidate) return;
    const old = this.current;
    this.current = inf;
    this.candidate = undefined;
    const failed = this.attempt;
    this.attempt = 0;
    if (old) void old.stop();
    const n = inf.list().length;
    if (why === "start") this.opts.log.debug({ resource: this.opts.resource, objects: n }, `listed ${n} ${this.opts.resource}`);
    else if (why === "restart") {
      this.opts.log.info(
        { resource: this.opts.resource, objects: n, failedAttempts: failed },
        `${this.opts.resource}: listed and watching again after ${failed} failed attempt${failed === 1 ? "" : "s"} (${n} objects)`,
      );
    } else this.opts.log.debug({ resource: this.opts.resource, objects: n, reason: why }, `${this.opts.resource}: fresh list after ${why} (${n} objects)`);
    this.resolveSynced();
    this.opts.onChange(`${this.opts.resource} listed`);
  }

  private failed(inf: Live<T>, err: unknown): void {
    if (this.stopped || isAbort(err)) return;
    if (inf !== this.current && inf !== this.candidate) return; // a replaced informer's last words
    if (this.restartTimer) return; // one pending restart is enough
    const listing = inf === this.candidate;
    if (listing) this.candidate = undefined;
    void inf.stop();
    this.attempt++;
    this.restarts++;
    const delay = backoffDelay(this.attempt, this.opts.backoff);
    const at = new Date(Date.now() + delay);
    const what = listing ? `cannot list ${this.opts.resource}` : `${this.opts.resource} watch failed`;
    const state = this.current ? "serving the last known state" : "nothing is published until it lists";
    // During an outage: the first failure and every 5th attempt at warn, the rest at debug.
    const level = this.attempt === 1 || this.attempt % 5 === 0 ? "warn" : "debug";
    this.opts.log[level](
      { resource: this.opts.resource, err: describeError(err), attempt: this.attempt, nextAttemptAt: at.toISOString() },
      `${what} (${describeError(err)}${this.attempt > 1 ? `, attempt ${this.attempt}` : ""}); ${state}, re-listing at ${at.toISOString()}`,
    );
    this.opts.onRestart?.(this.opts.resource, err, at);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopped) return;
      // A healthy current informer that failed: replace it. If a candidate is
      // already listing, let it finish.
      if (!this.candidate) this.spawn("restart");
    }, delay);
    this.restartTimer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.resyncTimer);
    this.restartTimer = undefined;
    const all = [this.current, this.candidate].filter(Boolean) as Live<T>[];
    this.candidate = undefined;
    await Promise.all(all.map((i) => i.stop().catch(() => undefined)));
  }
}
