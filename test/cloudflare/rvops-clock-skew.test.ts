import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvApiSink } from "../../sync-agent/sinks/kv-api/index.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { startFakeCloudflare, type FakeCloudflare } from "./fake-kv-api.ts";
let cf: FakeCloudflare;
beforeAll(async () => { cf = await startFakeCloudflare({ accountId: "acc123", namespaceId: "ns456", token: "secret-token" }); });
afterAll(() => cf.stop());
const snapshot: Snapshot = { schema: "edgelb.dev/snapshot/v1", cluster: "home", generation: 1, publishedAt: new Date().toISOString(), nodes: [{ name: "n1", address: "127.0.0.1", healthy: true }], services: [] };
describe("rv-ops: kv-api agent clock skew", () => {
  it("warns once when the agent's clock is minutes off Cloudflare's Date header", async () => {
    const told: number[] = [];
    const sink = new KvApiSink({ accountId: "acc123", namespaceId: "ns456", cluster: "home", apiToken: "secret-token", baseUrl: cf.baseUrl, now: () => Date.now() - 180_000, onClockSkew: (s) => told.push(s) });
    await sink.write(snapshot);
    await sink.heartbeat(snapshot);
    expect(told.length).toBe(1);
    expect(told[0]!).toBeLessThan(-150_000);
  });
  it("says nothing when the clocks agree", async () => {
    const told: number[] = [];
    const sink = new KvApiSink({ accountId: "acc123", namespaceId: "ns456", cluster: "home", apiToken: "secret-token", baseUrl: cf.baseUrl, onClockSkew: (s) => told.push(s) });
    await sink.write(snapshot);
    expect(told).toEqual([]);
  });
});
