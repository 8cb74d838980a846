// The lab's Gateway example (lab/demo/gateway.ts, created by `npm start`):
// through the agent and the real worker, shop.localhost splits by path and
// canary.localhost by weight; both routes report Accepted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedGatewayDemo } from "../../lab/demo/gateway.ts";
import { startWorld, waitFor, type World } from "../agent/harness.ts";
import { haveKubectl, kubectlFor } from "./kubectl-env.ts";

let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.25.4", nodes: 2, sink: "worker", noAgent: true });
  seedGatewayDemo(w.cluster);
  seedGatewayDemo(w.cluster); // idempotent: a second run creates nothing and throws nothing
  await w.startAgent();
});
afterAll(async () => {
  await w?.stop();
});

const serviceOf = (port: number) => w.cluster.list("Service").find((s) => s.spec.ports?.[0]?.nodePort === port)?.metadata.name;
interface Echo {
  port?: number;
  pod?: string;
  version?: string;
}
async function echo(host: string, path: string): Promise<Echo & { status: number }> {
  const res = await w.request(host, path);
  return { status: res.status, ...((await res.json().catch(() => ({}))) as Echo) };
}
async function who(host: string, path: string): Promise<string> {
  const body = await echo(host, path);
  return body.port ? (serviceOf(body.port) ?? "?") : `status ${body.status}`;
}

describe("the lab's Gateway example", () => {
  it("splits shop.localhost by path and canary.localhost by weight", async () => {
    await waitFor(async () => (await who("shop.localhost", "/api/cart")) === "shop-api", "shop.localhost/api served", 10_000, 50);
    expect(await who("shop.localhost", "/")).toBe("shop-web");
    const seen = new Map<string, number>();
    // 90/10 over 200 requests: P(no app-v2 at all) ≈ 7e-10, P(app-v1 outside 150..199) is as small.
    for (let i = 0; i < 200; i++) {
      const s = await who("canary.localhost", "/");
      seen.set(s, (seen.get(s) ?? 0) + 1);
    }
    expect((seen.get("app-v1") ?? 0) + (seen.get("app-v2") ?? 0)).toBe(200);
    expect(seen.get("app-v2") ?? 0).toBeGreaterThanOrEqual(1);
    expect(seen.get("app-v1") ?? 0).toBeGreaterThanOrEqual(150);
    expect(seen.get("app-v1") ?? 0).toBeLessThanOrEqual(199);
    for (const name of ["shop", "canary"]) {
      await waitFor(() => w.cluster.get("HTTPRoute", name).status?.parents?.[0]?.conditions?.find((c: any) => c.type === "Accepted")?.status === "True", `${name} Accepted`);
    }
  });

  it("every backend is a Deployment: answers name the pod and its version (the canary shows v1 and v2), kubectl lists their EndpointSlices and logs", async () => {
    for (const name of ["shop-web", "shop-api", "app-v1", "app-v2"]) {
      expect(w.cluster.get("Service", name).spec.selector).toEqual({ app: name });
      await waitFor(() => (w.cluster.get("Deployment", name).status?.availableReplicas ?? 0) >= 1, `${name} available`);
    }
    const api = await echo("shop.localhost", "/api/cart");
    expect(api.pod).toMatch(/^shop-api-[a-z0-9]+-[a-z0-9]{5}$/);
    expect(api.version).toBe("1");
    expect((await echo("shop.localhost", "/")).pod).toMatch(/^shop-web-/);
    const versions = new Map<string, Set<string>>();
    for (let i = 0; i < 200; i++) {
      const e = await echo("canary.localhost", "/");
      const pods = versions.get(e.version ?? `status ${e.status}`) ?? new Set<string>();
      pods.add(e.pod ?? "-");
      versions.set(e.version ?? `status ${e.status}`, pods);
    }
    expect([...versions.keys()].sort()).toEqual(["1", "2"]);
    for (const pod of versions.get("2")!) expect(pod).toMatch(/^app-v2-/);
    for (const pod of versions.get("1")!) expect(pod).toMatch(/^app-v1-/);
    if (!haveKubectl) return;
    const kubectl = kubectlFor(w.cluster.kubeconfigPath);
    try {
      const slices = await kubectl("get", "endpointslices", "-n", "default");
      for (const name of ["shop-web", "shop-api", "app-v1", "app-v2"]) expect(slices).toMatch(new RegExp(`^${name}-\\S+\\s+IPv4\\s+8080\\s+\\d`, "m"));
      // The canary's v2 pods served some of the requests above, and say so.
      const logs = await kubectl("logs", "deploy/app-v2", "-n", "default");
      expect(logs).toMatch(/GET \/ 200 host=canary\.localhost/);
    } finally {
      kubectl.cleanup();
    }
  });

  it.skipIf(!haveKubectl)("stock kubectl shows the statuses the agent wrote: class Accepted, Gateway Programmed with its hostnames, routes' hostnames", async () => {
    const kubectl = kubectlFor(w.cluster.kubeconfigPath);
    try {
      const rows = async () => (await kubectl("get", "gatewayclass,gateway,httproute", "-A")).trim().split("\n").map((l) => l.trim().split(/\s{2,}/));
      const row = (all: string[][], name: string) => all.find((r) => r.includes(name));
      // Wait on what kubectl prints (the agent writes status after the first push).
      const all = await waitFor(async () => {
        const r = await rows();
        const gw = row(r, "gateway.gateway.networking.k8s.io/demo");
        return row(r, "gatewayclass.gateway.networking.k8s.io/edgelb")?.[2] === "True" && gw?.[4] === "True" && gw[3]!.includes("canary.localhost") ? r : undefined;
      }, "kubectl showing the written statuses", 15_000, 100);
      expect(all[0]).toEqual(["NAME", "CONTROLLER", "ACCEPTED", "AGE"]);
      expect(row(all, "gatewayclass.gateway.networking.k8s.io/edgelb")!.slice(1, 3)).toEqual(["edgelb.dev/gateway-controller", "True"]);
      const header = all.findIndex((r) => r.includes("CLASS"));
      expect(all[header]).toEqual(["NAMESPACE", "NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]);
      // ADDRESS: the exact hostnames of the routes attached to the listener (it has none of its own).
      expect(row(all, "gateway.gateway.networking.k8s.io/demo")!.slice(2, 5)).toEqual(["edgelb", "canary.localhost,shop.localhost", "True"]);
      expect(row(all, "httproute.gateway.networking.k8s.io/shop")![2]).toBe(`["shop.localhost"]`);
      expect(row(all, "httproute.gateway.networking.k8s.io/canary")![2]).toBe(`["canary.localhost"]`);
      // The per-parent conditions (no printer column) through describe.
      const described = await kubectl("describe", "httproute", "shop", "-n", w.cluster.get("HTTPRoute", "shop").metadata.namespace);
      expect(described).toMatch(/Controller Name:\s+edgelb\.dev\/gateway-controller/);
      expect(described).toMatch(/Reason:\s+ResolvedRefs/);
    } finally {
      kubectl.cleanup();
    }
  });
});
