// End-to-end world for the sync agent: a simulated cluster (fake API server +
// simulated nodes), the agent running in-process against it, and an edge —
// either the real worker in workerd (push endpoint, then real HTTP traffic
// through it) or the fake Cloudflare KV API (kv-api sink).
//
//   const w = await startWorld({ addressBase: "127.0.61", sink: "worker" });
//   w.cluster.create({...Service...});
//   await w.waitForSnapshot((s) => s.services.length === 1);
//   const res = await w.request("web.example.com", "/");   // through the worker
//   await w.stop();
import { randomBytes } from "node:crypto";
import { pino, type Logger } from "pino";
import { createAgent, type Agent, type AgentDeps } from "../../sync-agent/agent.ts";
import { defaultConfig, type AgentConfig } from "../../sync-agent/config.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { startFakeCloudflare, type FakeCloudflare } from "../cloudflare/fake-kv-api.ts";
import { startCluster, type ClusterOptions, type SimCluster } from "../../lab/cluster/cluster.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import { startEdgeWorker, type EdgeWorker } from "../../lab/edge/start-worker.ts";

export { waitFor };

export interface WorldOptions {
  /** A /24 of loopback of this test file's own, e.g. "127.0.61". */
  addressBase: string;
  nodes?: number;
  sink: "worker" | "kv-api";
  cluster?: string;
  /** Agent config overrides (health probe timing etc.). */
  config?: Partial<AgentConfig>;
  clusterOptions?: Partial<ClusterOptions>;
  /** Do not start the agent (tests that start it themselves). */
  noAgent?: boolean;
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface World {
  cluster: SimCluster;
  edge?: EdgeWorker;
  cf?: FakeCloudflare;
  agent: Agent;
  config: AgentConfig;
  logs: LogLine[];
  log: Logger;
  /** Starts (another) agent with the world's config; the world stops it. */
  startAgent(over?: Partial<AgentConfig>, deps?: AgentDeps): Promise<Agent>;
  /** Stops every agent the world started. */
  stopAgents(): Promise<void>;
  /** The snapshot the edge has now (worker GET or fake KV), or null. */
  stored(): Promise<Snapshot | null>;
  waitForSnapshot(pred: (s: Snapshot) => boolean, what: string, timeoutMs?: number): Promise<Snapshot>;
  /** A request through the edge worker with this Host. */
  request(host: string, path?: string): Promise<Response>;
  /** Which node answered a request to host (x-edgelb-node), or the status when it failed. */
  whoAnswers(host: string): Promise<string>;
  stop(): Promise<void>;
}

/** A LoadBalancer Service object for cluster.create(). */
export function lbService(name: string, opts: {
  namespace?: string;
  hostnames?: string;
  ports?: Obj[];
  annotations?: Record<string, string>;
  spec?: Obj;
} = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: opts.namespace ?? "default",
      annotations: { ...(opts.hostnames ? { "edgelb.dev/hostnames": opts.hostnames } : {}), ...(opts.annotations ?? {}) },
    },
    spec: {
      type: "LoadBalancer",
      selector: { app: name },
      ports: opts.ports ?? [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      ...(opts.spec ?? {}),
    },
  };
}

export async function startWorld(opts: WorldOptions): Promise<World> {
  const clusterName = opts.cluster ?? "e2e";
  const cluster = await startCluster({ standIn: true, nodes: opts.nodes ?? 3, addressBase: opts.addressBase, healthzPort: 0, ...opts.clusterOptions });
  const token = randomBytes(12).toString("hex");
  let edge: EdgeWorker | undefined;
  let cf: FakeCloudflare | undefined;
  const stops: (() => Promise<void>)[] = [() => cluster.stop()];
  try {
    if (opts.sink === "worker") {
      edge = await startEdgeWorker({ vars: { EDGELB_PUSH_TOKEN: token, EDGELB_CLUSTERS: clusterName, EDGELB_CACHE_TTL: "0" } });
      stops.push(() => edge!.stop());
    } else {
      cf = await startFakeCloudflare({ accountId: "acc", namespaceId: "ns", token });
      stops.push(() => cf!.stop());
    }
  } catch (err) {
    for (const s of stops.reverse()) await s();
    throw err;
  }

  const logs: LogLine[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const config = defaultConfig({
    cluster: clusterName,
    kubeconfig: cluster.kubeconfigPath,
    sink: opts.sink,
    ...(opts.sink === "worker" ? { workerUrl: edge!.url, pushToken: token } : { accountId: "acc", namespaceId: "ns", apiToken: token, cloudflareApiUrl: cf!.baseUrl }),
    addressPreference: ["InternalIP"],
    // Simulated nodes live on loopback, which Cloudflare would refuse: expected here.
    allowPrivateAddresses: true,
    health: { mode: "kube-proxy", intervalMs: 200, timeoutMs: 150, rise: 2, fall: 2, healthzPort: cluster.healthzPort },
    coalesceMs: 50,
    maxDelayMs: 300,
    minWriteIntervalMs: 100,
    resyncMs: 0,
    ...opts.config,
  });
  const agents: Agent[] = [];
  const startAgent = async (over: Partial<AgentConfig> = {}, deps: AgentDeps = {}) => {
    const a = createAgent({ ...config, ...over }, { log, ...deps });
    agents.push(a);
    await a.start();
    return a;
  };
  const agent = opts.noAgent ? (undefined as unknown as Agent) : await startAgent();

  const stored = async (): Promise<Snapshot | null> => {
    if (cf) {
      const raw = cf.values.get(`cluster/${clusterName}`);
      return raw ? (JSON.parse(raw) as Snapshot) : null;
    }
    const res = await fetch(`${edge!.url}/__edgelb/v1/clusters/${clusterName}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`GET snapshot: ${res.status}`);
    return (await res.json()) as Snapshot;
  };

  return {
    cluster,
    ...(edge ? { edge } : {}),
    ...(cf ? { cf } : {}),
    agent,
    config,
    logs,
    log,
    startAgent,
    stored,
    async stopAgents() {
      for (const a of agents.splice(0)) await a.stop();
    },
    async waitForSnapshot(pred, what, timeoutMs = 8_000) {
      return waitFor(async () => {
        const s = await stored();
        return s && pred(s) ? s : undefined;
      }, what, timeoutMs);
    },
    request(host, path = "/") {
      if (!edge) throw new Error("no edge worker in this world");
      return edge.request(host, path);
    },
    async whoAnswers(host) {
      let res: Response;
      try {
        res = await edge!.request(host, "/", { signal: AbortSignal.timeout(5_000) });
      } catch (err) {
        return `error ${(err as Error).name}`;
      }
      const who = res.headers.get("x-edgelb-node");
      await res.body?.cancel();
      return res.ok && who ? who : `status ${res.status}`;
    },
    async stop() {
      for (const a of agents.splice(0)) await a.stop();
      for (const s of stops.reverse()) await s();
    },
  };
}

/** Names of healthy nodes in a snapshot. */
export function healthyNodes(s: Snapshot): string[] {
  return s.nodes.filter((n) => n.healthy).map((n) => n.name).sort();
}

/** The log lines whose message matches. */
export function logsMatching(logs: LogLine[], re: RegExp): LogLine[] {
  return logs.filter((l) => re.test(l.msg));
}
