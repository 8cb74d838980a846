// `npm start -- --clusters N` (issue 18): N simulated clusters (each its own
// API server, kubeconfig, nodes and agent) behind the one local worker, with
// the Service "shop" present in every cluster under one hostname. The worker
// runs in local mode, so a test request.cf can be sent in a header to steer
// by location; every other part is as in production. Kept apart from demo.ts
// (the single-cluster lab) on purpose.
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import type { Obj } from "../cluster/api/selectors.ts";
import { startCluster, type SimCluster } from "../cluster/cluster.ts";
import { startEdgeWorker, type EdgeWorker } from "../edge/start-worker.ts";
import { echoDeployment } from "./echo-app.ts";
import { watchKnobs } from "./knobs.ts";
import { curlFor, shortPath } from "./instructions.ts";
import { paint, type Output } from "./logs.ts";
import { assertPortFree, clusterListenError, DemoError } from "./ports.ts";

/** The clusters, in EDGELB_CLUSTERS order, with where they pretend to be. */
export const LAB_CLUSTERS = [
  { name: "eu", region: "eu-central", location: { lat: 50.11, lon: 8.68 }, city: "Frankfurt" },
  { name: "us", region: "us-east", location: { lat: 39.04, lon: -77.49 }, city: "Ashburn" },
  { name: "ap", region: "ap-southeast", location: { lat: 1.35, lon: 103.82 }, city: "Singapore" },
  { name: "sa", region: "sa-east", location: { lat: -23.55, lon: -46.63 }, city: "São Paulo" },
] as const;
export const MAX_LAB_CLUSTERS = LAB_CLUSTERS.length;

export const SHOP_HOSTNAME = "shop.localhost";

/** Sample client places for the instructions (request.cf fields, as Cloudflare sends them). */
export const SAMPLE_CLIENTS = {
  Berlin: { country: "DE", continent: "EU", latitude: "52.52", longitude: "13.40" },
  "New York": { country: "US", continent: "NA", latitude: "40.71", longitude: "-74.01" },
} as const;

export interface MultiClusterOptions {
  clusters: number;
  host?: string;
  port?: number;
  /** Cluster i's nodes listen on `${addressBase}.${11 + 10 i}` and up. */
  addressBase?: string;
  healthzPort?: number;
  stateDir?: string;
  healthIntervalMs?: number;
  agentLog: Logger;
  onWorkerLog?: (line: string) => void;
  /** The worker (a workerd child process) listens at `url`: `npm start` records its children then. */
  onWorkerStarted?: (url: string) => void;
  onSimulator?: (level: "info" | "warn", text: string) => void;
  timeoutMs?: number;
}

export interface LabCluster {
  name: string;
  region: string;
  city: string;
  kubeconfigPath: string;
  sim: SimCluster;
  agent: Agent;
}

export interface MultiClusterDemo {
  workerUrl: string;
  host: string;
  port: number;
  token: string;
  statusPageUrl: string;
  clusters: LabCluster[];
  edge: EdgeWorker;
  startupMs: number;
  stop(): Promise<void>;
}

function shopService(): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: "shop",
      namespace: "default",
      labels: { app: "shop" },
      annotations: { "edgelb.dev/hostnames": SHOP_HOSTNAME },
    },
    spec: { type: "LoadBalancer", selector: { app: "shop" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
  };
}

interface StatusJson {
  clusters: { name: string; nodes: { healthy: boolean }[]; services: { name: string; counts: { serving: number } }[] }[];
}

export async function startMultiClusterDemo(opts: MultiClusterOptions): Promise<MultiClusterDemo> {
  const t0 = Date.now();
  const n = opts.clusters;
  if (!Number.isInteger(n) || n < 2 || n > MAX_LAB_CLUSTERS) throw new DemoError(`--clusters must be 2 to ${MAX_LAB_CLUSTERS}`);
  const host = opts.host ?? "127.0.0.1";
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const stateDir = path.resolve(opts.stateDir ?? ".edgelb");
  const base = opts.addressBase ?? "127.0.0";
  const chosen = LAB_CLUSTERS.slice(0, n);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    await assertPortFree(host, opts.port ?? 8787, "the worker's port", "Stop what uses it, or pick another port: npm start -- --port 8788");
    mkdirSync(stateDir, { recursive: true });
    const sims: SimCluster[] = [];
    for (const [i, c] of chosen.entries()) {
      const kubeconfigPath = path.join(stateDir, `kubeconfig-${c.name}`);
      const healthzPort = opts.healthzPort ?? 10256;
      const sim = await startCluster({ nodes: 3, addressBase: base, firstHost: 11 + 10 * i, namePrefix: `${c.name}-node-`, healthzPort, apiPort: 0, kubeconfigPath }).catch((err: unknown) => {
        throw clusterListenError(err, { healthzPort });
      });
      stops.push(async () => {
        await sim.stop();
        rmSync(kubeconfigPath, { force: true });
      });
      // shop: a Deployment of the echo app (one pod per node) behind a LoadBalancer Service, as in one cluster.
      sim.create(echoDeployment("shop", sim.nodes.length));
      sim.create(shopService());
      const knobs = watchKnobs(sim, { info: (t) => opts.onSimulator?.("info", `${c.name}: ${t}`), warn: (t) => opts.onSimulator?.("warn", `${c.name}: ${t}`) });
      stops.push(() => knobs.stop());
      await knobs.settled();
      sims.push(sim);
    }

    // One push token per cluster, as in production; the read token for the status page.
    const tokens = Object.fromEntries(chosen.map((c) => [c.name, randomBytes(16).toString("hex")]));
    const readToken = randomBytes(16).toString("hex");
    const readTokenPath = path.join(stateDir, "read-token");
    writeFileSync(readTokenPath, `${readToken}\n`, { mode: 0o600 });
    stops.push(async () => rmSync(readTokenPath, { force: true }));
    const edge = await startEdgeWorker({
      host,
      port: opts.port ?? 8787,
      // The local lab only: lets curl send a stand-in for request.cf (x-edgelb-test-cf).
      localMode: true,
      vars: {
        EDGELB_PUSH_TOKENS: JSON.stringify(tokens),
        EDGELB_READ_TOKEN: readToken,
        EDGELB_CLUSTERS: chosen.map((c) => c.name).join(","),
        EDGELB_STEERING: JSON.stringify({ [SHOP_HOSTNAME]: { policy: "proximity", clusters: chosen.map((c) => c.name) } }),
        EDGELB_CACHE_TTL: "1",
        EDGELB_REQUEST_LOGS: "true",
      },
      ...(opts.onWorkerLog ? { onLog: opts.onWorkerLog } : {}),
    });
    stops.push(() => edge.stop());
    opts.onWorkerStarted?.(edge.url);

    const interval = opts.healthIntervalMs ?? 1_000;
    const clusters: LabCluster[] = [];
    for (const [i, c] of chosen.entries()) {
      const sim = sims[i]!;
      const kubeconfigPath = path.join(stateDir, `kubeconfig-${c.name}`);
      const agent = createAgent(
        defaultConfig({
          cluster: c.name,
          kubeconfig: kubeconfigPath,
          sink: "worker",
          workerUrl: edge.url,
          pushToken: tokens[c.name]!,
          addressPreference: ["InternalIP"],
          allowPrivateAddresses: true,
          health: { mode: "kube-proxy", intervalMs: interval, timeoutMs: Math.round(interval / 2), rise: 2, fall: 2, healthzPort: sim.healthzPort },
          coalesceMs: 100,
          maxDelayMs: 500,
          minWriteIntervalMs: 250,
          logFormat: "pretty",
          region: c.region,
          location: c.location,
        }),
        { log: opts.agentLog.child({ cluster: c.name, labCluster: c.name }) },
      );
      await agent.start();
      stops.push(() => agent.stop());
      clusters.push({ name: c.name, region: c.region, city: c.city, kubeconfigPath, sim, agent });
    }

    // Ready when every cluster's shop is served from all of its nodes.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await fetch(`${edge.url}/__edgelb/v1/status`, { headers: { authorization: `Bearer ${readToken}` } }).catch(() => undefined);
      const st = res?.ok ? ((await res.json()) as StatusJson) : undefined;
      const ready = st && chosen.every((c) => st.clusters.find((x) => x.name === c.name)?.services.find((s) => s.name === "shop")?.counts.serving === 3);
      if (ready) break;
      if (Date.now() > deadline) throw new DemoError(`timed out after ${timeoutMs} ms waiting for the worker to route shop in every cluster`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const linkHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
    return {
      workerUrl: edge.url,
      host,
      port: edge.port,
      token: readToken,
      statusPageUrl: `http://${linkHost}:${edge.port}/__edgelb/#token=${readToken}`,
      clusters,
      edge,
      startupMs: Date.now() - t0,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** What `npm start -- --clusters N` prints once everything is up. */
export function multiClusterInstructions(demo: MultiClusterDemo, out: Pick<Output, "color">): string[] {
  const b = (t: string) => paint(out, "bold", t);
  const c = (t: string) => paint(out, "cyan", t);
  const d = (t: string) => paint(out, "gray", t);
  // Through the worker's --host and --port, as the single-cluster banner's commands.
  const curl = (extra: string) => curlFor(demo, SHOP_HOSTNAME, ` ${extra}`);
  const first = demo.clusters[0]!;
  const second = demo.clusters[1]!;
  const cf = (name: keyof typeof SAMPLE_CLIENTS) => `-H 'x-edgelb-test-cf: ${JSON.stringify(SAMPLE_CLIENTS[name])}'`;
  const lines = ["", b(`edgelb lab is ready: ${demo.clusters.length} clusters behind one worker (${(demo.startupMs / 1000).toFixed(1)} s)`), ""];
  lines.push(`  Worker        ${demo.workerUrl}   (local workerd, local mode: test request.cf from a header)`);
  lines.push(`  Status page   ${demo.statusPageUrl}`);
  for (const k of demo.clusters) {
    lines.push(`  Cluster ${k.name.padEnd(5)} ${k.region} (${k.city}): ${k.sim.nodes.map((x) => `${x.name} ${x.address}`).join(", ")}; kubeconfig ${shortPath(k.kubeconfigPath)}`);
  }
  lines.push("");
  lines.push(b("One Service, shop, in every cluster, behind " + SHOP_HOSTNAME + " (steering: proximity)"), "");
  lines.push(`  ${c(curl("-s"))}`);
  lines.push(d(`      "node" says which cluster answered (${first.name}-node-… or ${second.name}-node-…); local workerd's own request.cf`));
  lines.push(d(`      says Austin, Texas, so without a header the nearest cluster to Austin answers`));
  lines.push(`  ${c(curl(`-s ${cf("Berlin")}`))}`);
  lines.push(`  ${c(curl(`-s ${cf("New York")}`))}`);
  lines.push(d(`      steer by location: Berlin is nearest ${first.city} (${first.name}), New York nearest ${second.city} (${second.name})`));
  lines.push("");
  lines.push(b("Take a whole cluster down and watch requests move with zero failures"), "");
  lines.push(`  ${c(`while true; do ${curl(`-s -o /dev/null -w '%{http_code} ' ${cf("Berlin")}`)}; sleep 0.1; done`)}`);
  lines.push(d("      in another terminal, while that loop runs:"));
  const k = `kubectl --kubeconfig ${shortPath(first.kubeconfigPath)}`;
  lines.push(`  ${c(`for n in 1 2 3; do ${k} annotate node ${first.name}-node-$n sim.edgelb.dev/fault=down; done`)}`);
  lines.push(d(`      worker: proxy.next_cluster from=${first.name} to=${second.name}; every answer stays 200; the status page shows`));
  lines.push(d(`      ${first.name} skipped for ${SHOP_HOSTNAME} ("no healthy node for the Service") once its agent reports the nodes down`));
  lines.push(d(`      undo:  for n in 1 2 3; do ${k} annotate node ${first.name}-node-$n sim.edgelb.dev/fault-; done`));
  lines.push("");
  lines.push(d("Ctrl-C stops everything."), "");
  return lines;
}
