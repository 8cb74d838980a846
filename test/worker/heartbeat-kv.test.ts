// The heartbeat's KV refresh (issue 18, wx18): it never undoes a push or a DELETE that landed
// meanwhile (in another isolate or location), a flood of heartbeats costs no KV reads, and with
// the generations object one isolate in the world writes per interval.
import { describe, expect, it } from "vitest";
import { controlApp } from "../../worker/control/index.ts";
import { TokenTable } from "../../worker/control/auth/index.ts";
import { parseTombstone } from "../../worker/config/stored.ts";
import { decideKvRefresh, type GenerationsApi, type ValueVersion } from "../../worker/generations/api.ts";
import { SNAPSHOT_SCHEMA, snapshotKey } from "../../worker/snapshot/schema.ts";

const TOKEN = "t".repeat(40);
const snap = (generation: number) =>
  JSON.stringify({ schema: SNAPSHOT_SCHEMA, cluster: "home", generation, publishedAt: new Date().toISOString(), nodes: [], services: [] });
const HOUR = 3_600_000;

/** A fake generations object: what the pushes and deletions published, and the KV-refresh decision of the real one. */
function fakeGenerations() {
  const values = new Map<string, { version: ValueVersion; text: string; kvRefreshAt?: number }>();
  let claims = 0;
  const api: GenerationsApi = {
    async versions() { return Object.fromEntries([...values].map(([k, v]) => [k, v.version])); },
    async value(cluster) { const v = values.get(cluster); return v ? { version: v.version, text: v.text } : null; },
    async publish(cluster, version, text) { values.set(cluster, { version, text }); return { stored: true, current: version }; },
    async heartbeat() { return { recorded: true }; },
    async claimKvRefresh(cluster, version, at, everyMs) {
      claims++;
      const v = values.get(cluster);
      return decideKvRefresh(v?.version, v?.kvRefreshAt, version, at, everyMs, async (t) => { v!.kvRefreshAt = t; });
    },
  };
  return { api, values, claims: () => claims };
}

function setup(opts: { generations?: boolean } = {}) {
  const store = new Map<string, { value: string; metadata: unknown }>();
  let hold: { reached: () => void; until: Promise<void> } | undefined;
  let reads = 0;
  let puts = 0;
  const gens = fakeGenerations();
  /** One location's view of KV: `stale` serves what it read before (KV's per-location read cache). */
  const kvView = () => {
    const cache = new Map<string, { value: string | null; metadata: unknown }>();
    const view = {
      stale: false,
      async getWithMetadata(key: string) {
        reads++;
        const e = store.get(key);
        const out = view.stale && cache.has(key) ? cache.get(key)! : { value: e?.value ?? null, metadata: e?.metadata ?? null };
        cache.set(key, out);
        if (hold) { const h = hold; hold = undefined; h.reached(); await h.until; } // this request is slow after its read
        return out;
      },
      async get(key: string) { reads++; return store.get(key)?.value ?? null; },
      async put(key: string, value: string, o?: { metadata?: unknown }) { puts++; store.set(key, { value, metadata: o?.metadata ?? null }); },
    };
    return view;
  };
  let clock = 1_000_000_000_000;
  const isolate = (kv: ReturnType<typeof kvView>) => {
    // The config store's part here: what a push or delete installs is published to the generations object.
    let last: { version: ValueVersion; text: string } | undefined;
    const config = {
      clusters: ["home"],
      install(s: { generation: number }, text: string, epoch: number | undefined) { last = { version: { kind: "snapshot", generation: s.generation, epoch: epoch ?? null, at: clock }, text }; },
      remove(_n: string, v: { epoch: number; generation: number }, text: string) { last = { version: { kind: "tombstone", generation: v.generation, epoch: v.epoch, at: clock }, text }; },
      async publish(name: string) { if (opts.generations && last) await gens.api.publish(name, last.version, last.text); },
      async publishHeartbeat() {},
    };
    return controlApp({
      kv: kv as never, config: config as never,
      tokens: new TokenTable({ pushToken: TOKEN, readToken: undefined, clusterTokens: new Map() }),
      maxPushBytes: 1 << 20, log: () => {}, status: () => ({}), now: () => clock,
      ...(opts.generations ? { generations: () => gens.api } : {}),
    });
  };
  const kvs = [kvView(), kvView(), kvView()];
  const apps = kvs.map(isolate); // isolates (or locations), one KV
  const call = (method: string, path: string, body?: string, on = 0) =>
    apps[on]!.fetch(new Request(`http://x${path}`, { method, body, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } }));
  return {
    store, call, kvs, gens, reads: () => reads, puts: () => puts,
    advance: (ms: number) => (clock += ms),
    /** The next KV read stalls after reading: `reached` settles when it has read, `release` lets it go on. */
    holdNextRead() {
      let release!: () => void;
      let reached!: () => void;
      const wasReached = new Promise<void>((r) => (reached = r));
      hold = { reached, until: new Promise((r) => (release = r)) };
      return { reached: wasReached, release };
    },
    beat: (generation: number, on = 0) => call("POST", "/v1/clusters/home/heartbeat", JSON.stringify({ generation }), on),
    stored: () => store.get(snapshotKey("home"))!,
  };
}

/** Generation 5 stored, two hours later a heartbeat whose KV refresh has read it and stalls until `release`. */
async function heartbeatHeldAfterRead(t: ReturnType<typeof setup>) {
  expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
  t.advance(2 * HOUR);
  const held = t.holdNextRead();
  const beat = t.beat(5);
  await held.reached;
  return { beat, release: held.release };
}

describe("heartbeat KV refresh", () => {
  // The reviewer's tests (rv-attack §4).
  it("a DELETE during a heartbeat's KV refresh stays deleted", async () => {
    const t = setup();
    const { beat, release } = await heartbeatHeldAfterRead(t);
    expect((await t.call("DELETE", "/v1/clusters/home")).status).toBe(200);
    release();
    await beat;
    expect(parseTombstone(t.store.get(snapshotKey("home"))!.value)).toBeDefined();
  });

  it("a push (another isolate) during a heartbeat's KV refresh is kept", async () => {
    const t = setup();
    const { beat, release } = await heartbeatHeldAfterRead(t);
    expect((await t.call("PUT", "/v1/clusters/home", snap(6), 1)).status).toBe(200);
    release();
    await beat;
    expect(JSON.parse(t.store.get(snapshotKey("home"))!.value).generation).toBe(6);
  });

  it("a DELETE from another location, which this location's KV cache does not show yet, stays deleted (generations object)", async () => {
    const t = setup({ generations: true });
    expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
    t.advance(10_000);
    expect((await t.beat(5)).status).toBe(200); // location 0 has read generation 5
    t.advance(2 * HOUR);
    expect((await t.call("DELETE", "/v1/clusters/home", undefined, 1)).status).toBe(200);
    t.kvs[0]!.stale = true; // location 0 still reads generation 5 for up to 60 s
    const res = await t.beat(5);
    expect(res.status).toBe(200);
    expect(parseTombstone(t.stored().value)).toBeDefined();
  });

  it("a push landing between the object's go-ahead and the KV write is put back in KV (generations object)", async () => {
    const t = setup({ generations: true });
    expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
    t.advance(2 * HOUR);
    const reread = t.kvs[0]!.getWithMetadata.bind(t.kvs[0]);
    let n = 0;
    t.kvs[0]!.getWithMetadata = async (key: string) => {
      const out = await reread(key);
      // The heartbeat's re-read just before its put: meanwhile location 1 takes generation 6 (KV + object).
      if (++n === 2) expect((await t.call("PUT", "/v1/clusters/home", snap(6), 1)).status).toBe(200);
      return out;
    };
    expect((await t.beat(5)).status).toBe(200);
    expect(JSON.parse(t.stored().value).generation).toBe(6);
  });

  it("with the generations object, one KV write per interval for all locations", async () => {
    const t = setup({ generations: true });
    expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
    t.advance(10_000);
    // Every location has read the value; their KV read caches keep showing its heartbeatAt.
    for (const on of [0, 1, 2]) expect((await t.beat(5, on)).status).toBe(200);
    for (const kv of t.kvs) kv.stale = true;
    t.advance(2 * HOUR);
    const before = t.puts();
    for (const on of [0, 1, 2]) expect((await t.beat(5, on)).status).toBe(200);
    expect(t.puts() - before).toBe(1);
    expect(t.gens.claims()).toBe(3);
  });

  it("a flood of heartbeats costs one KV read, not one each (rate limit before the read)", async () => {
    const t = setup();
    expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
    t.advance(10_000);
    const before = t.reads();
    const answers: boolean[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await t.beat(5);
      expect(res.status).toBe(200);
      answers.push(((await res.json()) as { recorded: boolean }).recorded);
    }
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(t.reads() - before).toBe(1);
    // Another generation inside the limit is not looked up either: 429, no read.
    const other = await t.beat(4);
    expect(other.status).toBe(429);
    expect(other.headers.get("retry-after")).toBe("2");
    expect(t.reads() - before).toBe(1);
  });
});
