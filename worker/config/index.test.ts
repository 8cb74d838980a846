import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log/index.ts";
import { snapshotKey, type Snapshot } from "../snapshot/schema.ts";
import { ConfigStore, type ConfigKV } from "./index.ts";
import { lookupRoute } from "./routes.ts";
import { tombstoneText } from "./stored.ts";
import { snap, unique } from "./test-kit.ts";

const kv = (env as unknown as { EDGELB_KV: KVNamespace }).EDGELB_KV;


function setup() {
  const cluster = unique("cfg");
  let now = 1_000_000;
  const log = memoryLogger();
  const store = new ConfigStore({ kv, clusters: [cluster], ttlMs: 10_000, log, now: () => now });
  const pending: Promise<unknown>[] = [];
  const ready = () => store.ready((p) => pending.push(p));
  const settle = async () => {
    await Promise.all(pending.splice(0));
  };
  const served = (host: string) => lookupRoute(store.routes, host) !== undefined;
  const put = (value: unknown) => kv.put(snapshotKey(cluster), typeof value === "string" ? value : JSON.stringify(value));
  return { cluster, store, log, ready, settle, served, put, advance: (ms: number) => (now += ms), state: () => store.cluster(cluster)! };
}

describe("config from KV", () => {
  it("waits for KV on first use, then serves from memory until the TTL passes", async () => {
    const t = setup();
    await t.put(snap(t.cluster, 1, "one.example.com"));
    await t.ready();
    expect(t.served("one.example.com")).toBe(true);
    expect(t.log.entries.find((e) => e.event === "config.loaded")).toMatchObject({ cluster: t.cluster, generation: 1, source: "kv" });

    await t.put(snap(t.cluster, 2, "two.example.com"));
    t.advance(9_999);
    await t.ready();
    await t.settle();
    expect(t.served("two.example.com")).toBe(false);
  });

  it("refreshes in the background after the TTL while the stale copy keeps serving", async () => {
    const t = setup();
    await t.put(snap(t.cluster, 1, "one.example.com"));
    await t.ready();
    await t.put(snap(t.cluster, 2, "two.example.com"));
    t.advance(10_000);
    await t.ready();
    // Returned before the refresh finished: the request is served by generation 1.
    expect(t.served("one.example.com")).toBe(true);
    await t.settle();
    expect(t.served("two.example.com")).toBe(true);
    expect(t.served("one.example.com")).toBe(false);
    expect(t.state().snapshot?.generation).toBe(2);
  });

  it("keeps the last good snapshot when KV holds invalid JSON or an invalid snapshot", async () => {
    const t = setup();
    await t.put(snap(t.cluster, 1, "good.example.com"));
    await t.ready();

    await t.put("{ not json");
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.served("good.example.com")).toBe(true);
    expect(t.state().lastError).toMatch(/^snapshot is not valid JSON/);
    expect(t.log.entries.filter((e) => e.event === "config.rejected")).toHaveLength(1);

    // The same bad value again is not logged again.
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.log.entries.filter((e) => e.event === "config.rejected")).toHaveLength(1);

    const bad = snap(t.cluster, 5, "bad.example.com") as unknown as { services: { nodePort: number }[] };
    bad.services[0]!.nodePort = 70_000;
    await t.put(bad);
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.served("good.example.com")).toBe(true);
    expect(t.served("bad.example.com")).toBe(false);
    expect(t.state().lastError).toContain("services.0.nodePort");
    expect(t.log.entries.at(-1)).toMatchObject({ event: "config.rejected", keeping: 1 });

    // A good value again clears the error.
    await t.put(snap(t.cluster, 6, "fixed.example.com"));
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.served("fixed.example.com")).toBe(true);
    expect(t.state().lastError).toBeUndefined();
  });

  it("does not go back to an older generation read from KV", async () => {
    const t = setup();
    await t.put(snap(t.cluster, 7, "new.example.com"));
    await t.ready();
    await t.put(snap(t.cluster, 3, "old.example.com"));
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.served("new.example.com")).toBe(true);
    expect(t.state().lastError).toContain("older than the served 7");
  });

  it("stops serving a cluster whose key was deleted", async () => {
    const t = setup();
    await t.put(snap(t.cluster, 1, "gone.example.com"));
    await t.ready();
    await kv.delete(snapshotKey(t.cluster));
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.served("gone.example.com")).toBe(false);
    expect(t.log.entries.at(-1)).toMatchObject({ event: "config.removed", cluster: t.cluster });
  });

  it("says once when a served cluster has no snapshot yet", async () => {
    const t = setup();
    await t.ready();
    t.advance(10_000);
    await t.ready();
    await t.settle();
    expect(t.log.entries.filter((e) => e.event === "config.missing")).toEqual([
      { level: "warn", event: "config.missing", cluster: t.cluster, key: `cluster/${t.cluster}` },
    ]);
  });

  it("ignores a snapshot stored under another cluster's key", async () => {
    const t = setup();
    await t.put(snap("someone-else", 1, "x.example.com"));
    await t.ready();
    expect(t.served("x.example.com")).toBe(false);
    expect(t.state().lastError).toContain(`holds a snapshot of cluster "someone-else"`);
  });
});

describe("KV cannot be read on first use", () => {
  it("says how long until the retry instead of serving an empty config, retries with backoff, and recovers", async () => {
    const cluster = unique("cfg");
    await kv.put(snapshotKey(cluster), JSON.stringify(snap(cluster, 1, "late.example.com")));
    let now = 1_000_000;
    let failing = true;
    const log = memoryLogger();
    const flaky = {
      getWithMetadata: ((key: string, type: "text") =>
        failing ? Promise.reject(new Error("KV GET failed: 503")) : kv.getWithMetadata(key, type)) as KVNamespace["getWithMetadata"],
    };
    const store = new ConfigStore({ kv: flaky, clusters: [cluster], ttlMs: 60_000, log, now: () => now });
    const noWait = () => {};
    await store.ready(noWait);
    expect(store.unavailableFor()).toBe(250);
    now += 100;
    await store.ready(noWait); // inside the backoff: no read
    expect(store.unavailableFor()).toBe(150);
    now += 150;
    await store.ready(noWait); // retried, failed again: longer backoff
    expect(store.unavailableFor()).toBe(500);
    expect(log.entries.filter((e) => e.event === "config.read_failed")).toHaveLength(2);
    failing = false;
    now += 500;
    await store.ready(noWait);
    expect(store.unavailableFor()).toBeUndefined();
    expect(lookupRoute(store.routes, "late.example.com")).toBeDefined();
  });
});

describe("a push for one cluster while another is read for the first time", () => {
  it("keeps the other cluster's first read instead of dropping it", async () => {
    const slow = unique("cfg");
    const pushed = unique("cfg");
    await kv.put(snapshotKey(slow), JSON.stringify(snap(slow, 1, "slow.example.com")));
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const gated = {
      getWithMetadata: (async (key: string, type: "text") => {
        if (key === snapshotKey(slow)) await gate;
        return kv.getWithMetadata(key, type);
      }) as KVNamespace["getWithMetadata"],
    };
    const log = memoryLogger();
    const store = new ConfigStore({ kv: gated, clusters: [slow, pushed], ttlMs: 60_000, log });
    const first = store.ready(() => {});
    const s = snap(pushed, 1, "pushed.example.com");
    store.install(s as never, JSON.stringify(s), 1);
    open();
    await first;
    expect(lookupRoute(store.routes, "slow.example.com")).toBeDefined();
    expect(lookupRoute(store.routes, "pushed.example.com")).toBeDefined();
    expect(store.unavailableFor()).toBeUndefined();
    expect(log.entries.filter((e) => e.event === "config.unavailable")).toEqual([]);
  });
});

describe("reinstall after a deletion, read by an isolate that saw the tombstone", () => {
  function staged() {
    const cluster = unique("cfg");
    let now = 1_000_000;
    let value: string | null = null;
    let metadata: unknown = null;
    const fake = {
      getWithMetadata: (async () => ({ value, metadata, cacheStatus: null })) as unknown as KVNamespace["getWithMetadata"],
    };
    const store = new ConfigStore({ kv: fake, clusters: [cluster], ttlMs: 1_000, log: memoryLogger(), now: () => now });
    const read = async (v: string, m: unknown) => {
      value = v;
      metadata = m;
      now += 2_000;
      const pending: Promise<unknown>[] = [];
      await store.ready((p) => pending.push(p));
      await Promise.all(pending);
    };
    const served = (host: string) => lookupRoute(store.routes, host) !== undefined;
    return { cluster, read, served };
  }

  it("serves a push stored with the old epoch at the tombstone's generation (pushed while KV still returned the old snapshot)", async () => {
    const t = staged();
    await t.read(JSON.stringify(snap(t.cluster, 3, "old.example.com")), { installEpoch: 5 });
    expect(t.served("old.example.com")).toBe(true);
    await t.read(tombstoneText(t.cluster, 3, 5, 0), null);
    expect(t.served("old.example.com")).toBe(false);
    // A stale read of the deleted snapshot is still not served.
    await t.read(JSON.stringify(snap(t.cluster, 3, "old.example.com")), { installEpoch: 5 });
    expect(t.served("old.example.com")).toBe(false);
    // The agent's re-push at generation 4 (409 told it 3), stored with epoch 5.
    await t.read(JSON.stringify(snap(t.cluster, 4, "again.example.com")), { installEpoch: 5 });
    expect(t.served("again.example.com")).toBe(true);
  });

  it("serves a snapshot without metadata (the agent's KV sink) written after the tombstone, at generation 1", async () => {
    const t = staged();
    await t.read(JSON.stringify(snap(t.cluster, 7, "old.example.com")), { installEpoch: 5 });
    await t.read(tombstoneText(t.cluster, 7, 5, 0), null);
    expect(t.served("old.example.com")).toBe(false);
    await t.read(JSON.stringify(snap(t.cluster, 1, "sink.example.com")), null);
    expect(t.served("sink.example.com")).toBe(true);
  });

  it("a heartbeat that re-sends the served snapshot (same text and epoch) logs no config.loaded and rebuilds nothing", async () => {
    const log = memoryLogger();
    const store = new ConfigStore({ kv: { getWithMetadata: (async () => ({ value: null, metadata: null, cacheStatus: null })) as unknown as ConfigKV["getWithMetadata"] }, clusters: ["hb"], ttlMs: 60_000, log });
    const s1 = snap("hb", 1, "app.example.com");
    store.install(s1 as Snapshot, JSON.stringify(s1), 1, 1_000);
    const routes = store.routes;
    store.install(s1 as Snapshot, JSON.stringify(s1), 1, 61_000);
    store.install(s1 as Snapshot, JSON.stringify(s1), 1, 121_000);
    expect(log.entries.filter((e) => e.event === "config.loaded")).toHaveLength(1);
    expect(store.routes).toBe(routes);
    expect(store.cluster("hb")!.heartbeatAt).toBeGreaterThanOrEqual(1_000);
  });
});

describe("readyNow: a loaded config is used without a promise", () => {
  it("says 'wait' until the first load, then 'ready' with a refresh started once the TTL passed, as ready() does", async () => {
    const t = setup();
    const handed: Promise<unknown>[] = [];
    const keep = (p: Promise<unknown>) => handed.push(p);
    await t.put(snap(t.cluster, 1, "one.example.com"));
    // Nothing read yet: the request must await ready(), and readyNow starts no read itself.
    expect(t.store.readyNow(keep)).toBe(false);
    expect(handed).toHaveLength(0);
    await t.ready();
    expect(t.store.readyNow(keep)).toBe(true);
    expect(handed).toHaveLength(0);
    await t.put(snap(t.cluster, 2, "two.example.com"));
    t.advance(10_000);
    // Due: served from memory now, one refresh handed to waitUntil (not two while it runs).
    expect(t.store.readyNow(keep)).toBe(true);
    expect(t.store.readyNow(keep)).toBe(true);
    expect(handed).toHaveLength(1);
    expect(t.served("one.example.com")).toBe(true);
    await Promise.all(handed);
    expect(t.served("two.example.com")).toBe(true);
  });

  it("says 'wait' while a cluster was never read (KV failing), so the request waits for the retry as with ready()", async () => {
    const cluster = unique("cfg");
    let now = 1_000_000;
    const failing = {
      getWithMetadata: (() => Promise.reject(new Error("KV GET failed: 503"))) as unknown as KVNamespace["getWithMetadata"],
    };
    const store = new ConfigStore({ kv: failing, clusters: [cluster], ttlMs: 60_000, log: memoryLogger(), now: () => now });
    await store.ready(() => {});
    expect(store.unavailableFor()).toBe(250);
    expect(store.readyNow(() => {})).toBe(false);
  });
});
