// The Gateway API kinds validated like a real cluster validates a CRD with a
// structural schema: stock kubectl (validation on, its default) is refused a
// misspelt field on an HTTPRoute instead of storing a route that silently
// became a catch-all; `kubectl explain` describes the fields; the CRDs carry
// their openAPIV3Schema.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewayCrds } from "../../lab/cluster/api/gateway.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { haveKubectl, kubectlFor, type Kubectl } from "./kubectl-env.ts";

let cluster: SimCluster;
let kubectl: Kubectl;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, addressBase: "127.73.16", firstHost: 11, healthzPort: 0 });
  kubectl = kubectlFor(cluster.kubeconfigPath);
});
afterAll(async () => {
  kubectl?.cleanup();
  await cluster?.stop();
});

const route = (spec: string[]) =>
  [
    "apiVersion: gateway.networking.k8s.io/v1",
    "kind: HTTPRoute",
    "metadata: {name: shop, namespace: default}",
    "spec:",
    "  parentRefs: [{name: edge}]",
    ...spec,
    "",
  ].join("\n");
const good = route(["  hostnames: [shop.localhost]", "  rules:", "  - matches: [{path: {type: PathPrefix, value: /api}}]", "    backendRefs: [{name: api, port: 80}]"]);

describe.skipIf(!haveKubectl)("Gateway API kinds: OpenAPI v3 and strict validation for stock kubectl", () => {
  it("kubectl apply (validation on) installs the CRDs with their schemas", async () => {
    const crds = join(kubectl.dir, "crds");
    mkdirSync(crds);
    for (const crd of gatewayCrds()) writeFileSync(join(crds, `${crd.metadata.name}.json`), JSON.stringify(crd));
    expect(await kubectl("apply", "-f", crds)).toContain("customresourcedefinition.apiextensions.k8s.io/httproutes.gateway.networking.k8s.io created");
    const crd = JSON.parse(await kubectl("get", "crd", "httproutes.gateway.networking.k8s.io", "-o", "json"));
    const v1 = crd.spec.versions.find((v: any) => v.name === "v1");
    expect(Object.keys(v1.schema.openAPIV3Schema.properties.spec.properties)).toEqual(expect.arrayContaining(["parentRefs", "hostnames", "rules"]));
  }, 60_000);

  it("refuses a misspelt field on an HTTPRoute (spec.hostnamez, spec.rule, matchs) instead of storing a catch-all route", async () => {
    const file = join(kubectl.dir, "route.yaml");
    writeFileSync(file, route(["  hostnamez: [shop.localhost]"]));
    expect(await kubectl.fails("apply", "-f", file)).toContain('unknown field "spec.hostnamez"');
    writeFileSync(file, route(["  hostnames: [shop.localhost]", "  rule:", "  - backendRefs: [{name: api, port: 80}]"]));
    expect(await kubectl.fails("apply", "--validate=strict", "-f", file)).toContain('unknown field "spec.rule"');
    writeFileSync(file, route(["  hostnames: [shop.localhost]", "  rules:", "  - matchs: [{path: {value: /api}}]", "    backendRefs: [{name: api, port: 80}]"]));
    expect(await kubectl.fails("apply", "--validate=strict", "-f", file)).toContain('unknown field "spec.rules[0].matchs"');
    expect(await kubectl.fails("get", "httproute", "shop")).toContain("NotFound");

    // Spelt right, it applies; applied again kubectl computes a JSON merge patch (custom resources take no strategic one) without its openapi warning.
    writeFileSync(file, good);
    expect(await kubectl("apply", "-f", file)).toContain("httproute.gateway.networking.k8s.io/shop created");
    const again = await kubectl.both("apply", "-f", file);
    // ("configured", not "unchanged", as on a real cluster: the server defaulted weight: 1 into the rules list.)
    expect(again.stdout).toMatch(/httproute.gateway.networking.k8s.io\/shop (configured|unchanged)/);
    expect(again.stderr).not.toContain("error calculating patch");
    expect(cluster.get("HTTPRoute", "shop").spec.hostnames).toEqual(["shop.localhost"]);

    // --validate=warn: the server drops the unknown field and says so; the stored route never carries it.
    writeFileSync(file, good.replace("hostnames:", "hostnamez:"));
    const warned = await kubectl.both("apply", "--validate=warn", "-f", file);
    expect(warned.stderr).toContain('unknown field "spec.hostnamez"');
    expect(cluster.get("HTTPRoute", "shop").spec.hostnamez).toBeUndefined();
  }, 60_000);

  it("kubectl explain describes httproute.spec.rules, its matches and gateway.spec.listeners", async () => {
    const rules = await kubectl("explain", "httproute.spec.rules");
    expect(rules).toContain("GROUP:      gateway.networking.k8s.io");
    expect(rules).toMatch(/backendRefs\s+<\[\]Object>/);
    expect(rules).toMatch(/matches\s+<\[\]Object>/);
    const path = await kubectl("explain", "httproute.spec.rules.matches.path");
    expect(path).toMatch(/type\s+<string>/);
    expect(path).toContain("PathPrefix");
    expect(await kubectl("explain", "httproute.spec")).toMatch(/hostnames\s+<\[\]string>/);
    const listeners = await kubectl("explain", "gateway.spec.listeners");
    expect(listeners).toMatch(/port\s+<integer> -required-/);
    expect(listeners).toMatch(/allowedRoutes\s+<Object>/);
    expect(await kubectl("explain", "referencegrant.spec")).toMatch(/from\s+<\[\]Object> -required-/);
  }, 60_000);
});
