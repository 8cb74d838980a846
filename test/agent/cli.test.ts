// The agent as a user runs it: the `edgelb-sync-agent` bin in a child process.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { startFakeCloudflare } from "../cloudflare/fake-kv-api.ts";
import { startCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "sync-agent/bin/edgelb-sync-agent.js");

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill(signal?: NodeJS.Signals): void;
}

const children: Run[] = [];
afterAll(() => children.forEach((c) => c.kill("SIGKILL")));

function run(args: string[], env: Record<string, string> = {}): Run {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("EDGELB_") && !k.startsWith("CLOUDFLARE_")));
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const r: Run = {
    code: new Promise((resolve) => child.on("exit", (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (s = "SIGTERM") => void child.kill(s),
  };
  children.push(r);
  return r;
}

describe("edgelb-sync-agent (child process)", () => {
  it("ends a bad flag with one clear message and exit code 2", async () => {
    const r = run(["--cluster", "home", "--helth-check-interval", "5s"]);
    expect(await r.code).toBe(2);
    expect(r.stdout()).toBe("");
    const [first, ...rest] = r.stderr().trim().split("\n");
    expect(first).toMatch(/^edgelb-sync-agent: unknown option '--helth-check-interval'/);
    expect(first).toMatch(/Did you mean --health-check-interval\?/);
    expect(rest).toEqual(["(see edgelb-sync-agent --help)"]);
  });

  it("ends an unreadable token file with exit code 2", async () => {
    const r = run(["--cluster", "home", "--worker-url", "https://edge.example.com", "--push-token-file", "/nonexistent/token"]);
    expect(await r.code).toBe(2);
    expect(r.stderr()).toMatch(/^edgelb-sync-agent: --push-token-file \/nonexistent\/token: cannot read it \(ENOENT\)\n/);
  });

  it("runs from the environment, pushes, logs JSON without secrets, and exits 0 on SIGTERM", async () => {
    const cluster = await startCluster({ standIn: true, nodes: 1, addressBase: "127.0.65", healthzPort: 0 });
    const cf = await startFakeCloudflare({ accountId: "acc", namespaceId: "ns", token: "very-secret-token" });
    try {
      const r = run([], {
        EDGELB_CLUSTER: "cli",
        EDGELB_SINK: "kv-api",
        EDGELB_KUBECONFIG: cluster.kubeconfigPath,
        EDGELB_ACCOUNT_ID: "acc",
        EDGELB_NAMESPACE_ID: "ns",
        EDGELB_CLOUDFLARE_API_URL: cf.baseUrl,
        CLOUDFLARE_API_TOKEN: "very-secret-token",
        EDGELB_HEALTHZ_PORT: String(cluster.healthzPort),
        EDGELB_NODE_ADDRESS_PREFERENCE: "InternalIP",
        EDGELB_HEALTH_CHECK_INTERVAL: "500ms",
        EDGELB_HEALTH_CHECK_TIMEOUT: "200ms",
        EDGELB_LOG_FORMAT: "json",
        // Leader election and the metrics listener are tested elsewhere.
        EDGELB_LEADER_ELECT: "false",
        EDGELB_METRICS_ADDRESS: "",
      });
      // A ceiling that includes the child's start-up (tsx, client-node): 20 s ran out at load 15.
      await waitFor(() => cf.writes.length === 1, "the child pushed", 45_000);
      expect(cf.writes[0]?.snapshot).toMatchObject({ cluster: "cli", generation: 1, nodes: [{ name: "node-1", healthy: true }] });
      await waitFor(() => r.stdout().includes("pushed generation 1"), "push logged");
      r.kill("SIGTERM");
      expect(await r.code).toBe(0);
      const lines = r.stdout().trim().split("\n").map((l) => JSON.parse(l) as { msg: string; level: number });
      expect(lines.some((l) => /^starting: cluster cli, sink kv-api/.test(l.msg))).toBe(true);
      expect(lines.some((l) => /^informers synced in \d+ ms: 1 nodes/.test(l.msg))).toBe(true);
      expect(r.stdout()).not.toContain("very-secret-token");
      expect(r.stdout()).toContain("[redacted]");
      expect(lines.at(-1)?.msg).toBe("stopped");
    } finally {
      await cf.stop();
      await cluster.stop();
    }
  });
});
