// The agent's caps on what it publishes for the edge (sync-agent/gateway/caps.ts),
// end to end: the real agent (client-node informers) against the simulated
// cluster. A newer route that would go over a cap is refused with a status
// that says why and a log line; the routes already served keep serving.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { MAX_REGEX_PATHS_PER_KEY } from "../../worker/snapshot/regex-key.ts";
import { logsMatching, startWorld, waitFor, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
const HOST = "caps.example.com";
// A ceiling, not a wait: 65 regex routes make each of the agent's passes heavy, and on 2 busy cores (two test
// files at a time) a status write took over waitFor's default 5 s.
const SETTLE_MS = 30_000;
let w: World;

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.65.1", nodes: 1, sink: "kv-api", config: { gatewayRecheckMs: 100 } });
  for (const crd of gatewayCrds()) w.cluster.create(crd);
  w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
  w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "caps", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP", hostname: HOST }] } });
  w.cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "default" }, spec: { type: "NodePort", selector: { app: "web" }, ports: [{ port: 8080, targetPort: 8080, protocol: "TCP" }] } });
});
afterAll(async () => {
  await w?.stop();
});

const regexRoute = (name: string, pattern: string): Obj => ({
  apiVersion: G,
  kind: "HTTPRoute",
  metadata: { name, namespace: "default" },
  spec: { parentRefs: [{ name: "caps" }], rules: [{ matches: [{ path: { type: "RegularExpression", value: pattern } }], backendRefs: [{ name: "web", port: 8080 }] }] },
});

function accepted(name: string): Obj | undefined {
  const r = w.cluster.tryGet("HTTPRoute", name, "default");
  const p = (r?.status?.parents ?? []).find((x: Obj) => x.controllerName === "edgelb.dev/gateway-controller");
  return (p?.conditions ?? []).find((c: Obj) => c.type === "Accepted");
}

describe("agent-side caps on regex routes per hostname", () => {
  it(`serves ${MAX_REGEX_PATHS_PER_KEY} unindexable regex routes on one hostname and refuses a newer one with a status, a log line and the last good routes kept`, async () => {
    for (let i = 0; i < MAX_REGEX_PATHS_PER_KEY; i++) w.cluster.create(regexRoute(`old-${String(i).padStart(2, "0")}`, `/[a-z]+-${i}(/.*)?`));
    await w.waitForSnapshot((s) => (s.gateway?.routes.length ?? 0) === MAX_REGEX_PATHS_PER_KEY, "every regex route published", SETTLE_MS);
    // The newest (and, within one second of creationTimestamp, last by name): it is the one refused; older routes keep their place.
    w.cluster.create(regexRoute("z-newest", "/[a-z]+-new"));
    const cond = await waitFor(() => {
      const c = accepted("z-newest");
      return c?.status === "False" ? c : undefined;
    }, "the newest route refused", SETTLE_MS);
    expect(cond).toMatchObject({ reason: "UnsupportedValue", message: expect.stringContaining(`hostname ${HOST} would have ${MAX_REGEX_PATHS_PER_KEY + 1} distinct RegularExpression path patterns`) });
    expect(accepted("old-00")).toMatchObject({ status: "True" });
    const s = await w.waitForSnapshot((x) => (x.gateway?.refused ?? []).some((r) => r.name === "z-newest"), "the refusal in the snapshot", SETTLE_MS);
    expect(s.gateway!.routes.map((r) => r.name)).not.toContain("z-newest");
    expect(s.gateway!.routes).toHaveLength(MAX_REGEX_PATHS_PER_KEY);
    expect(s.gateway!.refused).toEqual([{ namespace: "default", name: "z-newest", gateway: "default/caps", reason: expect.stringMatching(/^UnsupportedValue: not served: hostname caps\.example\.com would have 65/) }]);
    const lines = logsMatching(w.logs, /HTTPRoute default\/z-newest \(Gateway default\/caps\) not published/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: "gateway.route_capped", route: "default/z-newest", gateway: "default/caps" });

    // A pattern with a literal segment is indexed at the edge: it fits beside them.
    w.cluster.create(regexRoute("keyed", "(/v[0-9]+)?/tenant-a/.*"));
    await waitFor(() => accepted("keyed")?.status === "True" || undefined, "the keyed regex route accepted", SETTLE_MS);
    // Making room lets the refused route in, and the log says so.
    w.cluster.delete("HTTPRoute", "old-63", "default");
    await waitFor(() => accepted("z-newest")?.status === "True" || undefined, "the refused route accepted once there is room", SETTLE_MS);
    await waitFor(() => logsMatching(w.logs, /HTTPRoute default\/z-newest \(Gateway default\/caps\) fits the edge's tables again/).length === 1 || undefined, "the log line", SETTLE_MS);
  });
});
