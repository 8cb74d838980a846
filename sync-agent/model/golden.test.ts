// Golden files, MetalLB style: each testdata/<case>.yaml is a cluster (Nodes,
// Services, EndpointSlices, plus TestOptions/TestHealth documents) and
// testdata/<case>.golden the snapshot and verdicts the agent computes from it.
// UPDATE_GOLDEN=1 npx vitest run --project node sync-agent/model rewrites them.
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadAllYaml, type V1EndpointSlice, type V1Namespace, type V1Node, type V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { validateSnapshot } from "../../worker/snapshot/schema.ts";
import { buildSnapshot, computeTopology, healthTargets, type HealthView } from "./desired.ts";
import { DEFAULT_ADDRESS_PREFERENCE, type AddressFamily, type AddressType } from "./node.ts";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata");
const cases = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).map((f) => f.replace(/\.yaml$/, ""));

function compute(yamlText: string): unknown {
  const docs = loadAllYaml(yamlText).filter(Boolean) as { kind: string; [k: string]: unknown }[];
  const opts = (docs.find((d) => d.kind === "TestOptions") ?? {}) as Record<string, unknown>;
  const health = (docs.find((d) => d.kind === "TestHealth") ?? {}) as {
    nodes?: Record<string, boolean>;
    local?: Record<string, boolean>;
  };
  const state = {
    nodes: docs.filter((d) => d.kind === "Node") as unknown as V1Node[],
    services: docs.filter((d) => d.kind === "Service") as unknown as V1Service[],
    endpointSlices: docs.filter((d) => d.kind === "EndpointSlice") as unknown as V1EndpointSlice[],
    namespaces: docs.filter((d) => d.kind === "Namespace") as unknown as V1Namespace[],
    // A case's EndpointSlices are the whole truth unless it says the cache has not listed yet.
    endpointSlicesSynced: opts.endpointSlicesSynced !== false,
  };
  const cluster = String(opts.cluster ?? "test");
  const topo = computeTopology(state, {
    cluster,
    loadBalancerClass: "edgelb.dev/worker",
    onlyClass: opts.onlyClass === true,
    defaultDomain: opts.defaultDomain as string | undefined,
    addressPreference: (opts.addressPreference as AddressType[] | undefined) ?? DEFAULT_ADDRESS_PREFERENCE,
    addressFamily: opts.addressFamily as AddressFamily | undefined,
    allowPrivateAddresses: opts.allowPrivateAddresses === true,
    allowedHostnames: opts.allowedHostnames as string[] | undefined,
  });
  const view: HealthView = {
    node: (n) => health.nodes?.[n],
    local: (n, p) => health.local?.[`${n}:${p}`],
  };
  const desired = buildSnapshot(topo, view, cluster);
  const valid = validateSnapshot({ ...desired.body, generation: 1, publishedAt: "2024-01-01T00:00:00.000Z" });
  if (!valid.ok) throw new Error(valid.error);
  return {
    snapshot: desired.body,
    failOpen: desired.failOpen,
    failOpenServices: desired.failOpenServices,
    pending: desired.pending,
    // Where the agent probes (InternalIP first, whatever is published: rv-ops 7).
    targets: healthTargets(topo),
    nodes: Object.fromEntries([...topo.nodeVerdicts].sort(([a], [b]) => (a < b ? -1 : 1))),
    services: Object.fromEntries(
      [...topo.verdicts]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([id, v]) => [
          id,
          v.kind === "served"
            ? {
                kind: "served",
                hostnames: v.service.hostnames,
                lostHostnames: v.service.lostHostnames,
                terminatingFallback: v.service.terminatingFallback,
                noEndpoints: v.service.noEndpoints,
                notices: v.service.notices,
              }
            : v,
        ]),
    ),
  };
}

describe("desired snapshot golden files", () => {
  it("has cases", () => expect(cases.length).toBeGreaterThanOrEqual(3));
  for (const name of cases) {
    it(name, () => {
      const got = JSON.stringify(compute(readFileSync(path.join(DIR, `${name}.yaml`), "utf8")), null, 2) + "\n";
      const goldenPath = path.join(DIR, `${name}.golden`);
      if (process.env.UPDATE_GOLDEN === "1" || !existsSync(goldenPath)) {
        if (process.env.UPDATE_GOLDEN !== "1") throw new Error(`missing ${goldenPath}; run with UPDATE_GOLDEN=1`);
        writeFileSync(goldenPath, got);
      }
      expect(got).toBe(readFileSync(goldenPath, "utf8"));
    });
  }
});
