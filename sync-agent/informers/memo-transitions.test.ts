// The serving memo (scale-to-zero) follows what was evaluated, also after a re-list
// or a Local → Cluster switch: the pod that comes back is evaluated (reviewer rv-ops #1).
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { writeKubeconfig } from "../../lab/cluster/api/kubeconfig.ts";
import { ENDPOINT_SLICES, SERVICES } from "../../lab/cluster/api/resources.ts";
import { ApiServer } from "../../lab/cluster/api/server.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { ClusterInformers } from "./index.ts";

let api: ApiServer;
let informers: ClusterInformers;
let changes: string[];
async function start() {
  api = await ApiServer.start({ host: "127.73.16.1", port: 0 });
  const kc = new KubeConfig();
  kc.loadFromFile(writeKubeconfig({ server: api.url }));
  changes = [];
  informers = new ClusterInformers({ kubeConfig: kc, log: pino({ level: "silent" }), onChange: (r) => void changes.push(r), backoff: { initialMs: 40, maxMs: 400 }, resyncMs: 0 });
  informers.start();
  await informers.waitForSync();
}
afterEach(async () => { await informers?.stop(); await api?.stop(); });
const endpoints = (...ips: string[]) => ips.map((ip) => ({ addresses: [ip], conditions: { ready: true }, nodeName: "node-0" }));
const sliceChanges = () => changes.filter((c) => c.startsWith("endpointslices")).length;
async function setSlice(ips: string[], what: string) {
  const stored = api.store.update(ENDPOINT_SLICES, "default", "web-x", { ...api.store.get(ENDPOINT_SLICES, "default", "web-x"), endpoints: endpoints(...ips) });
  await waitFor(() => informers.endpointSlices.get("web-x", "default")?.metadata?.resourceVersion === stored.metadata.resourceVersion, what);
}
async function setPolicy(policy: "Local" | "Cluster") {
  const stored = api.store.update(SERVICES, "default", "web", { ...api.store.get(SERVICES, "default", "web"), spec: { ...(api.store.get(SERVICES, "default", "web").spec as object), externalTrafficPolicy: policy } });
  await waitFor(() => informers.services.get("web", "default")?.metadata?.resourceVersion === stored.metadata.resourceVersion, policy);
}
async function webServing() {
  api.store.create(SERVICES, "default", { metadata: { name: "web" }, spec: { type: "LoadBalancer", selector: { app: "web" }, ports: [{ port: 80 }] } });
  api.store.create(ENDPOINT_SLICES, "default", { metadata: { name: "web-x", namespace: "default", labels: { "kubernetes.io/service-name": "web" } }, addressType: "IPv4", endpoints: endpoints("10.244.0.1") });
  await waitFor(() => informers.endpointSlices.list().length === 1 && informers.services.get("web", "default"), "cached");
  await setSlice(["10.244.0.2"], "memo primed: web serves");
}
describe("rv-ops: the serving memo after transitions it did not see", () => {
  it("scaled to 0 during a watch outage (re-list), then back to 1: the way back is evaluated", async () => {
    await start();
    await webServing();
    await api.stop();
    api.store.update(ENDPOINT_SLICES, "default", "web-x", { ...api.store.get(ENDPOINT_SLICES, "default", "web-x"), endpoints: [] });
    api.compact();
    await api.listen();
    await waitFor(() => (informers.endpointSlices.get("web-x", "default")?.endpoints ?? []).length === 0, "re-listed: web has no endpoint");
    const before = sliceChanges();
    await setSlice(["10.244.0.3"], "scaled back to 1");
    expect(sliceChanges(), "a ready pod again must be evaluated, else the edge keeps answering 503").toBe(before + 1);
  });
  it("scaled to 0 while the Service was Local, then Cluster again, then back to 1: the way back is evaluated", async () => {
    await start();
    await webServing();
    await setPolicy("Local");
    await setSlice([], "scaled to 0 (Local: evaluated, memo not updated)");
    await setPolicy("Cluster");
    const before = sliceChanges();
    await setSlice(["10.244.0.3"], "scaled back to 1");
    expect(sliceChanges(), "a ready pod again must be evaluated, else the edge keeps answering 503").toBe(before + 1);
  });
});
describe("rv-ops: endpoint churn behind Services edgelb does not serve", () => {
  it("a ClusterIP Service (selector) going 1 -> 0 -> 1 pods evaluates nothing", async () => {
    await start();
    api.store.create(SERVICES, "default", { metadata: { name: "web" }, spec: { type: "ClusterIP", selector: { app: "web" }, ports: [{ port: 80 }] } });
    api.store.create(ENDPOINT_SLICES, "default", { metadata: { name: "web-x", namespace: "default", labels: { "kubernetes.io/service-name": "web" } }, addressType: "IPv4", endpoints: endpoints("10.244.0.1") });
    await waitFor(() => informers.endpointSlices.list().length === 1 && informers.services.get("web", "default"), "cached");
    const before = sliceChanges();
    await setSlice(["10.244.0.2"], "pod replaced");
    await setSlice([], "scaled to 0");
    await setSlice(["10.244.0.3"], "back");
    await setSlice([], "0 again");
    expect(sliceChanges(), "slices of a Service that is not a LoadBalancer (nor a Gateway backend) cannot change the snapshot").toBe(before);
  });
});
