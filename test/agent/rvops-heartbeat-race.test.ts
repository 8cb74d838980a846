import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvApiSink } from "../../sync-agent/sinks/kv-api/index.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { lbService, startWorld, waitFor, type World } from "./harness.ts";
let w: World;
beforeAll(async () => { w = await startWorld({ addressBase: "127.76.19", nodes: 1, sink: "kv-api", noAgent: true }); });
afterAll(async () => { await w?.stop(); });
describe("rv-ops: kv-api heartbeat vs push", () => {
  it("a heartbeat in flight never rolls KV back behind a push", async () => {
    const inner = new KvApiSink({ accountId: "acc", namespaceId: "ns", cluster: w.config.cluster, apiToken: w.config.apiToken as string, baseUrl: w.config.cloudflareApiUrl! });
    let slowBeat: ((s: Snapshot) => void) | undefined;
    /** The heartbeat caught in flight: settles once its PUT has landed (or failed). */
    let caught: Promise<unknown> | undefined;
    const sink = Object.assign(Object.create(inner) as KvApiSink, {
      heartbeat: (s: Snapshot, signal?: AbortSignal) => {
        const beat = (async () => {
          await new Promise((r) => setTimeout(r, 1500)); // a slow upload to api.cloudflare.com
          return inner.heartbeat(s, signal);
        })();
        if (slowBeat) caught = beat;
        slowBeat?.(s);
        return beat;
      },
    });
    w.cluster.create(lbService("a", { hostnames: "a.example.com" }));
    const agent = await w.startAgent({ heartbeatMs: 2000 }, { sink });
    await w.waitForSnapshot((s) => s.services.some((x) => x.name === "a"), "a published");
    await new Promise<void>((r) => (slowBeat = () => r()));
    slowBeat = undefined;
    w.cluster.create(lbService("b", { hostnames: "b.example.com" }));
    await waitFor(() => agent.controller.lastPushed?.services.some((x) => x.name === "b"), "b pushed");
    // The heartbeat's PUT lands (waited on, not slept on: a fixed 1.8 s let a slow machine check KV before it, and pass).
    await caught!.catch(() => undefined);
    const stored = JSON.parse(w.cf!.values.get(`cluster/${w.config.cluster}`)!) as Snapshot;
    expect(stored.generation, "KV must hold the newest generation").toBe(agent.controller.lastPushed!.generation);
  });
});
