import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvApiSink } from "../../sync-agent/sinks/kv-api/index.ts";
import { startFakeCloudflare, type FakeCloudflare } from "./fake-kv-api.ts";
let cf: FakeCloudflare;
beforeAll(async () => { cf = await startFakeCloudflare({ accountId: "acc123", namespaceId: "ns456", token: "secret-token" }); });
afterAll(() => cf.stop());
describe("rv-ops: kv-api cleanup", () => {
  it("refuses an unknown namespace instead of removing nothing silently", async () => {
    const wrong = new KvApiSink({ accountId: "acc123", namespaceId: "typo", cluster: "home", apiToken: "secret-token", baseUrl: cf.baseUrl });
    await expect(wrong.remove()).rejects.toThrow(/namespace/);
  });
  it("with the right namespace and nothing stored, there is nothing to remove", async () => {
    const right = new KvApiSink({ accountId: "acc123", namespaceId: "ns456", cluster: "nobody", apiToken: "secret-token", baseUrl: cf.baseUrl });
    await expect(right.remove()).resolves.toBeUndefined();
  });
});
