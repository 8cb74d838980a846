// kubectl's validation and `kubectl explain` against the simulated API
// server's OpenAPI v3: apply works with validation on (the default), an
// unknown field is refused as a real server refuses it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { haveKubectl, kubectlFor, type Kubectl } from "./kubectl-env.ts";

let cluster: SimCluster;
let kubectl: Kubectl;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 1, addressBase: "127.24.2", healthzPort: 0 });
  kubectl = kubectlFor(cluster.kubeconfigPath);
});
afterAll(async () => {
  kubectl?.cleanup();
  await cluster?.stop();
});

const deployment = (extra = "") =>
  [
    "apiVersion: apps/v1",
    "kind: Deployment",
    "metadata: {name: hello, labels: {app: hello}}",
    "spec:",
    "  replicas: 2",
    extra,
    "  selector: {matchLabels: {app: hello}}",
    "  template:",
    "    metadata: {labels: {app: hello}}",
    "    spec:",
    "      containers:",
    "      - name: echo",
    "        image: edgelb/echo:1",
    "        ports: [{containerPort: 8080}]",
    "---",
    "apiVersion: v1",
    "kind: Service",
    "metadata: {name: hello}",
    "spec:",
    "  type: LoadBalancer",
    "  selector: {app: hello}",
    "  ports: [{port: 80, targetPort: 8080}]",
    "",
  ].join("\n");

describe.skipIf(!haveKubectl)("OpenAPI for kubectl", () => {
  it("kubectl apply -f works with validation on, and the server enforces it: strict refuses an unknown field, warn drops it", async () => {
    const file = join(kubectl.dir, "hello.yaml");
    writeFileSync(file, deployment());
    const out = await kubectl("apply", "-f", file);
    expect(out).toContain("deployment.apps/hello created");
    expect(out).toContain("service/hello created");
    // Re-applying computes a patch: nothing changes.
    expect(await kubectl("apply", "-f", file)).toContain("deployment.apps/hello unchanged");

    writeFileSync(file, deployment("  replicaz: 3"));
    expect(await kubectl.fails("apply", "-f", file)).toContain('strict decoding error: unknown field "spec.replicaz"');
    const warned = await kubectl.both("apply", "--validate=warn", "-f", file);
    expect(warned.stderr).toContain('unknown field "spec.replicaz"');
    expect(cluster.get("Deployment", "hello").spec.replicaz).toBeUndefined();
    // The Service document too (a typo'd port field).
    writeFileSync(file, deployment().replace("targetPort: 8080", "targetPort: 8080, nodPort: 31000"));
    expect(await kubectl.fails("apply", "-f", file)).toContain('unknown field "spec.ports[0].nodPort"');
  }, 60_000);

  it("kubectl explain describes the kinds it serves, field by field", async () => {
    const rolling = await kubectl("explain", "deployment.spec.strategy.rollingUpdate");
    expect(rolling).toContain("GROUP:      apps");
    expect(rolling).toMatch(/maxSurge\s+<string>/); // an IntOrString, as its format says
    expect(rolling).toContain("rounded up (default 25%)");
    const ports = await kubectl("explain", "service.spec.ports");
    expect(ports).toMatch(/nodePort\s+<integer>/);
    expect(ports).toMatch(/port\s+<integer> -required-/);
    expect(await kubectl("explain", "pods.spec.containers.image")).toMatch(/image's tag is the echo\s+app's version/);
  }, 60_000);

  it("serves a document per group-version whose PATCH operations take fieldValidation (what kubectl checks)", async () => {
    const root = (await (await fetch(`${cluster.url}/openapi/v3`)).json()) as { paths: Record<string, { serverRelativeURL: string }> };
    expect(Object.keys(root.paths)).toEqual(expect.arrayContaining(["api/v1", "apis/apps/v1", "apis/discovery.k8s.io/v1"]));
    for (const { serverRelativeURL } of Object.values(root.paths)) {
      const doc = (await (await fetch(`${cluster.url}${serverRelativeURL}`)).json()) as { paths: Record<string, { patch?: { parameters: { name: string; in: string }[] } }> };
      const patches = Object.entries(doc.paths).filter(([, p]) => p.patch);
      expect(patches.length).toBeGreaterThan(0);
      for (const [path, p] of patches) expect(p.patch!.parameters.some((x) => x.name === "fieldValidation" && x.in === "query"), path).toBe(true);
    }
    expect((await fetch(`${cluster.url}/openapi/v3/apis/nothing/v1`)).status).toBe(404);
  });
});
