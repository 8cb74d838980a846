// An agent that must not write to the cluster writes no Gateway API status:
// `--dry-run` (the agent's own check), and a replica whose citizen config has
// writeStatus false (what `--dry-run` sets there; checked separately). Counted on the simulated API server's request log: every PATCH, PUT
// or POST under gateway.networking.k8s.io. A normal agent then writes, so the
// count is shown to see writes when there are some.
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import { createAgent } from "../../sync-agent/agent.ts";
import { attachCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { startWorld, waitFor, type LogLine, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
let w: World;

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.64.1", nodes: 1, sink: "kv-api", noAgent: true, config: { gatewayRecheckMs: 100 } });
  for (const crd of gatewayCrds()) w.cluster.create(crd);
  w.cluster.create({ apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "default" }, spec: { type: "NodePort", selector: { app: "web" }, ports: [{ port: 8080, targetPort: 8080, protocol: "TCP" }] } });
  w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
  w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "edge", namespace: "default" }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } });
  w.cluster.create({ apiVersion: G, kind: "HTTPRoute", metadata: { name: "web", namespace: "default" }, spec: { parentRefs: [{ name: "edge" }], hostnames: ["one.example.com"], rules: [{ backendRefs: [{ name: "web", port: 8080 }] }] } });
});
afterAll(async () => {
  await w?.stop();
});

/** Writes to Gateway API objects (their status included) the API server has seen. */
const gatewayWrites = () => w.cluster.api.requests.filter((r) => ["PATCH", "PUT", "POST"].includes(r.method) && r.path.startsWith("/apis/gateway.networking.k8s.io/"));
const hostnamesIn = (s: Snapshot | undefined) => s?.gateway?.routes.flatMap((r) => r.hostnames) ?? [];
const accepted = (kind: string, name: string, ns = "default") => w.cluster.get(kind, name, ns).status?.conditions?.find((c: { type: string }) => c.type === "Accepted")?.status;
const routeParents = () => w.cluster.get("HTTPRoute", "web").status?.parents ?? [];

describe("an agent that must not write writes no Gateway API status", () => {
  it("--dry-run: it resolves the routes (printed snapshot) and writes nothing", async () => {
    const printed: Snapshot[] = [];
    const agent = await w.startAgent({ dryRun: true }, { printDryRun: (s) => void printed.push(s) });
    await waitFor(() => hostnamesIn(printed.at(-1)).includes("one.example.com") || undefined, "a dry-run snapshot with the route");
    // A change is evaluated too (the status writer would have had two chances).
    w.cluster.patch("HTTPRoute", "web", { spec: { hostnames: ["two.example.com"] } });
    await waitFor(() => hostnamesIn(printed.at(-1)).includes("two.example.com") || undefined, "a dry-run snapshot with the change");
    await agent.stop();
    expect(gatewayWrites()).toEqual([]);
    expect([accepted("GatewayClass", "edgelb", ""), accepted("Gateway", "edge"), routeParents()]).toEqual(["Unknown", "Unknown", []]);
  });

  it("writeStatus false (citizen): it pushes the routes to the edge and writes nothing to the cluster", async () => {
    const logs: LogLine[] = [];
    const agent = createAgent(w.config, { log: pino({ level: "debug" }, { write: (l: string) => void logs.push(JSON.parse(l) as LogLine) }) });
    const citizen = attachCitizen(agent, { ...CITIZEN_DEFAULTS, leaderElect: false, writeStatus: false, metricsAddress: "127.64.1.100:0" });
    await citizen.start();
    await agent.start();
    try {
      await w.waitForSnapshot((s) => hostnamesIn(s).includes("two.example.com"), "the route at the edge");
      w.cluster.patch("HTTPRoute", "web", { spec: { hostnames: ["three.example.com"] } });
      await w.waitForSnapshot((s) => hostnamesIn(s).includes("three.example.com"), "the change at the edge");
    } finally {
      await citizen.stop();
      await agent.stop();
    }
    expect(gatewayWrites()).toEqual([]);
    expect(routeParents()).toEqual([]);
  });

  it("a normal agent then writes the statuses, through the /status subresource only", async () => {
    await w.startAgent();
    await waitFor(() => (accepted("GatewayClass", "edgelb", "") === "True" && accepted("Gateway", "edge") === "True" && routeParents().length === 1) || undefined, "statuses written");
    const writes = gatewayWrites();
    expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual(
      expect.arrayContaining([
        "PATCH /apis/gateway.networking.k8s.io/v1/gatewayclasses/edgelb/status",
        "PATCH /apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/edge/status",
        "PATCH /apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/web/status",
      ]),
    );
    expect(writes.every((r) => r.method === "PATCH" && r.path.endsWith("/status"))).toBe(true);
  });
});
