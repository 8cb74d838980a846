// The simulated cluster's Gateway API: served only once its CRDs exist (as on a
// real cluster), in discovery for kubectl and client-node, printed with the
// upstream CRDs' columns, generation bumped by spec changes only.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";

const KUBECTL = "/usr/bin/kubectl";
const haveKubectl = existsSync(KUBECTL);
const run = promisify(execFile);
let cluster: SimCluster;
let dir: string;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, addressBase: "127.25.1", firstHost: 11, healthzPort: 0 });
  dir = mkdtempSync(join(tmpdir(), "edgelb-gwapi-"));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, KUBECONFIG: cluster.kubeconfigPath, KUBECACHEDIR: join(dir, "cache"), HOME: dir });
const kubectl = async (...args: string[]) => (await run(KUBECTL, args, { env: env(), timeout: 20_000 })).stdout;
const kubectlFails = (...args: string[]) =>
  run(KUBECTL, args, { env: env(), timeout: 20_000 }).then(
    () => "unexpectedly succeeded",
    (e: any) => String(e.stderr),
  );
const table = (out: string) =>
  out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s{2,}/));
const getJson = async (path: string) => {
  const res = await fetch(`${cluster.api.url}${path}`, { headers: { Authorization: `Bearer ${cluster.token}` } });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
};

const gateway = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name: "edge", namespace: "default" },
  spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] },
};

describe("Gateway API kinds in the simulated cluster", () => {
  it("serves nothing of gateway.networking.k8s.io before the CRDs exist", async () => {
    const groups = (await getJson("/apis")).body.groups.map((g: any) => g.name);
    expect(groups).not.toContain("gateway.networking.k8s.io");
    expect((await getJson("/apis/gateway.networking.k8s.io/v1/gateways")).status).toBe(404);
    expect((await getJson("/apis/gateway.networking.k8s.io/v1")).status).toBe(404);
    if (haveKubectl) expect(await kubectlFails("get", "gateway")).toContain(`the server doesn't have a resource type "gateway"`);
  });

  it("serves v1 kinds and v1beta1 ReferenceGrant once the CRDs are applied (client-node and kubectl)", async () => {
    const file = join(dir, "crds.json");
    writeFileSync(file, JSON.stringify({ apiVersion: "v1", kind: "List", items: gatewayCrds() }));
    if (haveKubectl) expect(await kubectl("apply", "--validate=false", "-f", file)).toContain("customresourcedefinition.apiextensions.k8s.io/gateways.gateway.networking.k8s.io created");
    else for (const crd of gatewayCrds()) cluster.create(crd);

    const group = (await getJson("/apis/gateway.networking.k8s.io")).body;
    expect(group.versions.map((v: any) => v.version)).toEqual(["v1", "v1beta1"]);
    expect(group.preferredVersion.version).toBe("v1");
    const v1 = (await getJson("/apis/gateway.networking.k8s.io/v1")).body.resources.map((r: any) => r.name);
    expect(v1).toEqual(expect.arrayContaining(["gatewayclasses", "gatewayclasses/status", "gateways", "gateways/status", "httproutes", "httproutes/status", "referencegrants"]));
    const v1beta1 = (await getJson("/apis/gateway.networking.k8s.io/v1beta1")).body.resources.map((r: any) => r.name);
    expect(v1beta1).toEqual(["referencegrants"]);

    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    const api = kc.makeApiClient(CustomObjectsApi);
    await api.createNamespacedCustomObject({ group: "gateway.networking.k8s.io", version: "v1", namespace: "default", plural: "gateways", body: gateway });
    const list = await api.listClusterCustomObject({ group: "gateway.networking.k8s.io", version: "v1", plural: "gateways" });
    expect(list.items.map((g: any) => g.metadata.name)).toEqual(["edge"]);
    // The CRD's defaults: a controller has not looked yet; listeners admit routes of their own namespace.
    expect(list.items[0].status.conditions.map((c: any) => [c.type, c.status, c.reason])).toEqual([
      ["Accepted", "Unknown", "Pending"],
      ["Programmed", "Unknown", "Pending"],
    ]);
    expect(list.items[0].spec.listeners[0].allowedRoutes).toEqual({ namespaces: { from: "Same" } });
    const grant = await api.createNamespacedCustomObject({
      group: "gateway.networking.k8s.io",
      version: "v1beta1",
      namespace: "default",
      plural: "referencegrants",
      body: { apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "ReferenceGrant", metadata: { name: "g" }, spec: { from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "apps" }], to: [{ group: "", kind: "Service" }] } },
    });
    expect(grant.metadata.uid).toBeTruthy();
  });

  it("bumps generation on spec changes only, and refuses a Gateway without listeners", async () => {
    const before = cluster.get("Gateway", "edge");
    cluster.patch("Gateway", "edge", { status: { conditions: [{ type: "Accepted", status: "True", reason: "Accepted", message: "", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 1 }] } }, { status: true });
    expect(cluster.get("Gateway", "edge").metadata.generation).toBe(before.metadata.generation);
    cluster.patch("Gateway", "edge", { spec: { listeners: [{ name: "http", port: 8080, protocol: "HTTP" }] } });
    expect(cluster.get("Gateway", "edge").metadata.generation).toBe(before.metadata.generation + 1);
    expect(() => cluster.create({ ...gateway, metadata: { name: "empty", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [] } })).toThrow(/spec.listeners/);
  });

  it.skipIf(!haveKubectl)("prints gatewayclass, gateway, httproute and referencegrant like upstream", async () => {
    cluster.create({ apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller", description: "the edge" } });
    cluster.create({ apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", metadata: { name: "web", namespace: "default" }, spec: { hostnames: ["web.example.com"], parentRefs: [{ name: "edge" }] } });
    cluster.patch("Gateway", "edge", {
      status: {
        addresses: [{ type: "Hostname", value: "web.example.com" }],
        conditions: [{ type: "Programmed", status: "True", reason: "Programmed", message: "", lastTransitionTime: "2026-01-01T00:00:00Z", observedGeneration: 2 }],
      },
    }, { status: true });
    const rows = table(await kubectl("get", "gatewayclass,gateway,httproute,referencegrant"));
    const header = (first: string) => rows.findIndex((r) => r[0] === "NAME" && r[1] === first);
    expect(rows[header("CONTROLLER")]).toEqual(["NAME", "CONTROLLER", "ACCEPTED", "AGE"]);
    expect(rows[header("CONTROLLER") + 1]!.slice(0, 3)).toEqual(["gatewayclass.gateway.networking.k8s.io/edgelb", "edgelb.dev/gateway-controller", "Unknown"]);
    expect(rows[header("CLASS")]).toEqual(["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]);
    expect(rows[header("CLASS") + 1]!.slice(0, 4)).toEqual(["gateway.gateway.networking.k8s.io/edge", "edgelb", "web.example.com", "True"]);
    expect(rows[header("HOSTNAMES")]).toEqual(["NAME", "HOSTNAMES", "AGE"]);
    expect(rows[header("HOSTNAMES") + 1]!.slice(0, 2)).toEqual(["httproute.gateway.networking.k8s.io/web", `["web.example.com"]`]);
    expect(rows.some((r) => r[0] === "referencegrant.gateway.networking.k8s.io/g")).toBe(true);
    expect(table(await kubectl("get", "gc", "-o", "wide"))[0]).toEqual(["NAME", "CONTROLLER", "ACCEPTED", "AGE", "DESCRIPTION"]);
  });

  it("stops serving a kind when its CRD is deleted", async () => {
    cluster.delete("CustomResourceDefinition", "httproutes.gateway.networking.k8s.io", "");
    expect((await getJson("/apis/gateway.networking.k8s.io/v1/httproutes")).status).toBe(404);
    const v1 = (await getJson("/apis/gateway.networking.k8s.io/v1")).body.resources.map((r: any) => r.name);
    expect(v1).not.toContain("httproutes");
  });
});
