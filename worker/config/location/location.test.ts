// Several isolates of one location (ConfigStore instances sharing one Cache)
// over simulated minutes: how often KV is read, what a push does, and what a
// bad entry in the Cache does. Runs in workerd: the Cache is the runtime's.
import { describe, expect, it } from "vitest";
import { memoryLogger } from "../../log/index.ts";
import { snapshotKey, type Snapshot } from "../../snapshot/schema.ts";
import { snap, unique } from "../test-kit.ts";
import { ConfigStore, type ConfigKV } from "../index.ts";
import { lookupRoute } from "../routes.ts";
import { tombstoneText } from "../stored.ts";
import { encodeEntry } from "./entry.ts";
import { entryKey, LocationCopy, type LocationCache } from "./index.ts";
import { FastPath } from "../fast/index.ts";
import type { WatchableGenerationsApi as GenerationsApi } from "../../generations/api.ts";



/** Workers KV as one location sees it, counting reads. */
function countingKV() {
  const values = new Map<string, { value: string; metadata: unknown }>();
  let reads = 0;
  let failing = false;
  const kv: ConfigKV = {
    getWithMetadata: (async (key: string) => {
      reads++;
      if (failing) throw new Error("KV GET failed: 503");
      const e = values.get(key);
      return { value: e?.value ?? null, metadata: e?.metadata ?? null, cacheStatus: null };
    }) as unknown as ConfigKV["getWithMetadata"],
  };
  return {
    kv,
    reads: () => reads,
    put: (cluster: string, value: unknown, metadata: unknown = null) =>
      values.set(snapshotKey(cluster), { value: typeof value === "string" ? value : JSON.stringify(value), metadata }),
    fail: (on: boolean) => (failing = on),
  };
}

/** One location: `isolates` stores sharing `cache`, one clock, one KV. */
async function location(o: { isolates: number; ttlMs?: number; cache?: LocationCache; cluster?: string }) {
  const cluster = o.cluster ?? unique("loc");
  const cache = o.cache ?? (await caches.open(unique("kv14-location")));
  const kv = countingKV();
  let now = 1_000_000;
  const log = memoryLogger();
  const stores = Array.from(
    { length: o.isolates },
    () => new ConfigStore({ kv: kv.kv, clusters: [cluster], ttlMs: o.ttlMs ?? 60_000, log, now: () => now, location: new LocationCopy(cache) }),
  );
  /** One request through isolate i, with its background work finished. */
  const request = async (i: number) => {
    const pending: Promise<unknown>[] = [];
    await stores[i]!.ready((p) => pending.push(p));
    await Promise.all(pending);
  };
  const serves = (i: number, host: string) => lookupRoute(stores[i]!.routes, host) !== undefined;
  const generation = (i: number) => stores[i]!.cluster(cluster)!.snapshot?.generation;
  return { cluster, cache, kv, log, stores, request, serves, generation, advance: (ms: number) => (now += ms), now: () => now };
}

describe("KV reads per location", () => {
  it("five busy isolates of one location read KV about once per refresh interval, not once per isolate", async () => {
    const t = await location({ isolates: 5 });
    t.kv.put(t.cluster, snap(t.cluster, 1, "app.example.com"));
    // Ten simulated minutes, each isolate serving a request every 2 s (each one a look at the copy).
    for (let s = 0; s < 300; s++) {
      for (let i = 0; i < 5; i++) await t.request(i);
      t.advance(2_000);
    }
    for (let i = 0; i < 5; i++) expect(t.serves(i, "app.example.com")).toBe(true);
    // One read per started minute for the whole location (the first isolate's cold read included).
    expect(t.kv.reads()).toBeGreaterThanOrEqual(10);
    expect(t.kv.reads()).toBeLessThanOrEqual(11);
  });

  it("a change in KV reaches every isolate of the location within the refresh interval plus one check", async () => {
    const t = await location({ isolates: 3 });
    t.kv.put(t.cluster, snap(t.cluster, 1, "one.example.com"));
    for (let i = 0; i < 3; i++) await t.request(i);
    t.kv.put(t.cluster, snap(t.cluster, 2, "two.example.com"));
    const changedAt = t.now();
    while (![0, 1, 2].every((i) => t.serves(i, "two.example.com"))) {
      t.advance(1_000);
      for (let i = 0; i < 3; i++) await t.request(i);
      expect(t.now() - changedAt).toBeLessThanOrEqual(62_000);
    }
    expect(t.kv.reads()).toBe(2);
  });

  it("on workers.dev (a Cache that keeps nothing) every isolate reads KV once per interval and serves correctly", async () => {
    const noop: LocationCache = { match: async () => undefined, put: async () => {} };
    const t = await location({ isolates: 3, cache: noop });
    t.kv.put(t.cluster, snap(t.cluster, 1, "app.example.com"));
    for (let s = 0; s < 180; s++) {
      for (let i = 0; i < 3; i++) await t.request(i);
      t.advance(1_000);
    }
    for (let i = 0; i < 3; i++) expect(t.serves(i, "app.example.com")).toBe(true);
    expect(t.kv.reads()).toBe(9);
  });
});

describe("a Cache that fails", () => {
  it("costs no extra KV reads: each isolate reads KV once per interval, and says once that the copy is unavailable", async () => {
    const broken: LocationCache = {
      match: async () => {
        throw new Error("cache unavailable");
      },
      put: async () => {
        throw new Error("cache unavailable");
      },
    };
    const t = await location({ isolates: 2, cache: broken });
    t.kv.put(t.cluster, snap(t.cluster, 1, "app.example.com"));
    for (let s = 0; s < 120; s++) {
      for (let i = 0; i < 2; i++) await t.request(i);
      t.advance(1_000);
    }
    expect(t.serves(0, "app.example.com") && t.serves(1, "app.example.com")).toBe(true);
    expect(t.kv.reads()).toBe(4);
    expect(t.log.entries.filter((e) => e.event === "config.location_unavailable")).toHaveLength(2);
  });
});

describe("pushes and the location copy", () => {
  it("a push installs at once in the isolate that took it and reaches the others through the copy, without a KV read", async () => {
    const t = await location({ isolates: 3 });
    t.kv.put(t.cluster, snap(t.cluster, 1, "one.example.com"), { installEpoch: 7 });
    for (let i = 0; i < 3; i++) await t.request(i);
    const readsBefore = t.kv.reads();
    const s2 = snap(t.cluster, 2, "two.example.com");
    t.stores[0]!.install(s2 as Snapshot, JSON.stringify(s2), 7);
    await t.stores[0]!.publish(t.cluster);
    expect(t.serves(0, "two.example.com")).toBe(true);
    expect(t.serves(1, "two.example.com")).toBe(false);
    t.advance(2_000);
    for (let i = 1; i < 3; i++) await t.request(i);
    expect(t.serves(1, "two.example.com")).toBe(true);
    expect(t.serves(2, "two.example.com")).toBe(true);
    expect(t.kv.reads()).toBe(readsBefore);
    expect(t.stores[1]!.cluster(t.cluster)!.source).toBe("location");
  });

  it("a stale copy or a stale KV read never rolls back a newer push, and is not written over the pushed copy", async () => {
    const t = await location({ isolates: 2 });
    // KV at this location still answers generation 4 (eventual consistency); the push brings 5.
    t.kv.put(t.cluster, snap(t.cluster, 4, "old.example.com"), { installEpoch: 7 });
    await t.request(0);
    await t.request(1);
    const s5 = snap(t.cluster, 5, "new.example.com");
    t.stores[0]!.install(s5 as Snapshot, JSON.stringify(s5), 7);
    await t.stores[0]!.publish(t.cluster);
    // Past the interval: both isolates read KV (generation 4) again.
    t.advance(61_000);
    await t.request(1);
    await t.request(0);
    expect(t.generation(0)).toBe(5);
    expect(t.generation(1)).toBe(5);
    const copy = await t.cache.match(entryKey(t.cluster));
    expect(copy?.headers.get("x-edgelb-generation")).toBe("5");
    // A copy of generation 4 written by a slow isolate after the push: not taken.
    const old = await encodeEntry(t.cluster, { kind: "snapshot", text: JSON.stringify(snap(t.cluster, 4, "old.example.com")), snapshot: snap(t.cluster, 4, "old.example.com") as Snapshot, epoch: 7 }, t.now());
    await t.cache.put(entryKey(t.cluster), new Response(old.body, { headers: old.headers }));
    t.advance(2_000);
    await t.request(0);
    await t.request(1);
    expect(t.serves(0, "new.example.com") && t.serves(1, "new.example.com")).toBe(true);
    expect(t.serves(0, "old.example.com") || t.serves(1, "old.example.com")).toBe(false);
  });

  it("a deletion reaches the location's other isolates through the copy, and the deleted snapshot is not served again", async () => {
    const t = await location({ isolates: 2 });
    t.kv.put(t.cluster, snap(t.cluster, 3, "gone.example.com"), { installEpoch: 9 });
    await t.request(0);
    await t.request(1);
    const tomb = tombstoneText(t.cluster, 3, 9, t.now());
    t.stores[0]!.remove(t.cluster, { epoch: 9, generation: 4 }, tomb);
    await t.stores[0]!.publish(t.cluster);
    t.advance(2_000);
    await t.request(1);
    expect(t.serves(1, "gone.example.com")).toBe(false);
    // KV (not yet propagated) still answers the deleted snapshot: it stays gone.
    t.advance(61_000);
    await t.request(1);
    await t.request(0);
    expect(t.serves(0, "gone.example.com") || t.serves(1, "gone.example.com")).toBe(false);
  });

  it("a cold isolate takes the location's copy when KV cannot be read (the last good state keeps serving)", async () => {
    const t = await location({ isolates: 2 });
    t.kv.put(t.cluster, snap(t.cluster, 1, "app.example.com"));
    await t.request(0);
    t.kv.fail(true);
    t.advance(600_000);
    await t.request(1);
    expect(t.serves(1, "app.example.com")).toBe(true);
    expect(t.stores[1]!.unavailableFor()).toBeUndefined();
    expect(t.log.entries.some((e) => e.event === "config.read_failed")).toBe(true);
  });
});

describe("bad entries in the Cache", () => {
  async function withEntry(mutate: (headers: Headers, body: Uint8Array) => { headers: Headers; body: BodyInit | null }) {
    const t = await location({ isolates: 1 });
    t.kv.put(t.cluster, snap(t.cluster, 2, "kv.example.com"));
    // A copy claiming generation 9, fresh: if it were trusted, KV would not be read.
    const evil = snap(t.cluster, 9, "evil.example.com");
    const e = await encodeEntry(t.cluster, { kind: "snapshot", text: JSON.stringify(evil), snapshot: evil as Snapshot, epoch: undefined }, t.now());
    const m = mutate(e.headers, e.body);
    await t.cache.put(entryKey(t.cluster), new Response(m.body, { headers: m.headers }));
    await t.request(0);
    return t;
  }

  const cases: [string, (h: Headers, b: Uint8Array) => { headers: Headers; body: BodyInit | null }, RegExp][] = [
    ["a corrupt body", (h, b) => ({ headers: h, body: b.map((x, i) => (i === 40 ? x ^ 1 : x)) }), /digest does not match/],
    ["a truncated body", (h, b) => ({ headers: h, body: b.slice(0, b.byteLength - 5) }), /truncated|length/],
    [
      "an oversized entry",
      (h, b) => {
        h.set("x-edgelb-bytes", String(30 * 1024 * 1024));
        h.delete("content-length");
        return { headers: h, body: b };
      },
      /oversized/,
    ],
    [
      "an entry not written by edgelb",
      () => ({ headers: new Headers({ "content-type": "application/json", "cache-control": "max-age=3600" }), body: JSON.stringify(snap("x", 9, "evil.example.com")) }),
      /not an edgelb entry/,
    ],
    [
      "another cluster's entry",
      (h, b) => {
        h.set("x-edgelb-cluster", "someone-else");
        return { headers: h, body: b };
      },
      /another cluster/,
    ],
    [
      "an entry read in the future",
      (h, b) => {
        h.set("x-edgelb-read-at", String(9_000_000_000_000));
        return { headers: h, body: b };
      },
      /future/,
    ],
  ];

  for (const [what, mutate, reason] of cases) {
    it(`ignores ${what}, reads KV instead and replaces the entry`, async () => {
      const t = await withEntry(mutate);
      expect(t.serves(0, "evil.example.com")).toBe(false);
      expect(t.serves(0, "kv.example.com")).toBe(true);
      expect(t.kv.reads()).toBe(1);
      const ignored = t.log.entries.find((e) => e.event === "config.location_ignored");
      expect(ignored).toMatchObject({ level: "warn", cluster: t.cluster, action: "reading KV" });
      expect(String(ignored!.reason)).toMatch(reason);
      const copy = await t.cache.match(entryKey(t.cluster));
      expect(copy?.headers.get("x-edgelb-generation")).toBe("2");
    });
  }
});

describe("two edgelb deployments on one zone (caches.default is per zone, not per worker)", () => {
  it("production does not serve staging's snapshot from the shared cache, nor take its fast-path answer", async () => {
    const cache = await caches.open(unique("kv14-zone"));
    const cluster = "default";
    let now = 1_000_000;
    const log = memoryLogger();
    const deployment = (instance: string, host: string) => {
      const kv = countingKV();
      kv.put(cluster, snap(cluster, 1, host));
      const store = new ConfigStore({ kv: kv.kv, clusters: [cluster], ttlMs: 60_000, log, now: () => now, location: new LocationCopy(cache, instance) });
      const request = async () => {
        const pending: Promise<unknown>[] = [];
        await store.ready((p) => pending.push(p));
        await Promise.all(pending);
      };
      return { store, kv, request, serves: (h: string) => lookupRoute(store.routes, h) !== undefined };
    };
    const staging = deployment("edgelb-staging", "staging.example.com");
    const prod = deployment("edgelb-prod", "www.example.com");
    await staging.request();
    now += 1_000;
    await prod.request();
    expect(prod.serves("www.example.com")).toBe(true);
    expect(prod.serves("staging.example.com")).toBe(false);
    expect(prod.kv.reads()).toBe(1);
    expect(staging.serves("staging.example.com")).toBe(true);
    // Staging's copy is still there for staging's other isolates.
    const staging2 = new ConfigStore({ kv: countingKV().kv, clusters: [cluster], ttlMs: 60_000, log, now: () => now, location: new LocationCopy(cache, "edgelb-staging") });
    await staging2.ready(() => {});
    expect(lookupRoute(staging2.routes, "staging.example.com")).toBeDefined();

    // The fast path's shared versions answer is per deployment too.
    const answers: Record<string, Record<string, unknown>> = { a: { [cluster]: { kind: "snapshot", generation: 9, epoch: 1 } }, b: {} };
    const fastFor = (instance: string, who: "a" | "b") =>
      // Polling asks with a check that is not held (watch, hold 0).
      new FastPath({ stub: () => ({ watch: async () => ({ versions: answers[who], values: {}, held: false }) }) as unknown as GenerationsApi, cache, instance, intervalMs: 5_000, now: () => now, log });
    const fa = fastFor("edgelb-staging", "a");
    const fb = fastFor("edgelb-prod", "b");
    // Both locations serve routed requests (polling asks the object only then).
    for (const f of [fa, fb]) f.busy(async () => {});
    expect(await fa.versions()).toMatchObject({ [cluster]: { generation: 9 } });
    expect(await fb.versions()).toEqual({});
    expect(fb.requests).toBe(1);
  });
});
