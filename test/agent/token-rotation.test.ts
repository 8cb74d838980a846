// A rotated token Secret needs no restart. The token file is laid out as the
// kubelet lays out a Secret volume (token → ..data/token, ..data → a
// timestamped directory) and rotated the way the kubelet does it: a new
// directory, then an atomic swap of the ..data symlink.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import { startFakeCloudflare, type FakeCloudflare } from "../cloudflare/fake-kv-api.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { lbService, type LogLine } from "./harness.ts";

/** A Secret volume with one key, `token`, as the kubelet writes it. */
function secretVolume(value: string) {
  const dir = mkdtempSync(join(tmpdir(), "edgelb-secret-"));
  let n = 0;
  const publish = (v: string) => {
    const ts = join(dir, `..2026_12_01_00_00_0${n++}.${process.pid}`);
    mkdirSync(ts);
    writeFileSync(join(ts, "token"), `${v}\n`);
    symlinkSync(ts, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data")); // atomic swap
    return ts;
  };
  let current = publish(value);
  symlinkSync(join("..data", "token"), join(dir, "token"));
  return {
    path: join(dir, "token"),
    rotate(v: string) {
      const old = current;
      current = publish(v);
      rmSync(old, { recursive: true, force: true });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

let cluster: SimCluster;
let cf: FakeCloudflare;
const cfAuth = { accountId: "acc", namespaceId: "ns", token: "token-one" };
const secret = secretVolume("token-one");
let agent: Agent;
const logs: LogLine[] = [];
beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 1, addressBase: "127.16.5", healthzPort: 0 });
  cf = await startFakeCloudflare(cfAuth);
  const config = defaultConfig({
    cluster: "home",
    kubeconfig: cluster.kubeconfigPath,
    sink: "kv-api",
    accountId: "acc",
    namespaceId: "ns",
    apiToken: "token-one", // what the CLI read at startup
    apiTokenFile: secret.path,
    tokenRecheckMs: 1, // every use re-reads: what the test waits for cannot hide between checks
    cloudflareApiUrl: cf.baseUrl,
    addressPreference: ["InternalIP"],
    health: { mode: "kube-proxy", intervalMs: 200, timeoutMs: 150, rise: 1, fall: 1, healthzPort: cluster.healthzPort },
    coalesceMs: 20,
    maxDelayMs: 100,
    minWriteIntervalMs: 50,
    resyncMs: 0,
  });
  const log = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  agent = createAgent(config, { log });
  await agent.start();
});
afterAll(async () => {
  await agent?.stop();
  await cf?.stop();
  await cluster?.stop();
  secret.remove();
});

const stored = () => {
  const raw = cf.values.get("cluster/home");
  return raw ? (JSON.parse(raw) as { services: { name: string }[] }) : null;
};

describe("token rotation", () => {
  it("a rotated Secret (..data symlink swap) is picked up without a restart", async () => {
    await waitFor(() => stored(), "first snapshot with the first token");

    // Cloudflare revokes the old token; the cluster's Secret is not updated yet.
    cfAuth.token = "token-two";
    cluster.create(lbService("web", { hostnames: "web.example.com" }));
    await waitFor(() => logs.some((l) => /push of generation 2 failed: .*403/.test(l.msg)), "the old token refused");

    // The kubelet updates the Secret volume.
    secret.rotate("token-two");
    const s = await waitFor(() => (stored()?.services.some((x) => x.name === "web") ? stored() : undefined), "pushed with the new token", 15_000);
    expect(s!.services.map((x) => x.name)).toEqual(["web"]);
    const reload = logs.find((l) => /--api-token-file .*: re-read the secret/.test(l.msg));
    expect(reload).toBeDefined();
    expect(JSON.stringify(logs)).not.toContain("token-two"); // the secret itself is never logged
  });

  it("an emptied or vanished file keeps the last good token, and says so once", async () => {
    const before = cf.writes.length;
    secret.rotate(""); // an empty value
    cluster.create(lbService("shop", { hostnames: "shop.example.com" }));
    await waitFor(() => stored()?.services.some((x) => x.name === "shop"), "pushed with the last good token");
    expect(cf.writes.length).toBeGreaterThan(before);
    await waitFor(() => logs.some((l) => /the file is empty; keeping the secret read before/.test(l.msg)), "the warning");
    expect(logs.filter((l) => /the file is empty/.test(l.msg))).toHaveLength(1);
  });
});
