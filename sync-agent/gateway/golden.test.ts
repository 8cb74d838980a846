// Golden files for the Gateway API resolution: each testdata/<case>.yaml is a
// cluster (GatewayClasses, Gateways, HTTPRoutes, ReferenceGrants, Services,
// Namespaces, plus a TestEndpoints document for Local backends) and
// testdata/<case>.golden what the agent computes from it: the snapshot's
// gateway section (checked against the worker's schema) and every status.
// UPDATE_GOLDEN=1 npx vitest run --project node sync-agent/gateway rewrites them.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml, type V1Namespace, type V1Service } from "@kubernetes/client-node";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { GatewaySection } from "../../worker/snapshot/gateway.ts";
import { resolveGateway } from "./resolve.ts";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata");
const cases = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));

export function resolveFixture(yamlText: string) {
  const docs = loadAllYaml(yamlText).filter(Boolean) as { kind: string; [k: string]: any }[];
  const of = (kind: string) => docs.filter((d) => d.kind === kind) as any[];
  const endpoints = (docs.find((d) => d.kind === "TestEndpoints") ?? {}) as Record<string, any>;
  return resolveGateway({
    gatewayClasses: of("GatewayClass"),
    gateways: of("Gateway"),
    httpRoutes: of("HTTPRoute"),
    referenceGrants: of("ReferenceGrant"),
    services: of("Service") as V1Service[],
    namespaces: of("Namespace") as V1Namespace[],
    endpointsFor: (ns, name) => endpoints[`${ns}/${name}`],
    // TestEndpoints lists a Cluster backend with [] when none of its pods serves.
    noEndpoint: (svc) => endpoints[`${svc.metadata?.namespace}/${svc.metadata?.name}`]?.length === 0,
  });
}

function compute(yamlText: string): unknown {
  const r = resolveFixture(yamlText);
  const valid = v.safeParse(GatewaySection, r.section);
  if (!valid.success) throw new Error(`the worker would refuse this gateway section: ${valid.issues.map((i) => `${v.getDotPath(i)}: ${i.message}`).join("; ")}`);
  const sorted = <T>(m: Map<string, T>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
  return { section: r.section, gatewayClasses: sorted(r.classes), gateways: sorted(r.gateways), httpRoutes: sorted(r.routes), localBackends: r.localBackends };
}

describe("gateway golden files", () => {
  for (const name of cases) {
    it(name, () => {
      const got = JSON.stringify(compute(readFileSync(path.join(DIR, `${name}.yaml`), "utf8")), null, 2) + "\n";
      const goldenPath = path.join(DIR, `${name}.golden`);
      if (process.env.UPDATE_GOLDEN === "1") writeFileSync(goldenPath, got);
      if (!existsSync(goldenPath)) throw new Error(`${goldenPath} is missing: review the output and run with UPDATE_GOLDEN=1`);
      expect(got).toBe(readFileSync(goldenPath, "utf8"));
    });
  }
});
