// The status plan: only what differs is patched; lastTransitionTime moves only
// when a condition's status does; other controllers' HTTPRoute entries and
// Gateways of other classes are never in a patch.
import { describe, expect, it } from "vitest";
import { mergeConditions, planGatewayStatus } from "./status.ts";
import { resolveGateway } from "./resolve.ts";
import type { GatewayCaches } from "./types.ts";

const T0 = "2026-01-01T00:00:00Z";
const T1 = "2026-02-02T00:00:00Z";

function world(): GatewayCaches & { services: any[]; namespaces: any[] } {
  return {
    gatewayClasses: [
      { metadata: { name: "edgelb", generation: 1, resourceVersion: "1" }, spec: { controllerName: "edgelb.dev/gateway-controller" } },
      { metadata: { name: "other", generation: 1, resourceVersion: "2" }, spec: { controllerName: "example.com/other" } },
    ],
    gateways: [
      { metadata: { name: "edge", namespace: "d", generation: 1, resourceVersion: "3" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } },
      { metadata: { name: "theirs", namespace: "d", generation: 1, resourceVersion: "4" }, spec: { gatewayClassName: "other", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } },
    ],
    httpRoutes: [
      {
        metadata: { name: "r", namespace: "d", generation: 1, resourceVersion: "5", creationTimestamp: T0 as unknown as Date },
        spec: { parentRefs: [{ name: "theirs" }, { name: "edge" }], rules: [{ backendRefs: [{ name: "s", port: 80 }] }] },
        status: { parents: [{ parentRef: { name: "theirs" }, controllerName: "example.com/other", conditions: [{ type: "Accepted", status: "True", reason: "Accepted", message: "", lastTransitionTime: T0 }] }] },
      },
    ],
    referenceGrants: [],
    services: [{ metadata: { name: "s", namespace: "d" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 30001, protocol: "TCP" }] } }],
    namespaces: [],
  };
}

describe("gateway status plan", () => {
  it("keeps lastTransitionTime while a condition's status holds, moves it when it flips, keeps other types", () => {
    const cur = [
      { type: "Accepted", status: "True" as const, reason: "Accepted", message: "", lastTransitionTime: T0 },
      { type: "example.com/Custom", status: "True" as const, reason: "X", message: "", lastTransitionTime: T0 },
    ];
    const same = mergeConditions(cur, [{ type: "Accepted", status: "True", reason: "Accepted", message: "new text" }], T1);
    expect(same).toEqual([{ ...cur[0], message: "new text" }, cur[1]]);
    const flipped = mergeConditions(cur, [{ type: "Accepted", status: "False", reason: "Invalid", message: "" }], T1);
    expect(flipped[0]!.lastTransitionTime).toBe(T1);
  });

  it("patches ours only, copies the other controller's entry as found, and converges to no patch", () => {
    const w = world();
    const patches = planGatewayStatus(resolveGateway(w), w, T1);
    expect(patches.map((p) => p.key)).toEqual(["GatewayClass edgelb", "Gateway d/edge", "HTTPRoute d/r"]);
    const route = patches.find((p) => p.plural === "httproutes")!;
    expect(route.resourceVersion).toBe("5");
    const parents = route.status.parents as any[];
    expect(parents[0]).toBe(w.httpRoutes[0]!.status!.parents![0]);
    expect(parents[1]).toMatchObject({ parentRef: { name: "edge" }, controllerName: "edgelb.dev/gateway-controller" });

    // Apply the patches to the cache: the next plan is empty (no write loop).
    for (const p of patches) {
      const list = p.plural === "gatewayclasses" ? w.gatewayClasses : p.plural === "gateways" ? w.gateways : w.httpRoutes;
      const o = list.find((x) => x.metadata?.name === p.name) as any;
      o.status = { ...o.status, ...p.status };
    }
    expect(planGatewayStatus(resolveGateway(w), w, "2026-03-03T00:00:00Z")).toEqual([]);
  });

  it("Programmed is True only when the edge has the snapshot: False, Pending, with the push error, otherwise", () => {
    const w = world();
    const res = resolveGateway(w);
    const gatewayOf = (edge?: { confirmed: boolean; error?: string }) => planGatewayStatus(res, w, T1, undefined, edge).find((p) => p.plural === "gateways")!.status as any;
    const programmed = (c: any[]) => c.find((x) => x.type === "Programmed");
    const refused = gatewayOf({ confirmed: false, error: "Cloudflare API PUT answered 401" });
    expect(programmed(refused.conditions)).toMatchObject({ status: "False", reason: "Pending", message: "waiting for the edge to accept the snapshot: Cloudflare API PUT answered 401" });
    expect(programmed(refused.listeners[0].conditions)).toMatchObject({ status: "False", reason: "Pending" });
    expect(refused.conditions.find((x: any) => x.type === "Accepted")).toMatchObject({ status: "True" });
    expect(programmed(gatewayOf({ confirmed: true }).conditions)).toMatchObject({ status: "True", reason: "Programmed" });
    // Unknown edge state (callers that do not track it): as resolved.
    expect(programmed(gatewayOf().conditions)).toMatchObject({ status: "True" });
  });
  it("an edge not read yet (new agent, new leader) leaves a Programmed True as found, and says why otherwise", () => {
    const w = world();
    const res = resolveGateway(w);
    const programmed = (c: any[] | undefined) => c?.find((x) => x.type === "Programmed");
    const unknown = { confirmed: false, unknown: true, error: "cannot read what the edge holds: HTTP 503" };
    // Nothing found (a new Gateway): False, Pending, with why.
    const fresh = planGatewayStatus(res, w, T1, undefined, unknown).find((p) => p.plural === "gateways")!.status as any;
    expect(programmed(fresh.conditions)).toMatchObject({ status: "False", reason: "Pending", message: "waiting for the edge to accept the snapshot: cannot read what the edge holds: HTTP 503" });
    // The previous leader's True stays, Gateway and listener: no patch at all once the rest is as found.
    const confirmed = planGatewayStatus(res, w, T0, undefined, { confirmed: true }).find((p) => p.plural === "gateways")!.status as any;
    w.gateways[0]!.status = confirmed;
    expect(planGatewayStatus(res, w, T1, undefined, unknown).filter((p) => p.plural === "gateways")).toEqual([]);
    // The listener keeps its own True even if the Gateway's was lost (each is left as found).
    w.gateways[0]!.status = { ...confirmed, conditions: confirmed.conditions.filter((c: any) => c.type !== "Programmed") };
    const partial = planGatewayStatus(res, w, T1, undefined, unknown).find((p) => p.plural === "gateways")!.status as any;
    expect(programmed(partial.conditions)).toMatchObject({ status: "False", reason: "Pending" });
    expect(programmed(partial.listeners[0].conditions)).toMatchObject({ status: "True", lastTransitionTime: T0 });
  });
});
