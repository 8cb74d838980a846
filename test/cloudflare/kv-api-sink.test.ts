// The kv-api sink against the fake Cloudflare API: path, token and body are
// what Cloudflare expects, and failures are classified the way the controller
// needs (retry 429/5xx honouring Retry-After; report 4xx that will not heal).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvApiSink } from "../../sync-agent/sinks/kv-api/index.ts";
import { parseTombstone } from "../../worker/config/stored.ts";
import { SinkError } from "../../sync-agent/sinks/types.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { startFakeCloudflare, type FakeCloudflare } from "./fake-kv-api.ts";

const snapshot = (generation: number): Snapshot => ({
  schema: "edgelb.dev/snapshot/v1",
  cluster: "home",
  generation,
  publishedAt: new Date().toISOString(),
  nodes: [{ name: "n1", address: "127.0.0.1", healthy: true }],
  services: [],
});

let cf: FakeCloudflare;
beforeAll(async () => {
  cf = await startFakeCloudflare({ accountId: "acc123", namespaceId: "ns456", token: "secret-token" });
});
afterAll(() => cf.stop());

const sink = (over: Partial<ConstructorParameters<typeof KvApiSink>[0]> = {}) =>
  new KvApiSink({ accountId: "acc123", namespaceId: "ns456", cluster: "home", apiToken: "secret-token", baseUrl: cf.baseUrl, ...over });

async function failure(p: Promise<unknown>): Promise<SinkError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(SinkError);
  return err as SinkError;
}

describe("kv-api sink", () => {
  it("reads nothing, writes cluster%2Fhome, reads it back", async () => {
    expect(await sink().read()).toEqual({ snapshot: null, generation: 0 });
    const res = await sink().write(snapshot(3));
    expect(res.bytes).toBeGreaterThan(50);
    const put = cf.requests.find((r) => r.method === "PUT")!;
    expect(put.path).toBe("/client/v4/accounts/acc123/storage/kv/namespaces/ns456/values/cluster%2Fhome");
    expect(cf.values.has("cluster/home")).toBe(true);
    const back = await sink().read();
    expect(back.generation).toBe(3);
    expect(back.snapshot?.nodes[0]?.name).toBe("n1");
  });

  it("reports a bad token as fatal with a hint, once per call", async () => {
    const err = await failure(sink({ apiToken: "wrong" }).write(snapshot(4)));
    expect(err.kind).toBe("fatal");
    expect(err.message).toMatch(/403.*Authentication error.*CLOUDFLARE_API_TOKEN/);
  });

  it("reports an unknown namespace as fatal on read", async () => {
    const err = await failure(sink({ namespaceId: "nope" }).read());
    expect(err.kind).toBe("fatal");
    expect(err.message).toMatch(/namespace-id/);
  });

  it("classifies 429 with Retry-After and 5xx as retryable", async () => {
    cf.fail({ status: 429, times: 1, retryAfter: "7" });
    const err = await failure(sink().write(snapshot(5)));
    expect(err.kind).toBe("retryable");
    expect(err.details.retryAfterMs).toBe(7000);
    cf.fail({ status: 502, times: 1 });
    expect((await failure(sink().write(snapshot(5)))).kind).toBe("retryable");
    await sink().write(snapshot(5));
    expect((await sink().read()).generation).toBe(5);
  });

  it("counts an unreachable API as retryable", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await failure(sink({ baseUrl: `http://127.0.0.1:${port}/client/v4`, timeoutMs: 2000 }).write(snapshot(6)));
    expect(err.kind).toBe("retryable");
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("removes the cluster with a deletion tombstone carrying the worker's install epoch, which reads back as deleted", async () => {
    // As the worker's push endpoint stored it: with an install epoch in the metadata.
    cf.values.set("cluster/home", JSON.stringify(snapshot(9)));
    cf.metadata.set("cluster/home", { installEpoch: 1234 });
    await sink().remove();
    const t = parseTombstone(cf.values.get("cluster/home")!);
    expect(t).toMatchObject({ cluster: "home", generation: 10, installEpoch: 1234 });
    expect(await sink().read()).toEqual({ snapshot: null, generation: 10, deleted: true });
    // Again: nothing more is written.
    await sink().remove();
    expect(cf.tombstones).toHaveLength(1);
  });
});
