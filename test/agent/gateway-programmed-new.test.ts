// A Gateway created while no agent ran (rv-ops s7 finding 6): the restarted agent finds this
// cluster's older Gateway routes stored. The new Gateway must not be Programmed True before its
// routes reach the edge (here every push is refused), and the old one must stay True meanwhile.
// Loopback 127.116.2.0/24 (this file's own).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { startWorld, waitFor, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
let w: World;
beforeAll(async () => {
  w = await startWorld({ addressBase: "127.116.2", nodes: 1, sink: "kv-api", noAgent: true, config: { gatewayRecheckMs: 100 } });
  for (const crd of gatewayCrds()) w.cluster.create(crd);
  w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
  w.cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "b", namespace: "default" }, spec: { type: "NodePort", selector: { app: "b" }, ports: [{ port: 8080, targetPort: 8080, protocol: "TCP" }] } });
  w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "gw", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } });
  w.cluster.create({ apiVersion: G, kind: "HTTPRoute", metadata: { name: "r", namespace: "default" }, spec: { parentRefs: [{ name: "gw" }], hostnames: ["a.example.com"], rules: [{ backendRefs: [{ name: "b", port: 8080 }] }] } });
});
afterAll(async () => {
  await w?.stop();
});

const programmed = (kind: string, name: string) => (w.cluster.get(kind, name).status?.conditions ?? []).find((c: Obj) => c.type === "Programmed");

describe("a new Gateway at a restarted agent", () => {
  it("is not Programmed True while its routes never reached the edge; the old one stays True", async () => {
    await w.startAgent();
    await w.waitForSnapshot((s) => (s.gateway?.routes.length ?? 0) === 1, "gw's route at the edge");
    await waitFor(() => programmed("Gateway", "gw")?.status === "True" || undefined, "gw Programmed True", 20_000);
    await w.stopAgents();
    // While no agent runs: a second Gateway and its route; then every push is refused (reads work).
    w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "gw2", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } });
    w.cluster.create({ apiVersion: G, kind: "HTTPRoute", metadata: { name: "r2", namespace: "default" }, spec: { parentRefs: [{ name: "gw2" }], hostnames: ["c.example.com"], rules: [{ backendRefs: [{ name: "b", port: 8080 }] }] } });
    w.cf!.fail({ status: 503, methods: ["PUT"] });
    try {
      const next = await w.startAgent();
      // A refused push is known (and said in gw2's status) once the agent has read the edge and tried.
      await waitFor(() => /HTTP 503|503/.test(programmed("Gateway", "gw2")?.message ?? "") || undefined, "gw2 Pending with the push error", 30_000);
      expect(next.controller.writes).toBe(0);
      expect((await w.stored())?.gateway?.routes.length, "the edge still has only gw's route").toBe(1);
      expect(programmed("Gateway", "gw2"), "gw2's routes never reached the edge").toMatchObject({ status: "False", reason: "Pending" });
      expect(programmed("Gateway", "gw")?.status, "gw's route is at the edge").toBe("True");
      w.cf!.clear();
      await w.waitForSnapshot((s) => (s.gateway?.routes.length ?? 0) === 2, "both routes at the edge", 30_000);
      await waitFor(() => programmed("Gateway", "gw2")?.status === "True" || undefined, "gw2 Programmed True once its route is at the edge", 20_000);
    } finally {
      w.cf!.clear();
    }
  });
});
