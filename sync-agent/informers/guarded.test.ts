// The guard around client-node's informer, against the fake API server: it
// restarts after socket errors without looping, backs off while the server is
// down, keeps the last cache meanwhile, and stops for good on stop().
import { CoreV1Api, KubeConfig, type V1Service } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeKubeconfig } from "../../lab/cluster/api/kubeconfig.ts";
import { SERVICES } from "../../lab/cluster/api/resources.ts";
import { ApiServer } from "../../lab/cluster/api/server.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { GuardedInformer } from "./guarded.ts";

let api: ApiServer;
let informer: GuardedInformer<V1Service>;
let changes = 0;

beforeEach(async () => {
  api = await ApiServer.start();
  const kc = new KubeConfig();
  kc.loadFromFile(writeKubeconfig({ server: api.url }));
  const core = kc.makeApiClient(CoreV1Api);
  changes = 0;
  informer = new GuardedInformer<V1Service>({
    resource: "services",
    path: "/api/v1/services",
    list: () => core.listServiceForAllNamespaces(),
    kubeConfig: kc,
    log: pino({ level: "silent" }),
    onChange: () => void changes++,
    backoff: { initialMs: 40, maxMs: 400 },
    resyncMs: 0,
  });
});

afterEach(async () => {
  await informer.stop();
  await api.stop();
});

const svc = (name: string) => ({ metadata: { name }, spec: { type: "LoadBalancer", ports: [{ port: 80 }] } });
const names = () => informer.list().map((s) => s.metadata?.name).sort();

describe("GuardedInformer", () => {
  it("lists, watches, and restarts after a reset without losing events", async () => {
    api.store.create(SERVICES, "default", svc("a"));
    informer.start();
    await informer.waitForSync();
    expect(names()).toContain("a");
    await waitFor(() => api.watchCount === 1, "watch open");
    api.resetWatches();
    api.store.create(SERVICES, "default", svc("b"));
    await waitFor(() => names().includes("b"), "b after the reset");
    expect(informer.restarts).toBe(1);
  });

  it("backs off while the API server is down, serving the last cache, and catches up", async () => {
    api.store.create(SERVICES, "default", svc("a"));
    informer.start();
    await informer.waitForSync();
    await api.stop();
    const t0 = Date.now();
    await waitFor(() => informer.restarts >= 3, "a few failed attempts", 5_000);
    expect(names()).toContain("a"); // last known state
    // Backoff, not a hot loop: 3 attempts take at least 40/2 + 80/2 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
    const attemptsSoFar = informer.restarts;
    api.store.delete(SERVICES, "default", "a");
    await api.listen();
    await waitFor(() => !names().includes("a"), "delete made while down");
    expect(informer.restarts).toBeLessThan(attemptsSoFar + 3);
  });

  it("makes no more requests once stopped", async () => {
    informer.start();
    await informer.waitForSync();
    await waitFor(() => api.watchCount === 1, "watch open");
    api.resetWatches();
    await informer.stop();
    await waitFor(() => api.watchCount === 0, "watch closed");
    const count = api.requests.length;
    // Long enough for several backoff rounds (initial 40 ms).
    const until = Date.now() + 300;
    await waitFor(() => Date.now() >= until, "time to pass", 1_000, 50);
    expect(api.requests.length).toBe(count);
  });
});
