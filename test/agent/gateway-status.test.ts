// Gateway API conformance, cluster side, translated from
// kubernetes-sigs/gateway-api conformance/tests (see docs/gateway.md): the real
// agent (client-node informers) against the simulated cluster writes the
// statuses the spec demands, and the snapshot's gateway section follows.
// Through-the-worker cases live in test/agent/gateway-edge.test.ts.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { logsMatching, startWorld, waitFor, type World } from "./harness.ts";

const G = "gateway.networking.k8s.io/v1";
let w: World;

beforeAll(async () => {
  w = await startWorld({ addressBase: "127.25.2", nodes: 2, sink: "kv-api", config: { gatewayRecheckMs: 100 } });
});
afterAll(async () => {
  await w?.stop();
});

const cond = (conditions: Obj[] | undefined, type: string) => (conditions ?? []).find((c) => c.type === type);
const ours = (route: Obj) => (route.status?.parents ?? []).filter((p: Obj) => p.controllerName === "edgelb.dev/gateway-controller");

/** Waits until the route's (only) edgelb parent entry has these condition statuses/reasons. */
async function routeStatus(name: string, want: Record<string, [string, string]>, namespace = "default"): Promise<Obj> {
  return waitFor(() => {
    const r = w.cluster.tryGet("HTTPRoute", name, namespace);
    const p = r && ours(r)[0];
    if (!p) return undefined;
    const ok = Object.entries(want).every(([type, [status, reason]]) => cond(p.conditions, type)?.status === status && cond(p.conditions, type)?.reason === reason);
    return ok && p.conditions.every((c: Obj) => c.observedGeneration === r.metadata.generation) ? p : undefined;
  }, `HTTPRoute ${namespace}/${name} status ${JSON.stringify(want)}`);
}

function service(name: string, namespace = "default", type = "NodePort"): Obj {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { type, selector: { app: name }, ports: [{ name: "http", port: 8080, targetPort: 8080, protocol: "TCP" }] } };
}

function route(name: string, spec: Obj, namespace = "default"): Obj {
  return { apiVersion: G, kind: "HTTPRoute", metadata: { name, namespace }, spec };
}

describe("Gateway API, cluster side", () => {
  it("runs as before without the CRDs, says so once, and starts watching when they appear", async () => {
    w.cluster.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "gateway-conformance-web-backend" } });
    w.cluster.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "gateway-conformance-app-backend", labels: { edge: "yes" } } });
    await w.agent.synced();
    await waitFor(() => logsMatching(w.logs, /Gateway API CRDs .* not installed: serving LoadBalancer Services only/).length === 1, "the missing-CRDs log line");
    const before = await w.waitForSnapshot((s) => s.nodes.length === 2, "a snapshot");
    expect(before.gateway).toBeUndefined();

    for (const crd of gatewayCrds()) w.cluster.create(crd);
    w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } });
    w.cluster.create({ apiVersion: G, kind: "GatewayClass", metadata: { name: "other" }, spec: { controllerName: "example.com/other" } });
    await waitFor(() => logsMatching(w.logs, /Gateway API found .*the CRDs appeared while running/).length === 1, "the CRDs-found log line");
    // GatewayClassObservedGenerationBump / Accepted.
    const gc = await waitFor(() => {
      const o = w.cluster.get("GatewayClass", "edgelb", "");
      return cond(o.status?.conditions, "Accepted")?.status === "True" ? o : undefined;
    }, "GatewayClass edgelb Accepted");
    expect(cond(gc.status.conditions, "Accepted")).toMatchObject({ reason: "Accepted", observedGeneration: 1 });
    // The lab's CRDs carry bundle-version v1.3.0: supported, and said with Accepted.
    expect(cond(gc.status.conditions, "SupportedVersion")).toMatchObject({ status: "True", reason: "SupportedVersion", observedGeneration: 1, message: expect.stringContaining(`"v1.3.0"`) });
    // Another controller's class keeps the CRD's default status.
    expect(w.cluster.get("GatewayClass", "other", "").status.conditions).toEqual([expect.objectContaining({ type: "Accepted", status: "Unknown", reason: "Pending" })]);
  });

  it("HTTPRouteSimpleSameNamespace, GatewayWithAttachedRoutes: Accepted, ResolvedRefs, attachedRoutes, Programmed; the snapshot carries the route", async () => {
    w.cluster.create(service("infra-backend-v1"));
    w.cluster.create({
      apiVersion: G,
      kind: "Gateway",
      metadata: { name: "same-namespace", namespace: "default" },
      spec: {
        gatewayClassName: "edgelb",
        listeners: [
          { name: "http", port: 80, protocol: "HTTP", allowedRoutes: { namespaces: { from: "Same" } } },
          { name: "https", port: 443, protocol: "HTTPS", hostname: "secure.example.com", tls: { mode: "Terminate", certificateRefs: [{ kind: "Secret", name: "tls-cert" }] } },
        ],
      },
    });
    w.cluster.create(route("gateway-conformance-infra-test", { parentRefs: [{ name: "same-namespace" }], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    await routeStatus("gateway-conformance-infra-test", { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
    const gw = await waitFor(() => {
      const o = w.cluster.get("Gateway", "same-namespace");
      return cond(o.status?.conditions, "Programmed")?.status === "True" && o.status.listeners?.[0]?.attachedRoutes === 1 ? o : undefined;
    }, "Gateway programmed with one attached route");
    expect(cond(gw.status.conditions, "Accepted")).toMatchObject({ status: "True", reason: "Accepted", observedGeneration: 1 });
    const [http, https] = gw.status.listeners;
    expect(http.supportedKinds).toEqual([{ group: "gateway.networking.k8s.io", kind: "HTTPRoute" }]);
    expect(cond(http.conditions, "ResolvedRefs")).toMatchObject({ status: "True" });
    // TLS is terminated by Cloudflare: the listener is programmed, its certificateRefs accepted and ignored, and it says so.
    expect(https.attachedRoutes).toBe(1);
    expect(cond(https.conditions, "Programmed")).toMatchObject({ status: "True" });
    expect(cond(https.conditions, "edgelb.dev/CertificateRefsIgnored")).toMatchObject({ status: "True", reason: "TLSTerminatedByCloudflare", message: expect.stringContaining("tls-cert") });
    expect(gw.status.addresses).toEqual([{ type: "Hostname", value: "secure.example.com" }]);

    const svc = w.cluster.get("Service", "infra-backend-v1");
    const s = await w.waitForSnapshot((x) => (x.gateway?.routes.length ?? 0) === 2, "the route in the snapshot");
    expect(s.gateway!.backends).toEqual([expect.objectContaining({ namespace: "default", name: "infra-backend-v1", port: 8080, nodePort: svc.spec.ports[0].nodePort })]);
    expect(s.gateway!.routes.map((r) => [r.listener, r.hostnames])).toEqual([["http", ["*"]], ["https", ["secure.example.com"]]]);
    // A NodePort-only Service is a Gateway backend, not a LoadBalancer Service.
    expect(s.services).toEqual([]);
  });

  it("HTTPRouteObservedGenerationBump: a spec change is reflected with the new observedGeneration", async () => {
    const name = "gateway-conformance-infra-test";
    w.cluster.patch("HTTPRoute", name, { spec: { rules: [{ matches: [{ path: { type: "PathPrefix", value: "/v2" } }], backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] } });
    expect(w.cluster.get("HTTPRoute", name).metadata.generation).toBe(2);
    const p = await routeStatus(name, { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
    expect(p.conditions.map((c: Obj) => c.observedGeneration)).toEqual([2, 2]);
  });

  it("HTTPRouteInvalidNonExistentBackendRef, HTTPRouteInvalidBackendRefUnknownKind: ResolvedRefs False with the spec's reasons", async () => {
    w.cluster.create(route("nonexistent-backend", { parentRefs: [{ name: "same-namespace" }], rules: [{ backendRefs: [{ name: "nonexistent", port: 8080 }] }] }));
    w.cluster.create(route("unknown-kind", { parentRefs: [{ name: "same-namespace" }], rules: [{ backendRefs: [{ group: "unknown.example.com", kind: "NonExistent", name: "infra-backend-v1", port: 8080 }] }] }));
    await routeStatus("nonexistent-backend", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "BackendNotFound"] });
    await routeStatus("unknown-kind", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "InvalidKind"] });
    // Their share of requests answers 500 at the edge: the snapshot marks them invalid.
    const s = await w.waitForSnapshot((x) => x.gateway!.routes.some((r) => r.name === "unknown-kind"), "invalid backends in the snapshot");
    const rule = s.gateway!.routes.find((r) => r.name === "nonexistent-backend")!.rules[0]!;
    expect(rule.backendRefs).toEqual([{ invalid: expect.stringContaining("not found"), weight: 1 }]);
  });

  it("HTTPRouteServiceTypes (partly): a ClusterIP-only backend gets ResolvedRefs False saying how to fix it, and resolves once it has a NodePort", async () => {
    w.cluster.create(service("cluster-only", "default", "ClusterIP"));
    w.cluster.create(route("cluster-ip-backend", { parentRefs: [{ name: "same-namespace" }], hostnames: ["internal.example.com"], rules: [{ backendRefs: [{ name: "cluster-only", port: 8080 }] }] }));
    const p = await routeStatus("cluster-ip-backend", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "NodePortRequired"] });
    expect(cond(p.conditions, "ResolvedRefs")!.message).toMatch(/no NodePort \(type ClusterIP\).*set spec\.type: NodePort \(or LoadBalancer\)/);
    w.cluster.patch("Service", "cluster-only", { spec: { type: "NodePort" } });
    await routeStatus("cluster-ip-backend", { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
  });

  it("HTTPRouteCrossNamespace, HTTPRouteReferenceGrant, HTTPRouteInvalidCrossNamespaceBackendRef, HTTPRoutePartiallyInvalidViaInvalidReferenceGrant: cross-namespace backends only with a ReferenceGrant", async () => {
    w.cluster.create(service("web-backend", "gateway-conformance-web-backend"));
    w.cluster.create(route("cross-namespace", { parentRefs: [{ name: "same-namespace" }], hostnames: ["cross.example.com"], rules: [{ backendRefs: [{ name: "web-backend", namespace: "gateway-conformance-web-backend", port: 8080 }] }] }));
    await routeStatus("cross-namespace", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "RefNotPermitted"] });
    // A grant for another Service name does not count.
    w.cluster.create({ apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "ReferenceGrant", metadata: { name: "wrong-name", namespace: "gateway-conformance-web-backend" }, spec: { from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "default" }], to: [{ group: "", kind: "Service", name: "not-web-backend" }] } });
    w.cluster.create({ apiVersion: "gateway.networking.k8s.io/v1beta1", kind: "ReferenceGrant", metadata: { name: "reference-grant", namespace: "gateway-conformance-web-backend" }, spec: { from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "default" }], to: [{ group: "", kind: "Service", name: "web-backend" }] } });
    await routeStatus("cross-namespace", { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
    w.cluster.delete("ReferenceGrant", "reference-grant", "gateway-conformance-web-backend");
    await routeStatus("cross-namespace", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "RefNotPermitted"] });
  });

  it("HTTPRouteInvalidReferenceGrant: grants that miss in namespace, from group/kind/namespace or to group/kind/name permit nothing", async () => {
    const grant = (name: string, namespace: string, from: Obj, to: Obj): Obj => ({
      apiVersion: "gateway.networking.k8s.io/v1beta1",
      kind: "ReferenceGrant",
      metadata: { name, namespace },
      spec: { from: [{ group: "gateway.networking.k8s.io", kind: "HTTPRoute", namespace: "default", ...from }], to: [{ group: "", kind: "Service", name: "web-backend", ...to }] },
    });
    const WEB = "gateway-conformance-web-backend";
    for (const g of [
      grant("reference-grant-wrong-namespace", "default", {}, {}),
      grant("reference-grant-wrong-from-group", WEB, { group: "not-the-group-youre-looking-for" }, {}),
      grant("reference-grant-wrong-from-kind", WEB, { kind: "Gateway" }, {}),
      grant("reference-grant-wrong-from-namespace", WEB, { namespace: "not-the-namespace-youre-looking-for" }, {}),
      grant("reference-grant-wrong-to-group", WEB, {}, { group: "not-the-group-youre-looking-for" }),
      grant("reference-grant-wrong-to-kind", WEB, {}, { kind: "Secret" }),
      grant("reference-grant-wrong-to-name", WEB, {}, { kind: "Secret", name: "not-the-service-youre-looking-for" }),
    ]) {
      w.cluster.create(g);
    }
    w.cluster.create(route("reference-grant", { parentRefs: [{ name: "same-namespace" }], rules: [{ backendRefs: [{ name: "web-backend", namespace: WEB, port: 8080 }] }] }));
    const p = await routeStatus("reference-grant", { Accepted: ["True", "Accepted"], ResolvedRefs: ["False", "RefNotPermitted"] });
    expect(cond(p.conditions, "ResolvedRefs")!.message).toContain(`no ReferenceGrant in ${WEB} allows HTTPRoutes from default`);
    // Its requests answer 500: the snapshot carries the backend as invalid, never web-backend's NodePort.
    const s = await w.waitForSnapshot((x) => x.gateway!.routes.some((r) => r.name === "reference-grant"), "the route in the snapshot");
    expect(s.gateway!.routes.find((r) => r.name === "reference-grant")!.rules[0]!.backendRefs).toEqual([{ invalid: expect.stringContaining("no ReferenceGrant"), weight: 1 }]);
  });

  it("HTTPRouteInvalidCrossNamespaceParentRef, HTTPRouteInvalidParentRefNotMatchingSectionName, HTTPRouteInvalidParentRefNotMatchingListenerPort: Accepted False with the spec's reasons", async () => {
    w.cluster.create(route("httproute-listener-not-matching-route-port", { parentRefs: [{ name: "same-namespace", port: 81 }], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    await routeStatus("httproute-listener-not-matching-route-port", { Accepted: ["False", "NoMatchingParent"] });
    w.cluster.create(route("invalid-cross-namespace-parent-ref", { parentRefs: [{ name: "same-namespace", namespace: "default" }], rules: [{ backendRefs: [{ name: "web-backend", port: 8080 }] }] }, "gateway-conformance-web-backend"));
    w.cluster.create(route("section-name-mismatch", { parentRefs: [{ name: "same-namespace", sectionName: "nonexistent" }], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    await routeStatus("invalid-cross-namespace-parent-ref", { Accepted: ["False", "NotAllowedByListeners"] }, "gateway-conformance-web-backend");
    await routeStatus("section-name-mismatch", { Accepted: ["False", "NoMatchingParent"] });
    const s = await w.waitForSnapshot((x) => x.gateway!.routes.some((r) => r.name === "cross-namespace"), "routes");
    expect(s.gateway!.routes.map((r) => r.name)).not.toContain("section-name-mismatch");
  });

  it("GatewayObservedGenerationBump, GatewayClassObservedGenerationBump, GatewayInvalidRouteKind, GatewayListenerUnsupportedProtocol", async () => {
    w.cluster.create({
      apiVersion: G,
      kind: "Gateway",
      metadata: { name: "gateway-observed-generation-bump" },
      spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP", allowedRoutes: { kinds: [{ kind: "NotAKind" }] } }] },
    });
    const first = await waitFor(() => {
      const o = w.cluster.get("Gateway", "gateway-observed-generation-bump");
      return cond(o.status?.conditions, "Accepted")?.observedGeneration === 1 ? o : undefined;
    }, "Gateway status at generation 1");
    expect(first.status.listeners[0].supportedKinds).toEqual([]);
    expect(cond(first.status.listeners[0].conditions, "ResolvedRefs")).toMatchObject({ status: "False", reason: "InvalidRouteKinds" });
    w.cluster.patch("Gateway", "gateway-observed-generation-bump", { spec: { listeners: [{ name: "http", port: 80, protocol: "HTTP" }, { name: "tcp", port: 9000, protocol: "TCP" }] } });
    const second = await waitFor(() => {
      const o = w.cluster.get("Gateway", "gateway-observed-generation-bump");
      return o.metadata.generation === 2 && o.status.conditions.every((c: Obj) => c.observedGeneration === 2) ? o : undefined;
    }, "Gateway status at generation 2");
    expect(cond(second.status.conditions, "Accepted")).toMatchObject({ status: "True", reason: "ListenersNotValid" });
    expect(cond(second.status.listeners[0].conditions, "ResolvedRefs")).toMatchObject({ status: "True" });
    expect(cond(second.status.listeners[1].conditions, "Accepted")).toMatchObject({ status: "False", reason: "UnsupportedProtocol" });
    w.cluster.patch("GatewayClass", "edgelb", { spec: { description: "bumped" } }, { namespace: "" });
    await waitFor(() => cond(w.cluster.get("GatewayClass", "edgelb", "").status.conditions, "Accepted")?.observedGeneration === 2, "GatewayClass observedGeneration 2");
  });

  it.skipIf(!existsSync("/usr/bin/kubectl"))("kubectl get gateway,httproute shows what the agent wrote", async () => {
    const { stdout } = await promisify(execFile)("/usr/bin/kubectl", ["get", "gateway,httproute", "-n", "default"], { env: { ...process.env, KUBECONFIG: w.cluster.kubeconfigPath, HOME: tmpdir() } });
    const rows = stdout.trim().split("\n").map((l) => l.trim().split(/\s{2,}/));
    const [, cls, address, programmed] = rows.find((r) => r[0] === "gateway.gateway.networking.k8s.io/same-namespace")!;
    expect([cls, programmed]).toEqual(["edgelb", "True"]);
    // Listener hostnames first, then the attached routes' hostnames.
    expect(address!.split(",")).toEqual(["secure.example.com", "cross.example.com", "internal.example.com"]);
    expect(rows.find((r) => r[0] === "httproute.gateway.networking.k8s.io/cluster-ip-backend")![1]).toBe(`["internal.example.com"]`);
  });

  it("GatewayInvalidParametersRef, GatewayNameMaximumLength, HTTPRouteNoBackendRefs (status side)", async () => {
    const latest = (name: string) =>
      waitFor(() => {
        const o = w.cluster.tryGet("Gateway", name);
        const c = o?.status?.conditions ?? [];
        return c.length > 0 && c.every((x: Obj) => x.observedGeneration === o!.metadata.generation && x.reason !== "Pending") ? o : undefined;
      }, `Gateway ${name} with the latest conditions`);
    w.cluster.create({
      apiVersion: G,
      kind: "Gateway",
      metadata: { name: "gateway-invalid-parameters-ref" },
      spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP" }], infrastructure: { parametersRef: { group: "invalid.io", kind: "InvalidParameters", name: "invalid" } } },
    });
    const invalid = await latest("gateway-invalid-parameters-ref");
    expect(cond(invalid.status.conditions, "Accepted")).toMatchObject({ status: "False", reason: "InvalidParameters" });
    const long = `gateway-name-maximum-length-${"a".repeat(253 - 28)}`;
    expect(long).toHaveLength(253);
    w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: long }, spec: { gatewayClassName: "edgelb", listeners: [{ name: "http", port: 80, protocol: "HTTP", hostname: "long-name.example.com" }] } });
    expect(cond((await latest(long)).status.conditions, "Programmed")).toMatchObject({ status: "True" });
    // Rules without backendRefs (omitted or empty) are valid; their requests answer 500 at the edge.
    w.cluster.create(route("omitted-backendrefs", { parentRefs: [{ name: "same-namespace" }], rules: [{ matches: [{ path: { type: "Exact", value: "/omitted-no-forward" } }] }, { matches: [{ path: { type: "Exact", value: "/empty-no-forward" } }], backendRefs: [] }] }));
    await routeStatus("omitted-backendrefs", { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
  });

  it("GatewayModifyListeners: an added listener becomes usable, a removed one leaves the status", async () => {
    const https = { name: "https", port: 443, protocol: "HTTPS", hostname: "secure.test.com", allowedRoutes: { namespaces: { from: "All" } }, tls: { certificateRefs: [{ group: "", kind: "Secret", name: "tls-validity-checks-certificate" }] } };
    const http = { name: "http", port: 80, protocol: "HTTP", allowedRoutes: { namespaces: { from: "All" } } };
    w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "gateway-add-listener" }, spec: { gatewayClassName: "edgelb", listeners: [https] } });
    // Upstream's second Gateway reuses secure.test.com and a hostname-less listener: here every Gateway shares
    // one edge, a hostname has one owner (the older Gateway), so this one gets hostnames of its own.
    const httpOwn = { ...http, hostname: "remove.test.com" };
    w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "gateway-remove-listener" }, spec: { gatewayClassName: "edgelb", listeners: [{ ...https, hostname: "secure2.test.com" }, httpOwn] } });
    w.cluster.create(route("http-route-1", { parentRefs: [{ kind: "Gateway", name: "gateway-add-listener", namespace: "default" }], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    w.cluster.create(route("http-route-2", { parentRefs: [{ kind: "Gateway", name: "gateway-remove-listener", namespace: "default" }], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    const listenersOf = (name: string, generation: number, want: string[]) =>
      waitFor(() => {
        const o = w.cluster.get("Gateway", name);
        const ls = o.status?.listeners ?? [];
        const fresh = o.metadata.generation === generation && (o.status?.conditions ?? []).every((c: Obj) => c.observedGeneration === generation);
        const ok = ls.length === want.length && ls.every((l: Obj, i: number) => l.name === want[i] && l.attachedRoutes === 1 && ["Accepted", "ResolvedRefs"].every((t) => cond(l.conditions, t)?.status === "True"));
        return fresh && ok ? ls : undefined;
      }, `Gateway ${name} listeners ${want.join(",")} at generation ${generation}`);
    await listenersOf("gateway-add-listener", 1, ["https"]);
    w.cluster.patch("Gateway", "gateway-add-listener", { spec: { listeners: [https, { ...http, hostname: "data.test.com" }] } });
    const added = await listenersOf("gateway-add-listener", 2, ["https", "http"]);
    expect(added[1].supportedKinds).toEqual([{ group: "gateway.networking.k8s.io", kind: "HTTPRoute" }]);
    await listenersOf("gateway-remove-listener", 1, ["https", "http"]);
    w.cluster.patch("Gateway", "gateway-remove-listener", { spec: { listeners: [httpOwn] } });
    await listenersOf("gateway-remove-listener", 2, ["http"]);
  });

  it("GatewayClass SupportedVersion follows the installed CRDs' bundle-version annotation", async () => {
    const supported = () => cond(w.cluster.get("GatewayClass", "edgelb", "").status?.conditions, "SupportedVersion");
    const annotate = (v: string | null) =>
      w.cluster.patch("CustomResourceDefinition", "httproutes.gateway.networking.k8s.io", { metadata: { annotations: { "gateway.networking.k8s.io/bundle-version": v } } }, { namespace: "" });
    annotate("v2.0.0");
    const off = await waitFor(() => (supported()?.status === "False" ? supported() : undefined), "SupportedVersion False for v2.0.0");
    expect(off).toMatchObject({ reason: "UnsupportedVersion", message: expect.stringMatching(/httproutes\.gateway\.networking\.k8s\.io "v2\.0\.0".*supported: v1\.0\.0 to v1\.\d+\.x/) });
    // Best effort: the class stays Accepted and its routes keep being served.
    expect(cond(w.cluster.get("GatewayClass", "edgelb", "").status.conditions, "Accepted")?.status).toBe("True");
    annotate(null);
    await waitFor(() => (supported()?.message.includes("no bundle-version annotation") ? true : undefined), "SupportedVersion False without the annotation");
    annotate("v1.3.0");
    await waitFor(() => (supported()?.status === "True" ? true : undefined), "SupportedVersion True again");
  });

  it("leaves another controller's Gateway and HTTPRoute parents entry exactly as found", async () => {
    w.cluster.create({ apiVersion: G, kind: "Gateway", metadata: { name: "theirs" }, spec: { gatewayClassName: "other", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] } });
    const theirsBefore = w.cluster.get("Gateway", "theirs");
    w.cluster.create(route("shared", { parentRefs: [{ name: "theirs" }, { name: "same-namespace" }], hostnames: ["shared.example.com"], rules: [{ backendRefs: [{ name: "infra-backend-v1", port: 8080 }] }] }));
    const foreign = { parentRef: { name: "theirs" }, controllerName: "example.com/other", conditions: [{ type: "Accepted", status: "True", reason: "Accepted", message: "theirs", observedGeneration: 1, lastTransitionTime: "2026-01-01T00:00:00Z" }] };
    w.cluster.patch("HTTPRoute", "shared", { status: { parents: [foreign] } }, { status: true });
    const p = await routeStatus("shared", { Accepted: ["True", "Accepted"], ResolvedRefs: ["True", "ResolvedRefs"] });
    expect(p.parentRef).toEqual({ name: "same-namespace" });
    const parents = w.cluster.get("HTTPRoute", "shared").status.parents;
    expect(parents[0]).toEqual(foreign);
    expect(parents).toHaveLength(2);
    // The other controller rewrites its entry meanwhile: ours stays, theirs is theirs.
    const theirsNow = { ...foreign, conditions: [{ ...foreign.conditions[0], message: "rewritten" }] };
    w.cluster.patch("HTTPRoute", "shared", { status: { parents: [theirsNow, ...parents.slice(1)] } }, { status: true });
    w.cluster.patch("HTTPRoute", "shared", { spec: { hostnames: ["shared2.example.com"] } });
    await routeStatus("shared", { Accepted: ["True", "Accepted"] });
    expect(w.cluster.get("HTTPRoute", "shared").status.parents[0]).toEqual(theirsNow);
    expect(w.cluster.get("Gateway", "theirs")).toEqual(theirsBefore);
    // Detached from our Gateway: our entry goes, theirs stays.
    w.cluster.patch("HTTPRoute", "shared", { spec: { parentRefs: [{ name: "theirs" }] } });
    await waitFor(() => ours(w.cluster.get("HTTPRoute", "shared")).length === 0, "our parents entry removed");
    expect(w.cluster.get("HTTPRoute", "shared").status.parents).toEqual([theirsNow]);
  });
});
