// The real @kubernetes/client-node 1.4 informers against the fake API server:
// list, watch, and every way a watch ends on a real cluster.
import * as k8s from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { kubeconfigYaml } from "../../lab/cluster/api/kubeconfig.ts";
import { SERVICES } from "../../lab/cluster/api/resources.ts";
import { ApiServer, type ApiServerOptions } from "../../lab/cluster/api/server.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

const TOKEN = "informer-test-token";
let api: ApiServer;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
const stops: (() => Promise<void>)[] = [];

async function setup(opts: Partial<ApiServerOptions> = {}) {
  api = await ApiServer.start({ token: TOKEN, anonymous: false, ...opts });
  kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfigYaml({ server: api.url, token: TOKEN }));
  core = kc.makeApiClient(k8s.CoreV1Api);
}
beforeEach(() => setup());

afterEach(async () => {
  for (const s of stops.splice(0)) await s();
  await api.stop();
});

const svc = (name: string, labels: Record<string, string> = {}) => ({
  metadata: { name, labels },
  spec: { type: "LoadBalancer" as const, ports: [{ port: 80 }] },
});

/**
 * client-node 1.4 informers stop for good after a socket error. This is the
 * minimal guard a consumer needs: ignore our own aborts, keep one restart
 * pending, back off. (The production guard lives in sync-agent/.)
 */
function guardedInformer(path: string, list: () => Promise<k8s.V1ServiceList>) {
  const inf = k8s.makeInformer(kc, path, list);
  const errors: unknown[] = [];
  let stopped = false;
  let pending = false;
  let attempt = 0;
  inf.on("error", (err: any) => {
    if (stopped || err?.name === "AbortError" || err?.type === "aborted") return;
    errors.push(err);
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      if (!stopped) void inf.start();
    }, Math.min(20 * 2 ** attempt++, 400));
  });
  inf.on("connect", () => {
    attempt = Math.max(0, attempt - 1);
  });
  stops.push(async () => {
    stopped = true;
    await inf.stop();
  });
  return { inf, errors };
}

const names = (inf: k8s.Informer<k8s.V1Service> & k8s.ObjectCache<k8s.V1Service>) => inf.list().map((s) => s.metadata?.name).sort();
const label = (inf: k8s.ObjectCache<k8s.V1Service>, name: string) => inf.get(name, "default")?.metadata?.labels?.["v"];
const lists = () => api.requests.filter((r) => r.method === "GET" && r.path === "/api/v1/services" && !r.watch).length;
const relabel = (name: string, v: string) =>
  api.store.mutate(SERVICES, "default", name, (o) => {
    o.metadata.labels = { ...o.metadata.labels, v };
  });

describe("client-node informers against the fake API server", () => {
  it("lists existing objects, then sees adds, updates and deletes from the watch", async () => {
    await core.createNamespacedService({ namespace: "default", body: svc("a") });
    await core.createNamespacedService({ namespace: "default", body: svc("b") });
    const { inf } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    const seen: string[] = [];
    inf.on("add", (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on("update", (o) => seen.push(`update ${o.metadata?.name} ${o.metadata?.labels?.["v"]}`));
    inf.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    await inf.start();
    expect(names(inf)).toEqual(["a", "b"]);

    await core.createNamespacedService({ namespace: "default", body: svc("c") });
    await core.patchNamespacedService(
      { namespace: "default", name: "a", body: { metadata: { labels: { v: "2" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedService({ namespace: "default", name: "b" });
    await waitFor(() => seen.length === 5, "5 informer events");
    expect(seen).toEqual(["add a", "add b", "add c", "update a 2", "delete b"]);
    // The informer's objects carry what the server allocated.
    expect(inf.get("c", "default")?.spec?.ports?.[0]?.nodePort).toBeGreaterThanOrEqual(30000);
  });

  it("resumes from its last resourceVersion after a clean watch close, losing nothing", async () => {
    await core.createNamespacedService({ namespace: "default", body: svc("a", { v: "1" }) });
    const { inf, errors } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    await inf.start();
    await waitFor(() => api.watchCount === 1, "the first watch");
    const rvBefore = inf.get("a", "default")?.metadata?.resourceVersion;

    expect(api.closeWatches()).toBe(1);
    relabel("a", "2"); // lands while no watch is open
    await waitFor(() => label(inf, "a") === "2", "the update made during the gap");
    expect(errors).toEqual([]);
    expect(lists()).toBe(1); // no relist: it re-watched from where it was
    expect(api.requests.some((r) => r.watch && r.query.includes(`resourceVersion=${rvBefore}`))).toBe(true);
  });

  it("reports a reset watch socket as an error; a guarded restart resumes without losing the update", async () => {
    await core.createNamespacedService({ namespace: "default", body: svc("a", { v: "1" }) });
    const { inf, errors } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    await inf.start();
    await waitFor(() => api.watchCount === 1, "the first watch");

    expect(api.resetWatches()).toBe(1);
    relabel("a", "2");
    await waitFor(() => label(inf, "a") === "2", "the update made while the socket was gone");
    expect(errors.length).toBeGreaterThanOrEqual(1);
    await waitFor(() => api.watchCount === 1, "the restarted watch");
  });

  it("relists after 410 Expired (compacted history) and notices objects deleted meanwhile", async () => {
    await core.createNamespacedService({ namespace: "default", body: svc("a", { v: "1" }) });
    await core.createNamespacedService({ namespace: "default", body: svc("gone") });
    const { inf } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    const deleted: string[] = [];
    inf.on("delete", (o) => deleted.push(o.metadata!.name!));
    await inf.start();
    await waitFor(() => api.watchCount === 1, "the first watch");

    api.closeWatches();
    relabel("a", "2");
    api.store.delete(SERVICES, "default", "gone");
    api.compact(); // the informer's resourceVersion is now too old
    await waitFor(() => label(inf, "a") === "2", "the update after relisting");
    expect(deleted).toEqual(["gone"]);
    expect(lists()).toBe(2); // the 410 ERROR event made it list again
  });

  it("re-watches without relisting when the server times a watch out (--min-request-timeout)", async () => {
    await api.stop();
    await setup({ minRequestTimeoutSeconds: 0.1 });
    await core.createNamespacedService({ namespace: "default", body: svc("a", { v: "1" }) });
    const { inf, errors } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    await inf.start();
    await waitFor(() => api.requests.filter((r) => r.watch).length >= 3, "two server-side watch timeouts");
    relabel("a", "2");
    await waitFor(() => label(inf, "a") === "2", "the update");
    expect(errors).toEqual([]);
    expect(lists()).toBe(1);
    // client-node authenticates every request with the kubeconfig's token.
    expect(api.requests.every((r) => r.auth === "bearer")).toBe(true);
  });

  it("comes back after the API server restarts on the same port, with the update made while it was down", async () => {
    await core.createNamespacedService({ namespace: "default", body: svc("a", { v: "1" }) });
    const { inf, errors } = guardedInformer("/api/v1/services", () => core.listServiceForAllNamespaces());
    await inf.start();
    await waitFor(() => api.watchCount === 1, "the first watch");
    const url = api.url;

    await api.stop();
    relabel("a", "2");
    await waitFor(() => errors.length >= 2, "failed restarts while the server is down");
    await api.listen();
    expect(api.url).toBe(url);
    await waitFor(() => label(inf, "a") === "2", "the update made while the server was down");
    await waitFor(() => api.watchCount === 1, "a watch on the restarted server");
  });
});
