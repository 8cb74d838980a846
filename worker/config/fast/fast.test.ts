// The fast path through the real generations Durable Object (Miniflare):
// locations are ConfigStores with their own Cache and their own (stale) view
// of KV; one clock for all.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { GENERATIONS_OBJECT, Known, type WatchableGenerationsApi as GenerationsApi } from "../../generations/api.ts";
import { memoryLogger } from "../../log/index.ts";
import { type Snapshot } from "../../snapshot/schema.ts";
import { ConfigStore, type ConfigKV } from "../index.ts";
import { LocationCopy } from "../location/index.ts";
import { lookupRoute } from "../routes.ts";
import { tombstoneText } from "../stored.ts";
import { CHECK_BURST, FastPath, MAX_BACKOFF_MS } from "./index.ts";
import { snap, unique } from "../test-kit.ts";

const ns = (env as unknown as { EDGELB_GENERATIONS: DurableObjectNamespace }).EDGELB_GENERATIONS;
const realStub = () => ns.get(ns.idFromName(GENERATIONS_OBJECT)) as unknown as GenerationsApi;



/** KV as one location sees it: a fixed value (other locations' writes have not arrived), reads counted. */
function staleKV() {
  let value: string | null = null;
  let reads = 0;
  const kv: ConfigKV = {
    getWithMetadata: (async () => {
      reads++;
      return { value, metadata: { installEpoch: 1 }, cacheStatus: null };
    }) as unknown as ConfigKV["getWithMetadata"],
  };
  return { kv, reads: () => reads, set: (v: unknown) => (value = v === null ? null : JSON.stringify(v)) };
}

/**
 * The real object's first call (a cold Durable Object) took over the production 3 s call timeout in a full
 * `npm test` at load ~10: the check then counted as failed and the first test saw no fast path. Tests about
 * timeouts set their own; the others get room for a loaded machine.
 */
const LOADED_CALL_TIMEOUT_MS = 20_000;

async function world(o: { cluster?: string; stub?: () => GenerationsApi; timeoutMs?: number; holdMs?: number } = {}) {
  const cluster = o.cluster ?? unique("fast");
  let now = 1_000_000;
  const log = memoryLogger();
  const locations = new Map<string, { cache: Cache; kv: ReturnType<typeof staleKV> }>();
  const isolate = async (location: string) => {
    let loc = locations.get(location);
    if (!loc) locations.set(location, (loc = { cache: await caches.open(unique(`kv14-${location}`)), kv: staleKV() }));
    const fast = new FastPath({ stub: o.stub ?? realStub, cache: loc.cache, intervalMs: 5_000, now: () => now, log, timeoutMs: o.timeoutMs ?? LOADED_CALL_TIMEOUT_MS, ...(o.holdMs ? { holdMs: o.holdMs } : {}) });
    const store = new ConfigStore({ kv: loc.kv.kv, clusters: [cluster], ttlMs: 60_000, log, now: () => now, location: new LocationCopy(loc.cache), fast });
    /** A request for a routed hostname (as the edge does it); its background work (a refresh, a held check) is returned, not awaited. */
    const start = async () => {
      const pending: Promise<unknown>[] = [];
      const waitUntil = (p: Promise<unknown>) => void pending.push(p);
      await store.ready(waitUntil);
      store.busy(waitUntil);
      return { done: Promise.all(pending) };
    };
    const request = async () => {
      await (await start()).done;
    };
    return { store, fast, request, start, kv: loc.kv, serves: (host: string) => lookupRoute(store.routes, host) !== undefined };
  };
  return { cluster, log, isolate, advance: (ms: number) => (now += ms) };
}

/**
 * Locations `names` (a name twice: two isolates of one location) serving generation 1 from their KV,
 * then a push of generation 2 taken by the first (its heartbeat at `heartbeatAt`), as in production.
 */
async function pushedInFirst(w: Awaited<ReturnType<typeof world>>, names: readonly [string, string, string], heartbeatAt?: number) {
  const isolates = [await w.isolate(names[0]), await w.isolate(names[1]), await w.isolate(names[2])] as const;
  for (const i of isolates) i.kv.set(snap(w.cluster, 1, "one.example.com"));
  for (const i of isolates) await i.request();
  const s2 = snap(w.cluster, 2, "two.example.com");
  isolates[0].store.install(s2 as Snapshot, JSON.stringify(s2), 1, heartbeatAt);
  await isolates[0].store.publish(w.cluster);
  return { isolates, s2 };
}

describe("the fast path (generations Durable Object)", () => {
  it("a push taken in one location reaches another location's isolates within the check interval, although its KV still holds the old snapshot", async () => {
    const w = await world();
    const {
      isolates: [a, b1, b2],
    } = await pushedInFirst(w, ["ams", "sin", "sin"]);
    w.advance(5_000);
    await b1.request();
    expect(b1.serves("two.example.com")).toBe(true);
    expect(b1.store.cluster(w.cluster)!.source).toBe("fast");
    // The location's other isolate takes it from the location copy: no request of its own to the object.
    w.advance(2_000);
    await b2.request();
    expect(b2.serves("two.example.com")).toBe(true);
    expect(b2.fast.requests).toBe(0);
    // KV was read only for the first loads: nothing newer came from it.
    expect(b1.kv.reads()).toBe(1);
  });

  it("costs one request per location per check interval, however many isolates serve there", async () => {
    const w = await world();
    const isolates = [await w.isolate("fra"), await w.isolate("fra"), await w.isolate("fra")];
    for (const i of isolates) i.kv.set(snap(w.cluster, 1, "app.example.com"));
    for (let s = 0; s < 300; s++) {
      for (const i of isolates) await i.request();
      w.advance(2_000);
    }
    const requests = isolates.reduce((n, i) => n + i.fast.requests, 0);
    // 600 s / 5 s = 120 questions; requests come every 2 s, so a question can come up to 1 s late.
    expect(requests).toBeGreaterThanOrEqual(100);
    expect(requests).toBeLessThanOrEqual(121);
  });

  it("never installs an older generation from the object, and the object never stores one", async () => {
    const w = await world();
    const a = await w.isolate("lhr");
    a.kv.set(snap(w.cluster, 5, "five.example.com"));
    await a.request();
    const s7 = snap(w.cluster, 7, "seven.example.com");
    a.store.install(s7 as Snapshot, JSON.stringify(s7), 1);
    await a.store.publish(w.cluster);
    const s6 = JSON.stringify(snap(w.cluster, 6, "six.example.com"));
    expect(await realStub().publish(w.cluster, { kind: "snapshot", generation: 6, epoch: 1 }, s6)).toMatchObject({ stored: false, current: { generation: 7 } });

    const b = await w.isolate("nrt");
    const s8 = snap(w.cluster, 8, "eight.example.com");
    b.kv.set(s8);
    await b.request();
    w.advance(5_000);
    await b.request();
    expect(b.serves("eight.example.com")).toBe(true);
    expect(b.serves("seven.example.com")).toBe(false);
  });

  it("a deletion reaches another location through the object", async () => {
    const w = await world();
    const a = await w.isolate("cdg");
    const b = await w.isolate("syd");
    for (const i of [a, b]) i.kv.set(snap(w.cluster, 3, "gone.example.com"));
    await a.request();
    await b.request();
    const tomb = tombstoneText(w.cluster, 3, 1, 0);
    a.store.remove(w.cluster, { epoch: 1, generation: 4 }, tomb);
    await a.store.publish(w.cluster);
    w.advance(5_000);
    await b.request();
    expect(b.serves("gone.example.com")).toBe(false);
  });

  it("when the object cannot be reached: KV keeps serving, asked again only after the interval, said once", async () => {
    let calls = 0;
    const w = await world({
      stub: () =>
        ({
          // Polling asks with a check that is not held (watch, hold 0).
          watch: async () => {
            calls++;
            throw new Error("Durable Object unreachable");
          },
        }) as unknown as GenerationsApi,
    });
    const i = await w.isolate("gru");
    i.kv.set(snap(w.cluster, 1, "app.example.com"));
    for (let s = 0; s < 60; s++) {
      await i.request();
      w.advance(1_000);
    }
    expect(i.serves("app.example.com")).toBe(true);
    expect(calls).toBeGreaterThanOrEqual(10);
    expect(calls).toBeLessThanOrEqual(13);
    expect(w.log.entries.filter((e) => e.event === "config.fast_unavailable")).toHaveLength(1);
  });

  it("a cold isolate's first request does not wait for the object", async () => {
    let asked = 0;
    const w = await world({
      stub: () =>
        ({
          watch: () => {
            asked++;
            return new Promise(() => {}); // never answers
          },
        }) as unknown as GenerationsApi,
    });
    const i = await w.isolate("mad");
    i.kv.set(snap(w.cluster, 1, "app.example.com"));
    await i.store.ready(() => {});
    expect(i.serves("app.example.com")).toBe(true);
    expect(asked).toBe(0);
  });

  it("an object that never answers does not hold the refresh: KV changes still arrive", async () => {
    const w = await world({
      timeoutMs: 30,
      stub: () => ({ watch: () => new Promise(() => {}) }) as unknown as GenerationsApi,
    });
    const i = await w.isolate("bog");
    i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await i.request();
    i.kv.set(snap(w.cluster, 2, "two.example.com"));
    for (let s = 0; s < 70 && !i.serves("two.example.com"); s++) {
      w.advance(1_000);
      await i.request();
    }
    expect(i.serves("two.example.com")).toBe(true);
    expect(w.log.entries.find((e) => e.event === "config.fast_unavailable")).toMatchObject({ error: "versions: no answer within 30 ms" });
  });

  it("refuses a value from the object that does not match its version or cluster", async () => {
    const w = await world({
      stub: () =>
        ({
          watch: async () => ({ versions: { [w.cluster]: { kind: "snapshot", generation: 9, epoch: 1 } }, values: {}, held: false }),
          value: async () => ({ version: { kind: "snapshot", generation: 9, epoch: 1 }, text: JSON.stringify(snap("someone-else", 9, "evil.example.com")) }),
        }) as unknown as GenerationsApi,
    });
    const i = await w.isolate("jnb");
    i.kv.set(snap(w.cluster, 1, "app.example.com"));
    await i.request();
    w.advance(5_000);
    await i.request();
    expect(i.serves("evil.example.com")).toBe(false);
    expect(i.serves("app.example.com")).toBe(true);
    expect(w.log.entries.find((e) => e.event === "config.fast_rejected")).toMatchObject({ cluster: w.cluster, error: "snapshot does not match its version" });
  });
});

describe("a cluster removed from KV (cleanup via the KV sink) is not brought back by the object", () => {
  it("a cold isolate in another location does not serve a cluster whose KV key was deleted", async () => {
    const w = await world();
    const a = await w.isolate("ams");
    const s1 = snap(w.cluster, 1, "gone.example.com");
    a.kv.set(s1);
    await a.request();
    a.store.install(s1 as Snapshot, JSON.stringify(s1), 1);
    await a.store.publish(w.cluster);
    const b = await w.isolate("sin");
    b.kv.set(null);
    await b.request();
    expect(b.serves("gone.example.com")).toBe(false);
    w.advance(5_000);
    await b.request();
    expect(b.serves("gone.example.com"), JSON.stringify(b.store.cluster(w.cluster)?.source)).toBe(false);
  });
});

describe("the fast path and the agent's KV sink, heartbeats", () => {
  it("a deletion tombstone the KV sink's cleanup left reaches every location through the object, before their own KV catches up", async () => {
    const w = await world();
    const {
      isolates: [, sin, fra],
    } = await pushedInFirst(w, ["ams", "sin", "fra"]);
    w.advance(5_000);
    await sin.request();
    expect(sin.serves("two.example.com")).toBe(true);
    // `edgelb-sync-agent cleanup --sink kv-api`: KV now holds a tombstone (same install epoch, next generation);
    // fra's KV already shows it, sin's still the old snapshot.
    fra.kv.set(JSON.parse(tombstoneText(w.cluster, 2, 1, 0)));
    w.advance(60_000);
    await fra.request();
    expect(fra.serves("two.example.com")).toBe(false);
    expect(w.log.entries.some((e) => e.event === "config.fast_tombstoned")).toBe(true);
    // sin learns it at its next check from the object, although its KV still says generation 1.
    w.advance(5_000);
    await sin.request();
    expect(sin.serves("two.example.com")).toBe(false);
    expect(sin.serves("one.example.com")).toBe(false);
  });

  it("a heartbeat costs one object request where it was taken and no snapshot fetch anywhere; other locations see its time", async () => {
    const w = await world();
    const {
      isolates: [ams, sin1, sin2],
      s2,
    } = await pushedInFirst(w, ["ams", "sin", "sin"], 1_000_000);
    w.advance(5_000);
    for (const i of [sin1, sin2]) await i.request();
    expect(sin1.store.cluster(w.cluster)!.heartbeatAt).toBe(1_000_000);
    const before = { ams: ams.fast.requests, sin: sin1.fast.requests + sin2.fast.requests };
    // The agent's heartbeat, taken in ams 20 s later.
    w.advance(20_000);
    const beat = 1_025_000;
    ams.store.install(s2 as Snapshot, JSON.stringify(s2), 1, beat);
    await ams.store.publishHeartbeat(w.cluster);
    expect(ams.fast.requests - before.ams).toBe(1);
    w.advance(5_000);
    for (const i of [sin1, sin2]) await i.request();
    // One versions question for the location (shared by its isolates), no value fetch: the version did not change.
    expect(sin1.fast.requests + sin2.fast.requests - before.sin).toBe(1);
    for (const i of [sin1, sin2]) expect(i.store.cluster(w.cluster)!.heartbeatAt).toBe(beat);
  });
});

describe("workers.dev (no Cache API): a stale KV 'missing' does not undo what the fast path installed", () => {
  it("a new cluster learned through the object keeps serving when the isolate's next KV read is still stale", async () => {
    const cluster = unique("wdev");
    let now = 1_000_000;
    const log = memoryLogger();
    const kvB = staleKV();
    kvB.set(null);
    const fastB = new FastPath({ stub: realStub, intervalMs: 5_000, now: () => now, log });
    const b = new ConfigStore({ kv: kvB.kv, clusters: [cluster], ttlMs: 60_000, log, now: () => now, fast: fastB });
    const request = async () => {
      const p: Promise<unknown>[] = [];
      const waitUntil = (x: Promise<unknown>) => void p.push(x);
      await b.ready(waitUntil);
      b.busy(waitUntil);
      await Promise.all(p);
    };
    await request();
    now += 55_000;
    const kvA = staleKV();
    const a = new ConfigStore({ kv: kvA.kv, clusters: [cluster], ttlMs: 60_000, log, now: () => now, fast: new FastPath({ stub: realStub, intervalMs: 5_000, now: () => now, log }) });
    const s1 = snap(cluster, 1, "new.example.com");
    a.install(s1 as Snapshot, JSON.stringify(s1), 1);
    await a.publish(cluster);
    now += 2_000;
    await request();
    expect(lookupRoute(b.routes, "new.example.com")).toBeDefined();
    now += 4_000;
    await request();
    expect(lookupRoute(b.routes, "new.example.com"), JSON.stringify(b.cluster(cluster))).toBeDefined();
  });
});

describe("held checks (long poll): a push answers every location's held check at once", () => {
  const HOLD_MS = 10_000;
  /** Waits until the object holds `n` checks (a condition, not a sleep). */
  const heldAtObject = async (n: number) => {
    const stub = realStub() as unknown as { heldChecks(): Promise<number> };
    for (let i = 0; (await stub.heldChecks()) < n; i++) {
      if (i > 2_000) throw new Error(`the object never held ${n} checks`);
      await scheduler.wait(5);
    }
  };

  it("another location serves a push within a round trip, not an interval: its held check returns with the new snapshot in the answer (no second request)", async () => {
    const w = await world({ holdMs: HOLD_MS });
    const a = await w.isolate("ams");
    const b = await w.isolate("sin");
    for (const i of [a, b]) i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await a.request();
    await b.request(); // cold: KV, then its first check, answered at once (it knew nothing)
    expect(b.fast.requests).toBe(1);
    w.advance(5_000);
    const held = await b.start(); // the next check is held by the object
    await heldAtObject(1);
    const s2 = snap(w.cluster, 2, "two.example.com");
    const pushedAt = Date.now();
    a.store.install(s2 as Snapshot, JSON.stringify(s2), 1);
    await a.store.publish(w.cluster);
    await held.done;
    // Answered by the push, far sooner than the hold time; without a clock step (no interval passed).
    expect(Date.now() - pushedAt, JSON.stringify(w.log.entries)).toBeLessThan(HOLD_MS / 2);
    expect(b.serves("two.example.com")).toBe(true);
    expect(b.store.cluster(w.cluster)!.source).toBe("fast");
    expect(b.fast.requests).toBe(2);
    expect(b.fast.held).toBe(1);
  });

  it("holds one check per location: the location's other isolate asks nothing and takes the change from the location copy", async () => {
    const w = await world({ holdMs: HOLD_MS });
    const a = await w.isolate("ams");
    const b1 = await w.isolate("fra");
    const b2 = await w.isolate("fra");
    for (const i of [a, b1, b2]) i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await a.request();
    await b1.request();
    w.advance(5_000);
    const held = await b1.start();
    await heldAtObject(1);
    await b2.request(); // the lease is b1's: no check of its own
    w.advance(1_000);
    await b2.request();
    expect(b2.fast.requests).toBe(0);
    const s2 = snap(w.cluster, 2, "two.example.com");
    a.store.install(s2 as Snapshot, JSON.stringify(s2), 1);
    await a.store.publish(w.cluster);
    await held.done;
    expect(b1.serves("two.example.com")).toBe(true);
    w.advance(1_000);
    await b2.request();
    expect(b2.serves("two.example.com")).toBe(true);
    expect(b2.store.cluster(w.cluster)!.source).toBe("location");
    expect(b2.fast.requests).toBe(0);
  });

  it("the object holds a check until the hold time when nothing changes, answers at once when it holds a version the caller does not know, and a publish answers every held check", async () => {
    const w = await world();
    const stub = realStub();
    const s1 = JSON.stringify(snap(w.cluster, 1, "one.example.com"));
    await stub.publish(w.cluster, { kind: "snapshot", generation: 1, epoch: 1 }, s1);
    const now = await stub.watch(null, HOLD_MS);
    expect(now.held).toBe(false);
    expect(now.values[w.cluster]?.text).toBe(s1);
    const known = Object.fromEntries(Object.entries(now.versions).map(([c, x]) => [c, `${x.kind}:${x.epoch ?? "-"}:${x.generation}`]));
    const t0 = Date.now();
    const quiet = await stub.watch(known, 300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(quiet).toMatchObject({ held: true, values: {} });
    const waiting = [stub.watch(known, HOLD_MS), stub.watch(known, HOLD_MS)];
    await heldAtObject(2);
    const s2 = JSON.stringify(snap(w.cluster, 2, "two.example.com"));
    const t1 = Date.now();
    await stub.publish(w.cluster, { kind: "snapshot", generation: 2, epoch: 1 }, s2);
    for (const answer of await Promise.all(waiting)) {
      expect(answer.held).toBe(true);
      expect(answer.versions[w.cluster]).toMatchObject({ generation: 2 });
      expect(answer.values[w.cluster]?.text).toBe(s2);
    }
    expect(Date.now() - t1).toBeLessThan(HOLD_MS / 2);
    // What a caller says it knows is checked (bounded) before anything is held for it.
    expect(v.safeParse(Known, { [w.cluster]: "x".repeat(65) }).success).toBe(false);
  });

  it("when the object cannot be reached: KV keeps serving, checks back off (doubling from the interval), said once", async () => {
    let calls = 0;
    const w = await world({
      holdMs: HOLD_MS,
      stub: () =>
        ({
          watch: async () => {
            calls++;
            throw new Error("Durable Object unreachable");
          },
        }) as unknown as GenerationsApi,
    });
    const i = await w.isolate("gru");
    i.kv.set(snap(w.cluster, 1, "app.example.com"));
    for (let s = 0; s < 300; s++) {
      await i.request();
      w.advance(1_000);
    }
    expect(i.serves("app.example.com")).toBe(true);
    // 5, 10, 20, 40, then every MAX_BACKOFF_MS: 0, 5, 15, 35, 75, 135, 195, 255 s.
    expect(calls).toBeGreaterThanOrEqual(7);
    expect(calls).toBeLessThanOrEqual(3 + Math.ceil(300_000 / MAX_BACKOFF_MS));
    expect(w.log.entries.filter((e) => e.event === "config.fast_unavailable")).toHaveLength(1);
  });

  it("a burst of changes is checked at once a few times, then once per interval: the daily ceiling stays one check per interval per location", async () => {
    let calls = 0;
    // An object whose clusters change all the time: every check is answered at once.
    const w = await world({ holdMs: HOLD_MS, stub: () => ({ watch: async () => (calls++, { versions: {}, values: {}, held: false }) }) as unknown as GenerationsApi });
    const i = await w.isolate("sea");
    i.kv.set(snap(w.cluster, 1, "one.example.com"));
    for (let r = 0; r < 10; r++) await i.request();
    expect(calls).toBe(CHECK_BURST + 1);
    for (let t = 0; t < 100; t++) {
      w.advance(1_000);
      await i.request();
    }
    expect(calls).toBeGreaterThanOrEqual(CHECK_BURST + 1 + 19);
    expect(calls).toBeLessThanOrEqual(CHECK_BURST + 1 + 20);
  });

  it("past the object's daily budget: the check answered with a retry-after is the location's last until then (its other isolate reads it in the lease), logged once per back-off", async () => {
    let calls = 0;
    const RETRY_MS = 120_000;
    const w = await world({ holdMs: HOLD_MS, stub: () => ({ watch: async () => (calls++, { versions: {}, values: {}, held: false, retryAfterMs: RETRY_MS }) }) as unknown as GenerationsApi });
    const a = await w.isolate("cpt");
    const b = await w.isolate("cpt");
    for (const i of [a, b]) i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await a.request();
    expect(calls).toBe(1);
    for (let t = 0; t < 23; t++) {
      w.advance(5_000);
      await a.request();
      await b.request();
    }
    expect(calls).toBe(1); // 115 s: not before the retry-after, from either isolate
    expect(a.serves("one.example.com") && b.serves("one.example.com")).toBe(true);
    w.advance(6_000);
    await b.request();
    await a.request();
    expect(calls).toBe(2);
    const said = w.log.entries.filter((e) => e.event === "config.fast_budget_backoff");
    expect(said).toHaveLength(2);
    expect(said[0]).toMatchObject({ level: "warn", retryInMs: RETRY_MS });
  });

  it("polling (no hold time) backs off past the object's daily budget like held checks: one question until the retry-after, from either isolate of the location", async () => {
    const asked: { hold: number; cause: unknown }[] = [];
    const RETRY_MS = 120_000;
    const w = await world({ stub: () => ({ watch: async (_k: unknown, hold: number, cause: unknown) => (asked.push({ hold, cause }), { versions: {}, values: {}, held: false, retryAfterMs: RETRY_MS }) }) as unknown as GenerationsApi });
    const a = await w.isolate("lim");
    const b = await w.isolate("lim");
    for (const i of [a, b]) i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await a.request();
    w.advance(5_000);
    await a.request();
    expect(asked).toEqual([{ hold: 0, cause: "routed" }]);
    for (let t = 0; t < 22; t++) {
      w.advance(5_000);
      await a.request();
      await b.request();
    }
    expect(asked).toHaveLength(1); // 115 s after it: not before the retry-after, from either isolate
    expect(a.serves("one.example.com") && b.serves("one.example.com")).toBe(true);
    for (let t = 0; t < 3; t++) {
      w.advance(5_000);
      await a.request();
      await b.request();
    }
    expect(asked).toHaveLength(2);
    expect(w.log.entries.filter((e) => e.event === "config.fast_budget_backoff")[0]).toMatchObject({ level: "warn", retryInMs: RETRY_MS });
  });

  it("past half the object's budget: once one isolate's answer says so, no isolate of the location starts a check for an unknown hostname (the lease tells the others); routed checks go on", async () => {
    const asked: unknown[] = [];
    const w = await world({ holdMs: HOLD_MS, stub: () => ({ watch: async (_k: unknown, _h: number, cause: unknown) => (asked.push(cause), { versions: {}, values: {}, held: false, unknownHostRetryAfterMs: 3_600_000 }) }) as unknown as GenerationsApi });
    const a = await w.isolate("scl");
    const b = await w.isolate("scl");
    for (const i of [a, b]) i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await a.request();
    expect(asked).toEqual(["routed"]);
    const unknown = async (i: typeof a) => {
      const pending: Promise<unknown>[] = [];
      await i.store.ready((p) => void pending.push(p));
      i.store.unknownHost("new.example.com", (p) => void pending.push(p));
      await Promise.all(pending);
    };
    for (let t = 0; t < 30; t++) {
      w.advance(61_000);
      await unknown(b);
      await unknown(a);
    }
    expect(asked).toEqual(["routed"]);
    expect(w.log.entries.filter((e) => e.event === "config.fast_unknown_hosts_paused")).toHaveLength(1);
    await a.request();
    expect(asked).toEqual(["routed", "routed"]);
  });

  it("a held check the object never answers is given up before waitUntil's 30 s (hold time + call timeout)", async () => {
    const w = await world({ holdMs: 100, timeoutMs: 30, stub: () => ({ watch: () => new Promise(() => {}) }) as unknown as GenerationsApi });
    const i = await w.isolate("bog");
    i.kv.set(snap(w.cluster, 1, "one.example.com"));
    await i.request();
    expect(i.serves("one.example.com")).toBe(true);
    expect(w.log.entries.find((e) => e.event === "config.fast_unavailable")).toMatchObject({ error: "watch: no answer within 130 ms" });
  });
});
