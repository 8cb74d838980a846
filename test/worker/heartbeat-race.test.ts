// rv-attack 4: a heartbeat's KV refresh never writes an older snapshot back over a push or DELETE that landed meanwhile.
import { expect, it } from "vitest";
import { controlApp } from "../../worker/control/index.ts";
import { TokenTable } from "../../worker/control/auth/index.ts";
import { parseTombstone } from "../../worker/config/stored.ts";
import { SNAPSHOT_SCHEMA, snapshotKey } from "../../worker/snapshot/schema.ts";

const TOKEN = "t".repeat(40);
(crypto.subtle as unknown as { timingSafeEqual: (a: ArrayBuffer, b: ArrayBuffer) => boolean }).timingSafeEqual ??= (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const snap = (generation: number) => JSON.stringify({ schema: SNAPSHOT_SCHEMA, cluster: "home", generation, publishedAt: new Date().toISOString(), nodes: [], services: [] });

function setup() {
  const store = new Map<string, { value: string; metadata: unknown }>();
  let hold: Promise<void> | undefined;
  const kv = {
    async getWithMetadata(key: string) {
      const e = store.get(key);
      const out = { value: e?.value ?? null, metadata: e?.metadata ?? null };
      if (hold) { const h = hold; hold = undefined; await h; } // this request is slow after its read
      return out;
    },
    async get(key: string) { return store.get(key)?.value ?? null; },
    async put(key: string, value: string, opts?: { metadata?: unknown }) { store.set(key, { value, metadata: opts?.metadata ?? null }); },
  };
  let clock = 1_000_000_000_000;
  const config = { clusters: ["home"], install() {}, remove() {}, async publish() {}, async publishHeartbeat() {} };
  const isolate = () => controlApp({ kv: kv as never, config: config as never, tokens: new TokenTable({ pushToken: TOKEN, readToken: undefined, clusterTokens: new Map() }), maxPushBytes: 1 << 20, log: () => {}, status: () => ({}), now: () => clock });
  const apps = [isolate(), isolate()]; // two isolates, one KV
  const call = (method: string, path: string, body?: string, on = 0) =>
    apps[on]!.fetch(new Request(`http://x${path}`, { method, body, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } }));
  return { store, call, advance: (ms: number) => (clock += ms),
    holdNextRead() { let release!: () => void; hold = new Promise((r) => (release = r)); return release; } };
}

it("a DELETE during a heartbeat's KV refresh stays deleted", async () => {
  const t = setup();
  expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
  t.advance(2 * 3_600_000);
  const release = t.holdNextRead();
  const beat = t.call("POST", "/v1/clusters/home/heartbeat", JSON.stringify({ generation: 5 }));
  await new Promise((r) => setTimeout(r, 10));
  expect((await t.call("DELETE", "/v1/clusters/home")).status).toBe(200);
  release();
  await beat;
  expect(parseTombstone(t.store.get(snapshotKey("home"))!.value)).toBeDefined(); // main: generation 5 is back
});

it("a push (another isolate) during a heartbeat's KV refresh is kept", async () => {
  const t = setup();
  expect((await t.call("PUT", "/v1/clusters/home", snap(5))).status).toBe(200);
  t.advance(2 * 3_600_000);
  const release = t.holdNextRead();
  const beat = t.call("POST", "/v1/clusters/home/heartbeat", JSON.stringify({ generation: 5 }));
  await new Promise((r) => setTimeout(r, 10));
  expect((await t.call("PUT", "/v1/clusters/home", snap(6), 1)).status).toBe(200);
  release();
  await beat;
  expect(JSON.parse(t.store.get(snapshotKey("home"))!.value).generation).toBe(6); // main: 5
});
