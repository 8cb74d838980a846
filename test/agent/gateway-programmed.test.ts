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

  it("stays True when a new agent (rollout, failover) finds the edge already holding its snapshot, even while it cannot read the edge yet", async () => {
    await w.stopAgents();
    // Every Programmed pair (Gateway, its listener) the API server stores from here on: no sampling, nothing missed.
    const stored: string[] = [];
    const unsubscribe = w.cluster.store.subscribe((e) => {
      if (e.object.kind !== "Gateway") return;
      const gw = programmed(e.object.status?.conditions);
      const listener = programmed(e.object.status?.listeners?.[0]?.conditions);
      stored.push(`${gw?.status}/${gw?.reason} ${listener?.status}/${listener?.reason}`);
    });
    try {
      // What a loaded machine or a slow Cloudflare API does at a rollout: the new agent's informers
      // sync before it could read the stored snapshot. The flip seen under load came from this window.
      w.cf!.fail({ status: 503, methods: ["GET"] });
      const next = await w.startAgent();
      // A second route: the agent must write the Gateway's status (attachedRoutes 2) inside that window.
      w.cluster.create({ apiVersion: G, kind: "HTTPRoute", metadata: { name: "r2", namespace: "default" }, spec: { parentRefs: [{ name: "gw" }], hostnames: ["b.example.com"], rules: [{ backendRefs: [{ name: "b", port: 8080 }] }] } });
      await waitFor(() => w.cluster.get("Gateway", "gw").status?.listeners?.[0]?.attachedRoutes === 2 || undefined, "the Gateway's status written with the second route", 20_000);
      expect(next.controller.storedKnown, "written before the agent knew what the edge holds").toBe(false);
      w.cf!.clear();
      await w.waitForSnapshot((s) => (s.gateway?.routes.length ?? 0) === 2, "both routes at the edge", 30_000);
      expect(programmed(w.cluster.get("Gateway", "gw").status?.conditions)).toMatchObject({ status: "True", reason: "Programmed" });
    } finally {
      unsubscribe();
      w.cf!.clear();
    }
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.filter((x) => x !== "True/Programmed True/Programmed"), "Programmed must not flip while the edge holds the routes").toEqual([]);
  });
});
