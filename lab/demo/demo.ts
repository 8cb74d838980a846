// The whole system on one machine: a simulated cluster (fake API server and
// three nodes on their own loopback addresses), the real worker in local
// workerd with local KV, and the sync agent pushing to it. `npm start` is a
// thin CLI around startDemo(); the end-to-end and status page suites use it
// too. With `kubeconfig` set it runs the worker and the agent against a real
// cluster instead (read-only: no Lease, no Service status, no Events).
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { KubeConfig, VersionApi } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { attachCitizen, type AttachedCitizen } from "../../sync-agent/citizen/attach.ts";
import { CITIZEN_DEFAULTS } from "../../sync-agent/citizen/index.ts";
import { defaultConfig, type AgentConfig } from "../../sync-agent/config.ts";
import type { Obj } from "../cluster/api/selectors.ts";
import { startCluster, type SimCluster } from "../cluster/cluster.ts";
import { startEdgeWorker, type EdgeWorker } from "../edge/start-worker.ts";
import { DEMO_IMAGE, echoDeployment } from "./echo-app.ts";
import { seedGatewayDemo } from "./gateway.ts";
import { watchKnobs, type Knobs } from "./knobs.ts";
import { narrate } from "./narrate.ts";
import { startDemoGates, type DemoGates } from "./gates.ts";
import { assertPortFree, clusterListenError, DemoError, PortInUseError } from "./ports.ts";

export { DemoError, PortInUseError };

export const DEMO_CLUSTER = "demo";
/** Where the simulated cluster's Services without a hostname annotation are served: <name>.<namespace>.svc.localhost. */
export const SIM_DEFAULT_DOMAIN = "svc.localhost";

export interface DemoOptions {
  /** Worker listen address and port (default 127.0.0.1:8787; port 0 picks one). */
  host?: string;
  port?: number;
  /** Simulated nodes: `${addressBase}.${firstHost}` and up (default 127.0.0.11, .12, .13). */
  addressBase?: string;
  firstHost?: number;
  nodes?: number;
  /** kube-proxy healthz port on every simulated node (default 10256; 0 picks one). */
  healthzPort?: number;
  /** Fake API server port (default 0: any free port; the kubeconfig says which). */
  apiPort?: number;
  /** Where the kubeconfig and push token are written (default .edgelb in the working directory). */
  stateDir?: string;
  /** A real cluster's kubeconfig: no simulation. */
  kubeconfig?: string;
  /** Agent health checks (the demo checks every second so changes show quickly). */
  healthIntervalMs?: number;
  agentLog: Logger;
  /** Each line the worker (workerd) prints. */
  onWorkerLog?: (line: string) => void;
  /** The worker (a workerd child process) listens at `url`: `npm start` records its children then. */
  onWorkerStarted?: (url: string) => void;
  /** What the simulator did (knob annotations). */
  onSimulator?: (level: "info" | "warn", text: string) => void;
  /** How long to wait for each part to come up. */
  timeoutMs?: number;
  /** Simulated pods: start-up until Ready, and how long a terminating one keeps serving. */
  podStartupMs?: number;
  podDrainMs?: number;
  /** Put a node gate in front of every simulated node (origins mode "gate", signed requests); the port, 0 = any. */
  gate?: { port?: number } | undefined;
}

/** A demo app: a Deployment of the echo app and its LoadBalancer Service. */
export interface DemoService {
  name: string;
  hostname: string;
  policy: "Cluster" | "Local";
  replicas: number;
  /** Where its pods run once started (filled in by startDemo). */
  pods: string[];
}

export interface Demo {
  mode: "simulated" | "real";
  workerUrl: string;
  host: string;
  port: number;
  /** The read-only token (EDGELB_READ_TOKEN): status page and GET endpoints. */
  token: string;
  /** The demo cluster's push token (its entry in EDGELB_PUSH_TOKENS): the agent's. */
  pushToken: string;
  /** Opens the status page already logged in with the read token (in the fragment: never sent to a server). */
  statusPageUrl: string;
  kubeconfigPath: string;
  /** Where the push token is written. */
  tokenPath: string;
  /** Where the read token is written. */
  readTokenPath: string;
  cluster?: SimCluster;
  edge: EdgeWorker;
  agent: Agent;
  services: DemoService[];
  /** With --gate: the gates in front of the simulated nodes. */
  gates?: DemoGates;
  startupMs: number;
  stop(): Promise<void>;
}

export const DEMO_SERVICES: DemoService[] = [
  { name: "web", hostname: "web.localhost", policy: "Cluster", replicas: 3, pods: [] },
  { name: "api", hostname: "api.localhost", policy: "Local", replicas: 2, pods: [] },
];

export { DEMO_IMAGE };

const deploymentObject = (s: DemoService): Obj => echoDeployment(s.name, s.replicas);

function serviceObject(s: DemoService): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: s.name,
      namespace: "default",
      labels: { app: s.name },
      annotations: { "edgelb.dev/hostnames": s.hostname },
    },
    spec: {
      type: "LoadBalancer",
      externalTrafficPolicy: s.policy,
      selector: { app: s.name },
      ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
    },
  };
}

async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new DemoError(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface StatusNode {
  name: string;
  address: string;
  healthy: boolean;
  origins: { port: number; ejected: boolean }[];
}
interface StatusService {
  name: string;
  nodePort: number;
  counts: { nodes: number; serving: number };
  endpoints?: { node: string; weight: number; healthy: boolean }[];
}
export interface StatusJson {
  clusters: { name: string; generation: number | null; nodes: StatusNode[]; services: StatusService[] }[];
}

/**
 * A Service's nodes as the worker sees them: the status lists nodes once per
 * cluster, so join a Local Service's endpoints (or, for Cluster, every node)
 * with that list and the edge state at the Service's NodePort.
 */
export function serviceNodes(st: StatusJson, service: string, cluster?: string): { node: string; healthy: boolean; ejected: boolean }[] {
  const c = cluster === undefined ? st.clusters[0] : st.clusters.find((x) => x.name === cluster);
  const svc = c?.services.find((s) => s.name === service);
  if (!c || !svc) return [];
  const byName = new Map(c.nodes.map((n) => [n.name, n]));
  const members = svc.endpoints ? svc.endpoints.map((e) => ({ name: e.node, healthy: e.healthy })) : c.nodes.map((n) => ({ name: n.name, healthy: n.healthy }));
  return members.flatMap((m) => {
    const n = byName.get(m.name);
    if (!n) return [];
    return [{ node: m.name, healthy: m.healthy, ejected: n.origins.some((o) => o.port === svc.nodePort && o.ejected) }];
  });
}

/** The worker's view (GET /__edgelb/v1/status). */
function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

export async function workerStatus(workerUrl: string, token: string): Promise<StatusJson> {
  const res = await fetch(`${workerUrl}/__edgelb/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`status: HTTP ${res.status}`);
  return (await res.json()) as StatusJson;
}

/** Checks the API server answers before anything starts: one clear message instead of retry logs. */
async function checkApiServer(kubeconfig: string, timeoutMs: number): Promise<{ server: string; version: string }> {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(kubeconfig);
  } catch (err) {
    throw new DemoError(`--kubeconfig ${kubeconfig}: cannot load it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new DemoError(`--kubeconfig ${kubeconfig}: its current context "${kc.getCurrentContext()}" names no cluster server`);
  const api = kc.makeApiClient(VersionApi);
  let timer: NodeJS.Timeout | undefined;
  try {
    const version = await Promise.race([
      api.getCode(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
    return { server, version: version.gitVersion };
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string };
    const why = e.cause?.code ?? e.code ?? (e.message ?? String(err)).split("\n")[0];
    throw new DemoError(
      `cannot reach the Kubernetes API server ${server} (context "${kc.getCurrentContext()}" of ${kubeconfig}): ${why}. ` +
        "Check that the cluster is running and that `kubectl --kubeconfig " + kubeconfig + " get nodes` works.",
    );
  } finally {
    clearTimeout(timer);
  }
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const t0 = Date.now();
  const host = opts.host ?? "127.0.0.1";
  const wantPort = opts.port ?? 8787;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const stateDir = path.resolve(opts.stateDir ?? ".edgelb");
  const real = opts.kubeconfig !== undefined;
  // Two tokens, as in production: the agent's can write only the demo cluster,
  // the status link's can only read.
  const token = randomBytes(16).toString("hex");
  const readToken = randomBytes(16).toString("hex");
  const tokenPath = path.join(stateDir, "push-token");
  const readTokenPath = path.join(stateDir, "read-token");
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };

  try {
    await assertPortFree(host, wantPort, "the worker's port", "Stop what uses it, or pick another port: npm start -- --port 8788");
    mkdirSync(stateDir, { recursive: true });

    let cluster: SimCluster | undefined;
    let kubeconfigPath: string;
    let healthzPort = opts.healthzPort ?? 10256;
    if (real) {
      kubeconfigPath = path.resolve(opts.kubeconfig!);
      await checkApiServer(kubeconfigPath, Math.min(timeoutMs, 10_000));
    } else {
      kubeconfigPath = path.join(stateDir, "kubeconfig");
      try {
        cluster = await startCluster({
          nodes: opts.nodes ?? 3,
          addressBase: opts.addressBase ?? "127.0.0",
          firstHost: opts.firstHost ?? 11,
          healthzPort,
          apiPort: opts.apiPort ?? 0,
          kubeconfigPath,
          ...(opts.podStartupMs !== undefined ? { podStartupMs: opts.podStartupMs } : {}),
          ...(opts.podDrainMs !== undefined ? { podDrainMs: opts.podDrainMs } : {}),
        });
      } catch (err) {
        throw clusterListenError(err, { healthzPort, apiPort: opts.apiPort });
      }
      const c = cluster;
      healthzPort = c.healthzPort;
      stops.push(async () => {
        await c.stop();
        rmSync(kubeconfigPath, { force: true });
      });
    }

    let gates: DemoGates | undefined;
    if (opts.gate && cluster) {
      const g = (gates = await startDemoGates(cluster.nodes, opts.agentLog.child({ part: "gate" }), opts.gate.port, DEMO_CLUSTER));
      stops.push(() => g.stop());
    }

    writeFileSync(tokenPath, `${token}\n`, { mode: 0o600 });
    writeFileSync(readTokenPath, `${readToken}\n`, { mode: 0o600 });
    stops.push(async () => {
      rmSync(tokenPath, { force: true });
      rmSync(readTokenPath, { force: true });
    });
    const edge = await startEdgeWorker({
      host,
      port: wantPort,
      vars: {
        EDGELB_PUSH_TOKENS: JSON.stringify({ [DEMO_CLUSTER]: token }),
        EDGELB_READ_TOKEN: readToken,
        EDGELB_CLUSTERS: DEMO_CLUSTER,
        EDGELB_CACHE_TTL: "1",
        EDGELB_REQUEST_LOGS: "true",
        ...(gates ? { EDGELB_GATE_KEY: gates.workerKey } : {}),
      },
      ...(opts.onWorkerLog ? { onLog: opts.onWorkerLog } : {}),
    });
    stops.push(() => edge.stop());
    opts.onWorkerStarted?.(edge.url);
    const workerUrl = edge.url;

    let knobs: Knobs | undefined;
    const services = real ? [] : DEMO_SERVICES.map((s) => ({ ...s, pods: [] as string[] }));
    if (cluster) {
      for (const s of services) {
        cluster.create(deploymentObject(s));
        cluster.create(serviceObject(s));
      }
      seedGatewayDemo(cluster); // lab/demo/gateway.ts: one Gateway, two HTTPRoutes
      knobs = watchKnobs(
        cluster,
        {
          info: (t) => opts.onSimulator?.("info", t),
          warn: (t) => opts.onSimulator?.("warn", t),
        },
        gates,
      );
      const k = knobs;
      stops.push(() => k.stop());
      // The controllers' steps, next to the agent's and worker's lines.
      const unsubscribe = cluster.store.subscribe((e) => {
        const line = narrate({ kind: e.resource.kind, type: e.type, object: e.object, previous: e.previous });
        if (line) opts.onSimulator?.("info", line);
      });
      stops.push(async () => unsubscribe());
      await knobs.settled();
    }

    const interval = opts.healthIntervalMs ?? 1_000;
    const config: AgentConfig = defaultConfig({
      cluster: DEMO_CLUSTER,
      kubeconfig: kubeconfigPath,
      sink: "worker",
      workerUrl,
      pushToken: token,
      // The simulated nodes only have InternalIPs; a real cluster's nodes may have both.
      // Services without an edgelb.dev/hostnames annotation (kubectl expose) are
      // <name>.<namespace>.svc.localhost (like cluster DNS), beside the demo apps' web.localhost.
      ...(real ? { onlyClass: true, defaultDomain: "localhost" } : { addressPreference: ["InternalIP"], defaultDomain: SIM_DEFAULT_DOMAIN }),
      // A local demo's nodes have private or loopback addresses: expected, not warned about.
      allowPrivateAddresses: true,
      health: { mode: "kube-proxy", intervalMs: interval, timeoutMs: Math.round(interval / 2), rise: 2, fall: 2, healthzPort },
      coalesceMs: 100,
      maxDelayMs: 500,
      minWriteIntervalMs: 250,
      logFormat: "pretty",
      ...(gates ? { origins: { mode: "gate" as const, port: gates.port } } : {}),
    });
    const agent = createAgent(config, { log: opts.agentLog });
    // Service status (EXTERNAL-IP in `kubectl get svc`) and Events, on the
    // simulated cluster only; one agent, so no leader election.
    const citizen: AttachedCitizen = attachCitizen(agent, {
      ...CITIZEN_DEFAULTS,
      metricsAddress: "",
      leaderElect: false,
      writeStatus: !real,
    });
    await citizen.start();
    let agentStarted = false;
    // Like the agent's main: the citizen stops (and stops writing) before the agent.
    stops.push(async () => {
      await citizen.stop();
      if (agentStarted) await agent.stop();
    });
    await agent.start();
    agentStarted = true;

    if (real) {
      await until(() => agent.synced().then(() => true), "the agent to list Nodes, Services and EndpointSlices", timeoutMs);
    } else {
      // Ready when the Deployments are and the worker routes both Services to the nodes with their pods.
      await until(
        async () => {
          const c = cluster!;
          for (const s of services) {
            const d = c.get("Deployment", s.name);
            if ((d.status?.availableReplicas ?? 0) < s.replicas) return undefined;
            s.pods = c
              .list("Pod", "default")
              .filter((p) => p.metadata.labels?.app === s.name && !p.metadata.deletionTimestamp)
              .map((p) => p.spec.nodeName as string)
              .sort();
          }
          const st = await workerStatus(workerUrl, readToken);
          const ok = services.every((s) => {
            const got = serviceNodes(st, s.name, DEMO_CLUSTER);
            const want = s.policy === "Local" ? [...new Set(s.pods)] : (cluster?.nodes.map((n) => n.name) ?? []);
            return got.length > 0 && got.filter((n) => n.healthy).length === want.length;
          });
          if (!ok) return undefined;
          // And the nodes' NodePorts take connections (they open once the EndpointSlices say a pod
          // is ready, a moment after the Deployment does): the first request must not see a refusal.
          for (const s of services) {
            const nodePort = c.get("Service", s.name).spec?.ports?.[0]?.nodePort as number | undefined;
            if (!nodePort) return undefined;
            const on = s.policy === "Local" ? c.nodes.filter((n) => s.pods.includes(n.name)) : c.nodes;
            for (const n of on) if (!(await acceptsConnections(n.address, nodePort))) return undefined;
          }
          return true;
        },
        "the worker to route both demo Services",
        timeoutMs,
      );
    }

    const linkHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
    return {
      mode: real ? "real" : "simulated",
      workerUrl,
      host,
      port: edge.port,
      token: readToken,
      pushToken: token,
      statusPageUrl: `http://${linkHost}:${edge.port}/__edgelb/#token=${readToken}`,
      kubeconfigPath,
      tokenPath,
      readTokenPath,
      ...(cluster ? { cluster } : {}),
      edge,
      agent,
      services,
      ...(gates ? { gates } : {}),
      startupMs: Date.now() - t0,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
