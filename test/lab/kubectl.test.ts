// The machine's real kubectl (v1.32) against the simulated cluster: the
// discovery documents, server-side Table printing and write paths it uses.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

const KUBECTL = "/usr/bin/kubectl";
const haveKubectl = existsSync(KUBECTL);
if (!haveKubectl) console.warn(`kubectl tests skipped: ${KUBECTL} is not installed on this machine`);

const run = promisify(execFile);
let cluster: SimCluster;
let dir: string;

beforeAll(async () => {
  if (!haveKubectl) return;
  cluster = await startCluster({ nodes: 2, addressBase: "127.0.42", firstHost: 11, healthzPort: 0 });
  dir = mkdtempSync(join(tmpdir(), "edgelb-kubectl-"));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, KUBECONFIG: cluster.kubeconfigPath, KUBECACHEDIR: join(dir, "cache"), HOME: dir });

async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(KUBECTL, args, { env: env(), timeout: 20_000 });
    return stdout;
  } catch (e: any) {
    throw new Error(`kubectl ${args.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

async function kubectlFails(...args: string[]): Promise<string> {
  const r = await run(KUBECTL, args, { env: env(), timeout: 20_000 }).then(
    () => undefined,
    (e: any) => String(e.stderr),
  );
  if (r === undefined) throw new Error(`kubectl ${args.join(" ")} unexpectedly succeeded`);
  return r;
}

/** Splits kubectl's column output into rows of cells. */
const table = (out: string) =>
  out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s{2,}/));

function manifest(name: string, ports: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Service",
      "metadata:",
      `  name: ${name}`,
      "  labels: {app: web}",
      "spec:",
      "  type: LoadBalancer",
      "  selector: {app: web}",
      "  ports:",
      ports,
      "",
    ].join("\n"),
  );
  return file;
}

describe.skipIf(!haveKubectl)("kubectl against the simulated cluster", () => {
  it("gets nodes and services with the columns a real cluster prints", async () => {
    const out = await kubectl("get", "nodes,svc", "-o", "wide");
    const rows = table(out);
    expect(rows[0]!.slice(0, 7)).toEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP"]);
    expect(rows[1]).toEqual(expect.arrayContaining(["node/node-1", "Ready", "<none>", "v1.32.4", "127.0.42.11"]));
    expect(rows[2]).toEqual(expect.arrayContaining(["node/node-2", "Ready", "127.0.42.12"]));
    const svcHeader = rows.findIndex((r) => r[0] === "NAME" && r[1] === "TYPE");
    expect(rows[svcHeader]).toEqual(["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    expect(rows[svcHeader + 1]).toEqual(expect.arrayContaining(["service/kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]));
  });

  it("applies, re-applies, labels, patches status and deletes a Service", async () => {
    const file = manifest("web", "  - {name: http, port: 80}\n  - {name: https, port: 443}");
    expect(await kubectl("apply", "--validate=false", "-f", file)).toContain("service/web created");
    const created = cluster.get("Service", "web");
    const [http, https] = created.spec.ports.map((p: any) => p.nodePort);
    expect(table(await kubectl("get", "svc", "web"))[1]).toEqual(["web", "LoadBalancer", created.spec.clusterIP, "<pending>", `80:${http}/TCP,443:${https}/TCP`, expect.any(String)]);

    // Re-apply with a changed port: strategic merge keeps the other port's NodePort.
    manifest("web", "  - {name: http, port: 8080}\n  - {name: https, port: 443}");
    expect(await kubectl("apply", "--validate=false", "-f", file)).toContain("service/web configured");
    const updated = cluster.get("Service", "web");
    expect(updated.spec.ports.map((p: any) => [p.port, p.nodePort])).toEqual([
      [8080, http],
      [443, https],
    ]);

    expect(await kubectl("label", "svc", "web", "edgelb.io/expose=true")).toContain("labeled");
    expect(cluster.get("Service", "web").metadata.labels).toMatchObject({ app: "web", "edgelb.io/expose": "true" });

    const lb = JSON.stringify({ status: { loadBalancer: { ingress: [{ hostname: "web.example.com" }] } } });
    await kubectl("patch", "svc", "web", "--subresource=status", "--type=merge", "-p", lb);
    expect(table(await kubectl("get", "svc", "web"))[1]![3]).toBe("web.example.com");
    // Status through the main resource is ignored, like on a real server.
    await kubectl("patch", "svc", "web", "--type=merge", "-p", JSON.stringify({ status: { loadBalancer: { ingress: [{ hostname: "other.example.com" }] } } }));
    expect(cluster.get("Service", "web").status.loadBalancer.ingress).toEqual([{ hostname: "web.example.com" }]);
    const bad = await kubectlFails("patch", "svc", "web", "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { loadBalancer: { ingress: [{ hostname: "1.2.3.4" }] } } }));
    expect(bad).toContain("must be a DNS name, not an IP address");

    expect(await kubectl("delete", "svc", "web")).toContain('service "web" deleted');
    expect(cluster.tryGet("Service", "web")).toBeUndefined();
    expect(await kubectlFails("get", "svc", "web")).toContain('services "web" not found');
  });

  it("cordons and labels nodes", async () => {
    expect(await kubectl("cordon", "node-2")).toContain("node/node-2 cordoned");
    expect(cluster.get("Node", "node-2", "").spec.unschedulable).toBe(true);
    expect(table(await kubectl("get", "node", "node-2"))[1]![1]).toBe("Ready,SchedulingDisabled");
    await kubectl("label", "node", "node-1", "node.kubernetes.io/exclude-from-external-load-balancers=true");
    expect(await kubectl("get", "nodes", "-l", "node.kubernetes.io/exclude-from-external-load-balancers", "-o", "name")).toBe("node/node-1\n");
    await kubectl("uncordon", "node-2");
    expect(cluster.get("Node", "node-2", "").spec.unschedulable).toBeUndefined();
  });

  it("deletes an object with a finalizer only when the finalizer is removed", async () => {
    const file = manifest("held", "  - {name: http, port: 80}");
    await kubectl("apply", "--validate=false", "-f", file);
    await kubectl("patch", "svc", "held", "--type=merge", "-p", JSON.stringify({ metadata: { finalizers: ["service.kubernetes.io/load-balancer-cleanup"] } }));
    await kubectl("delete", "svc", "held", "--wait=false");
    expect(cluster.get("Service", "held").metadata.deletionTimestamp).toBeTruthy();
    await kubectl("patch", "svc", "held", "--type=json", "-p", JSON.stringify([{ op: "remove", path: "/metadata/finalizers" }]));
    expect(cluster.tryGet("Service", "held")).toBeUndefined();
  });

  it("shows placed pods on their nodes: get pods -o wide, describe node, describe svc", async () => {
    cluster.create({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "placed", namespace: "default" },
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local", selector: { app: "placed" }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    await cluster.placePods("placed", ["node-1", "node-2", "node-2"]);
    const pods = table(await kubectl("get", "pods", "-l", "app=placed", "-o", "wide")).slice(1);
    expect(pods.map((r) => [r[1], r[2], r[6]]).sort()).toEqual([
      ["1/1", "Running", "node-1"],
      ["1/1", "Running", "node-2"],
      ["1/1", "Running", "node-2"],
    ]);
    expect(await kubectl("describe", "node", "node-2")).toMatch(/Non-terminated Pods:\s+\(2 in total\)/);
    const described = await kubectl("describe", "svc", "placed");
    expect(described).toMatch(/Endpoints:\s+10\.244\.\d+\.\d+:8080,/);
    expect(described).toMatch(/HealthCheck NodePort:\s+\d+/);
  });

  it("streams changes with get -w", async () => {
    const file = manifest("watched", "  - {name: http, port: 80}");
    await kubectl("apply", "--validate=false", "-f", file);
    const child = spawn(KUBECTL, ["get", "svc", "watched", "-w"], { env: env() });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    try {
      await waitFor(() => out.includes("<pending>"), "the initial row", 10_000);
      // For a single object kubectl watches from resourceVersion 0 and skips the first
      // event (the current state): change it only once the watch is open.
      await waitFor(() => cluster.api.watchCount > 0, "kubectl's watch", 10_000);
      cluster.patch("Service", "watched", { status: { loadBalancer: { ingress: [{ hostname: "watched.example.com" }] } } }, { status: true });
      await waitFor(() => out.includes("watched.example.com"), "the updated row", 10_000);
      expect(out.split("\n")[0]).toMatch(/^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
    } finally {
      child.kill();
    }
  });
});
