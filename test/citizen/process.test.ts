// The agent as users run it: the real CLI in its own process against the
// simulated cluster, with leader election, status, metrics — and a graceful
// SIGTERM that releases the lease so a standby would take over at once.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it, onTestFailed } from "vitest";
import { startFakeCloudflare, type FakeCloudflare } from "../cloudflare/fake-kv-api.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { until } from "./harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
let cluster: SimCluster;
let cf: FakeCloudflare;
let child: ChildProcess | undefined;
const lines: Array<{ msg: string; [k: string]: unknown }> = [];

beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 2, addressBase: "127.0.86", healthzPort: 0 });
  cf = await startFakeCloudflare({ accountId: "acc", namespaceId: "ns", token: "cf-token" });
});
afterAll(async () => {
  if (process.env.SHOW_LOGS) (await import("node:fs")).writeFileSync(process.env.SHOW_LOGS, lines.map((l) => JSON.stringify(l)).join("\n"));
  child?.kill("SIGKILL");
  await cf?.stop();
  await cluster?.stop();
});

it("runs as a process: leads, writes status, serves metrics, and releases the lease on SIGTERM", async () => {
  onTestFailed(() => console.log(lines.map((l) => JSON.stringify(l)).join("\n")));
  cluster.create({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default", annotations: { "edgelb.dev/hostnames": "web.example.com" } },
    spec: { type: "LoadBalancer", selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  });
  // prettier-ignore
  const args = [
    "--import", "tsx", "sync-agent/main.ts",
    "--cluster", "home", "--kubeconfig", cluster.kubeconfigPath,
    "--sink", "kv-api", "--account-id", "acc", "--namespace-id", "ns", "--cloudflare-api-url", cf.baseUrl,
    "--node-address-preference", "InternalIP", "--allow-private-addresses", "--healthz-port", String(cluster.healthzPort),
    "--health-check-interval", "200ms", "--health-check-timeout", "150ms",
    "--metrics-address", "127.0.0.1:0", "--log-format", "json",
    "--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "300ms",
  ];
  child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, CLOUDFLARE_API_TOKEN: "cf-token", POD_NAME: "edgelb-sync-agent-test", POD_NAMESPACE: "edgelb" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      lines.push(JSON.parse(line));
    } catch {
      lines.push({ msg: line });
    }
  });
  child.stderr!.on("data", (d: Buffer) => lines.push({ msg: `stderr: ${d}` }));
  const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));

  // A ceiling that includes the child's start-up (tsx, client-node): 20 s ran out at load 15.
  const metricsUrl = await until("metrics server", () => lines.find((l) => l.msg.startsWith("metrics, health and readiness at"))?.url as string | undefined, 45_000);
  await until("leadership", () => lines.some((l) => l.msg.startsWith("became leader")), 10_000);
  await until("a push", () => cf.writes.length > 0, 10_000);
  await until("status", () => {
    const svc = cluster.get("Service", "web", "default") as { status?: { loadBalancer?: { ingress?: Array<{ hostname?: string }> } } };
    return svc.status?.loadBalancer?.ingress?.[0]?.hostname === "web.example.com";
  });
  const ready = await until("ready", async () => ((await fetch(`${metricsUrl}/readyz`)).status === 200 ? true : null));
  expect(ready).toBe(true);
  expect(await (await fetch(`${metricsUrl}/metrics`)).text()).toContain("edgelb_leader 1");
  const lease = cluster.get("Lease", "edgelb-sync-agent", "edgelb") as { spec: { holderIdentity?: string } };
  expect(lease.spec.holderIdentity).toMatch(/^edgelb-sync-agent-test_[0-9a-f]{8}$/);

  child.kill("SIGTERM");
  expect(await exited).toBe(0);
  child = undefined;
  const released = cluster.get("Lease", "edgelb-sync-agent", "edgelb") as { spec: { holderIdentity?: string; leaseDurationSeconds?: number } };
  expect(released.spec.holderIdentity ?? "").toBe("");
  const msgs = lines.map((l) => l.msg);
  const order = ["received SIGTERM, shutting down", "shutting down: no more pushes", "stopped leading: shutting down", "released the lease"].map((m) =>
    msgs.findIndex((x) => x.startsWith(m)),
  );
  expect(order.every((i) => i >= 0)).toBe(true);
  expect(order).toEqual([...order].sort((a, b) => a - b));
});
