// Gateway `Programmed` says whether the edge has the routes: while every push
// is refused (here a wrong Cloudflare API token) the Gateway and its listeners
// are Programmed False, Pending, with the error; once an agent gets through,
// True.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { startWorld, waitFor, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.64.2", nodes: 1, sink: "kv-api", noAgent: true, config: { gatewayRecheckMs: 100 } });
  for (const crd of gatewayCrds()) w.cluster.create(crd);
  w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
  w.cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "b", namespace: "default" }, spec: { type: "NodePort", selector: { app: "b" }, ports: [{ port: 8080, targetPort: 8080, protocol: "TCP" }] } });
  w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "gw", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } });
  w.cluster.create({ apiVersion: G, kind: "HTTPRoute", metadata: { name: "r", namespace: "default" }, spec: { parentRefs: [{ name: "gw" }], hostnames: ["a.example.com"], rules: [{ backendRefs: [{ name: "b", port: 8080 }] }] } });
});
afterAll(async () => {
  await w?.stop();
});

const programmed = (conditions: Obj[] | undefined) => (conditions ?? []).find((c) => c.type === "Programmed");

describe("Gateway Programmed follows the edge", () => {
  it("False, Pending, with why, while the edge refuses; True once a push gets through", async () => {
    const refused = await w.startAgent({ apiToken: "wrong-token-wrong-token" });
    const gw = await waitFor(() => {
      const o = w.cluster.get("Gateway", "gw");
      return programmed(o.status?.conditions)?.status === "False" ? o : undefined;
    }, "Programmed False");
    expect(programmed(gw.status.conditions)).toMatchObject({ status: "False", message: expect.stringMatching(/^waiting for the edge to accept the snapshot/) });
    expect(programmed(gw.status.listeners[0].conditions)).toMatchObject({ status: "False", reason: "Pending" });
    expect(await w.stored()).toBeNull();
    await refused.stop();

    await w.startAgent();
    await w.waitForSnapshot((s) => (s.gateway?.routes.length ?? 0) === 1, "the route at the edge");
    const ok = await waitFor(() => {
      const o = w.cluster.get("Gateway", "gw");
      return programmed(o.status?.conditions)?.status === "True" ? o : undefined;
    }, "Programmed True");
    expect(programmed(ok.status.conditions)).toMatchObject({ reason: "Programmed" });
    expect(programmed(ok.status.listeners[0].conditions)).toMatchObject({ status: "True" });
  });

  it("stays True when a new agent (rollout, failover) finds the edge already holding its snapshot", async () => {
    await w.stopAgents();
    const next = await w.startAgent(); // nothing changed: it reads the stored snapshot and pushes nothing
    await waitFor(() => (next.controller.lastDesired ? true : undefined), "the new agent's first evaluation");
    // Sampled for a while after it: the flip showed as False/Pending from the first evaluation on, and stayed.
    const seen: string[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const c = programmed(w.cluster.get("Gateway", "gw").status?.conditions);
      seen.push(`${c?.status}/${c?.reason}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.filter((x) => x !== "True/Programmed"), "Programmed must not flip while the edge holds the routes").toEqual([]);
  });
});
