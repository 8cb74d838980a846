// A Cluster-policy Service behind a Deployment, with the real client-node
// informers against the simulated cluster and the real worker: a rolling
// update (many EndpointSlice changes, one pod always serving) writes
// nothing; scaling to 0 writes once and the edge answers 503; scaling back
// writes once and it serves again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { contentKey } from "../../sync-agent/model/diff.ts";
import { NO_ENDPOINT_HOLD_MS } from "../../sync-agent/model/no-endpoint-hold.ts";
import { lbService, startWorld, waitFor, type World } from "./harness.ts";

// This suite's own loopback /24 (e16's 127.63.0.0/16).
let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.63.1", sink: "worker", nodes: 3, clusterOptions: { podStartupMs: 100, podDrainMs: 300 } });
  // Writes that changed the shop Service's entry (a node's health may change under load: not this test's subject).
  w.agent.controller.addHooks({
    onPushed: (_s, diff) => {
      if (diff.servicesChanged.includes("default/shop")) shopWrites++;
      if (diff.servicesChanged.includes("default/blink")) blinkWrites++;
    },
  });
});
let shopWrites = 0;
let blinkWrites = 0;
afterAll(async () => {
  await w?.stop();
});

const HOST = "shop.example.com";
const deployment = (replicas: number, name = "shop"): Obj => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace: "default" },
  spec: {
    replicas,
    strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "echo", image: "edgelb/echo:1", ports: [{ containerPort: 8080 }] }] } },
  },
});
const livePods = () => w.cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "shop");
/** Every pod of the template now, ready, and no old one left (terminating ones included). */
const rolledOut = (replicas: number, restartedAt?: string) => {
  const pods = livePods();
  return (
    pods.length === replicas &&
    pods.every((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: Obj) => c.type === "Ready" && c.status === "True")) &&
    pods.every((p) => restartedAt === undefined || p.metadata.annotations?.["kubectl.kubernetes.io/restartedAt"] === restartedAt)
  );
};
const shopOf = (s: { services: { name: string; endpoints?: unknown[] | undefined }[] }) => s.services.find((x) => x.name === "shop");

describe("scale to 0 behind a Cluster-policy Service", () => {
  it("a rolling update writes nothing; 0 replicas publish no endpoint and the edge answers 503; back up serves again", async () => {
    w.cluster.create(deployment(2));
    w.cluster.create(lbService("shop", { hostnames: HOST }));
    await waitFor(() => rolledOut(2), "two ready shop pods", 20_000);
    await w.waitForSnapshot((s) => shopOf(s) !== undefined && shopOf(s)!.endpoints === undefined, "shop served through every node");
    await waitFor(async () => (await w.request(HOST)).status === 200, "shop answering 200", 10_000);
    await w.cluster.settled();
    const writes = shopWrites;
    const churn = () => w.agent.informers.updates().endpointslices!.irrelevant;
    const churnBefore = churn();

    // kubectl rollout restart: every pod replaced, one at a time.
    const at = new Date().toISOString();
    w.cluster.patch("Deployment", "shop", { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": at } } } } });
    await waitFor(() => rolledOut(2, at), "the rollout to finish", 30_000);
    await w.cluster.settled();
    // Evaluated after the last change, and nothing waiting to be written: the churn wrote nothing.
    const evaluations = w.agent.controller.evaluations;
    w.agent.controller.markDirty("test: settle");
    await waitFor(() => w.agent.controller.evaluations > evaluations, "one more evaluation");
    expect(contentKey(w.agent.controller.lastDesired!.body)).toBe(contentKey(w.agent.controller.lastPushed!));
    expect(shopWrites).toBe(writes);
    // The rollout did change the slice many times (each cached without an evaluation).
    expect(churn() - churnBefore).toBeGreaterThanOrEqual(4);

    // kubectl scale --replicas=0.
    w.cluster.patch("Deployment", "shop", { spec: { replicas: 0 } });
    await waitFor(() => livePods().length === 0, "no shop pod at all", 20_000);
    const gone = Date.now();
    await w.waitForSnapshot((s) => shopOf(s)?.endpoints?.length === 0, "shop published with no endpoint", 20_000 + NO_ENDPOINT_HOLD_MS);
    // Not before the hold (the agent's evaluation that saw the last pod go may come a moment after this test saw it).
    expect(Date.now() - gone).toBeGreaterThanOrEqual(NO_ENDPOINT_HOLD_MS - 1_000);
    const res = await w.request(HOST);
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/^edgelb: no server is ready for this site \(request [^)]+\)\n$/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(shopWrites).toBe(writes + 1);
    expect(w.logs.some((l) => /service default\/shop has no ready endpoint/.test(l.msg))).toBe(true);

    // And back.
    w.cluster.patch("Deployment", "shop", { spec: { replicas: 2 } });
    await w.waitForSnapshot((s) => shopOf(s) !== undefined && shopOf(s)!.endpoints === undefined, "shop served again", 20_000);
    await waitFor(async () => (await w.request(HOST)).status === 200, "shop answering 200 again", 10_000);
    expect(shopWrites).toBe(writes + 2);
    expect(w.logs.some((l) => /service default\/shop has ready endpoints again/.test(l.msg))).toBe(true);
  }, 90_000);

  it("a one-replica app that loses its only pod and gets one back, again and again, costs no write (each loss within the hold)", async () => {
    const BLINK = "blink.example.com";
    const pods = () => w.cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === "blink");
    const ready = () => pods().filter((p) => !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: Obj) => c.type === "Ready" && c.status === "True")).length;
    const blinkOf = (s: { services: { name: string; endpoints?: unknown[] | undefined }[] }) => s.services.find((x) => x.name === "blink");
    w.cluster.create(deployment(1, "blink"));
    w.cluster.create(lbService("blink", { hostnames: BLINK }));
    await w.waitForSnapshot((s) => blinkOf(s) !== undefined && blinkOf(s)!.endpoints === undefined, "blink served through every node");
    const writes = blinkWrites;
    const logsBefore = w.logs.length;

    // Its only pod goes (nothing ready, nothing serving) and comes back, three times: each gap is shorter than the hold.
    for (let i = 0; i < 3; i++) {
      w.cluster.patch("Deployment", "blink", { spec: { replicas: 0 } });
      await waitFor(() => pods().length === 0, "no blink pod at all", 20_000);
      w.cluster.patch("Deployment", "blink", { spec: { replicas: 1 } });
      await waitFor(() => ready() === 1, "a ready blink pod", 20_000);
    }
    await w.cluster.settled();
    const evaluations = w.agent.controller.evaluations;
    w.agent.controller.markDirty("test: settle");
    await waitFor(() => w.agent.controller.evaluations > evaluations, "one more evaluation");
    expect(blinkWrites).toBe(writes);
    expect(w.logs.slice(logsBefore).some((l) => /service default\/blink has no ready endpoint/.test(l.msg))).toBe(false);

    // (A scale to 0 after a quiet while is published after the base hold: the test above.)
  }, 120_000);
});
