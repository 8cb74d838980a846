// edgelb-node-gate: the per-node proxy in front of the NodePorts (issue 15).
// Shipped in the agent's image as its own command; deployed as a DaemonSet
// with host networking (deploy/gate). Exit codes as the agent's: 0 clean
// shutdown, 1 runtime failure, 2 bad flags or environment.
import type { AddressInfo } from "node:net";
import { Command, InvalidArgumentError, Option } from "commander";
import type { Logger } from "pino";
import { isIPLiteral } from "../../worker/snapshot/schema.ts";
import { CLUSTER_NAME, DEFAULT_GATE_PORT, DEFAULT_MAX_SKEW_S, NODE_NAME, normalizeAddress } from "../../worker/snapshot/signing.ts";
import { CliError, integer, parseDuration } from "../cli/index.ts";
import { createLogger, defaultLogFormat } from "../log/index.ts";
import { parseListenAddress, startMetricsServer, type MetricsServer } from "../metrics/server.ts";
import { KeyRing } from "./keys/index.ts";
import { createGateMetrics, type GateMetrics } from "./metrics/index.ts";
import { LoggedFailure, runCommand, runIfMain, untilStopped } from "../process/index.ts";
import { ReplayCache } from "./replay/index.ts";
import { createGateServer } from "./server/index.ts";
import { wrapAvailable, type EdgePath } from "./edge-socket/index.ts";

export { DEFAULT_GATE_PORT };
export const DEFAULT_KEYS_DIR = "/etc/edgelb-gate/keys";

export type ConnectMode = "localhost" | "node";
/** How connections from the edge are handled (edge-socket/): auto = wrap when this Node has its bindings, else net. */
export type EdgeMode = "auto" | EdgePath;

export interface GateConfig {
  listen: string;
  connect: ConnectMode;
  /** The node's own address (connect mode "node"). */
  nodeIp?: string | undefined;
  /** This node's Kubernetes name: the gate forwards only requests signed for it. */
  nodeName: string;
  /** This node's edgelb cluster (the agent's --cluster): the gate forwards only requests signed for it. */
  clusterName: string;
  keysDir: string;
  keysReloadMs: number;
  maxSkewMs: number;
  replayCacheSize: number;
  nodePorts: { min: number; max: number };
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** Open connections at most (file descriptors / memory bound against a flood). */
  maxConnections: number;
  /** How connections from the edge are read and written; tests read EDGELB_TEST_GATE_EDGE through their harness. */
  edge?: EdgeMode;
  /** On SIGTERM, requests in flight get this long to finish before connections are cut. */
  drainMs: number;
  /** Admin listener for /metrics and /healthz; "" turns it off. */
  metricsAddress: string;
  logFormat: "json" | "pretty";
  logLevel: string;
}

export const GATE_DEFAULTS = {
  listen: `:${DEFAULT_GATE_PORT}`,
  keysDir: DEFAULT_KEYS_DIR,
  keysReloadMs: 10_000,
  maxSkewMs: DEFAULT_MAX_SKEW_S * 1000,
  replayCacheSize: 100_000,
  nodePorts: { min: 30000, max: 32767 },
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  // At most the worker's own connect timeout (1.5 s): a NodePort that drops connections costs each
  // request this long before the edge tries another node. One SYN retransmit (1 s) still fits.
  connectTimeoutMs: 1_500,
  maxConnections: 4_096,
  edge: "auto" as EdgeMode,
  drainMs: 8_000,
  metricsAddress: ":29081",
};

export interface Gate {
  /** The bound internet-facing address, e.g. http://127.23.1.11:29080 */
  readonly url: string;
  readonly port: number;
  /** How connections from the edge are handled (--edge, resolved). */
  readonly edge: EdgePath;
  readonly metrics: GateMetrics;
  readonly keys: KeyRing;
  readonly log: Logger;
  readonly metricsServer: MetricsServer | undefined;
  close(): Promise<void>;
}

export interface GateDeps {
  log?: Logger;
  /** Keys given directly (tests, the lab); otherwise read from keysDir. */
  keys?: KeyRing;
  now?: () => number;
}

export async function startGate(config: GateConfig, deps: GateDeps = {}): Promise<Gate> {
  const log = deps.log ?? createLogger({ format: config.logFormat, level: config.logLevel, component: "edgelb-node-gate" });
  const maxSkewS = Math.max(1, Math.round(config.maxSkewMs / 1000));
  const replay = new ReplayCache({ capacity: config.replayCacheSize, windowS: maxSkewS });
  const metrics = createGateMetrics({ replaySize: () => replay.size });
  const keys = deps.keys ?? new KeyRing();
  if (!deps.keys) keys.watch(config.keysDir, config.keysReloadMs, log as never);
  metrics.keys.set(keys.size);
  const keysGauge = setInterval(() => metrics.keys.set(keys.size), 1_000);
  keysGauge.unref();
  const upstreamHost = config.connect === "localhost" ? "127.0.0.1" : config.nodeIp!;
  const edgeMode = config.edge ?? "auto";
  const edge = edgePath(edgeMode);
  metrics.info.set({ edge }, 1);
  const fallback = edgeFallbackReason(edgeMode, edge);
  if (fallback) log.warn({ event: "gate.edge_fallback", edge, node: process.version }, `--edge auto: ${fallback}.`);
  const server = createGateServer({
    keys,
    replay,
    metrics,
    log,
    upstreamHost,
    nodeName: config.nodeName,
    clusterName: config.clusterName,
    maxSkewS,
    ports: config.nodePorts,
    headersTimeoutMs: config.headersTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    maxConnections: config.maxConnections,
    edge,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const { host, port } = parseListenAddress(config.listen);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(keysGauge);
    if (!deps.keys) keys.stop();
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    // Never share the port: whoever holds it would get the edge's signed requests (a hostNetwork or
    // hostPort pod, docs/gate.md#pod-security). Exit instead, so the pod restarts and is seen not ready.
    const message = `the gate's port ${config.listen} is already taken on this node by another process or pod (a hostNetwork pod, or a pod with hostPort ${port}): the gate does not start. Find it (ss -ltnp 'sport = :${port}') and remove it; keep tenant namespaces at Pod Security baseline, which forbids both`;
    log.error({ event: "gate.port_taken", listen: config.listen }, `${message}.`);
    throw new LoggedFailure(message);
  }
  const bound = server.address() as AddressInfo;
  const shown = bound.family === "IPv6" ? `[${bound.address}]` : bound.address;
  const metricsServer = config.metricsAddress
    ? await startMetricsServer(config.metricsAddress, metrics.registry, () => ({ ready: keys.size > 0, reason: keys.size > 0 ? `${keys.size} key(s) loaded` : "no key loaded" }))
    : undefined;
  log.info(
    {
      event: "gate.started",
      listen: `${shown}:${bound.port}`,
      connect: config.connect,
      upstream: upstreamHost,
      node: config.nodeName,
      cluster: config.clusterName,
      nodePorts: `${config.nodePorts.min}-${config.nodePorts.max}`,
      maxSkewSeconds: maxSkewS,
      keys: keys.ids(),
      metrics: metricsServer?.url ?? null,
      edge,
    },
    `Node gate for node ${config.nodeName} of cluster ${config.clusterName} listening on ${shown}:${bound.port}; forwarding requests signed for it to ${upstreamHost}:<NodePort>.${keys.size === 0 ? " No key loaded yet: every request is refused." : ""}`,
  );
  return {
    url: `http://${shown}:${bound.port}`,
    port: bound.port,
    edge,
    metrics,
    keys,
    log,
    metricsServer,
    async close() {
      clearInterval(keysGauge);
      if (!deps.keys) keys.stop();
      // Stop listening, drop idle keep-alive connections, let requests in flight finish up to the
      // drain deadline (a rollout must not cut forwarded requests), then cut whatever is left.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Connections that finish a response now close instead of idling until the deadline.
      const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
      let deadline: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([closed, new Promise<void>((resolve) => (deadline = setTimeout(resolve, config.drainMs)))]);
      clearInterval(idleSweep);
      clearTimeout(deadline);
      server.closeAllConnections();
      await closed;
      await metricsServer?.close();
    },
  };
}

/** The edge path for a mode; "wrap" asked for on a Node without its bindings is a startup error, not a silent fallback. */
export function edgePath(mode: EdgeMode, available: boolean = wrapAvailable()): EdgePath {
  if (mode === "net") return "net";
  if (available) return "wrap";
  if (mode === "wrap") throw new CliError(`--edge wrap: this Node (${process.version}) does not have the tcp_wrap/stream_wrap bindings the wrap path needs; use --edge auto or net`);
  return "net";
}

/** Why `--edge auto` chose net, for the startup warning; undefined when it did not fall back. */
export function edgeFallbackReason(mode: EdgeMode, edge: EdgePath): string | undefined {
  if (mode !== "auto" || edge !== "net") return undefined;
  return `this Node (${process.version}) does not have the tcp_wrap/stream_wrap bindings the faster wrap path needs, so connections from the edge use node:net sockets (more CPU per request; see docs/gate.md#costs-and-limits)`;
}

function duration(value: string): number {
  const ms = parseDuration(value);
  if (ms <= 0) throw new InvalidArgumentError(`"${value}" must be longer than zero`);
  return ms;
}

function portRange(value: string): { min: number; max: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(value.trim());
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!m || min < 1 || max > 65535 || min > max) throw new InvalidArgumentError(`"${value}" must be a port range like 30000-32767`);
  return { min, max };
}

export function buildGateProgram(run: (config: GateConfig) => Promise<void>, env: NodeJS.ProcessEnv = process.env): Command {
  const d = GATE_DEFAULTS;
  const program = new Command("edgelb-node-gate")
    .description(
      "The node gate: accepts only requests signed by the edgelb worker (HMAC, key per cluster) and forwards them to the NodePort they name on this node. " +
        "Run it on every node (DaemonSet, host network) and close the NodePort range to the internet; see docs/gate.md.",
    )
    .addOption(new Option("--listen <address>", `address and port facing the internet (keep it outside the NodePort range)`).default(d.listen).env("EDGELB_GATE_LISTEN"))
    .addOption(
      new Option("--connect <mode>", "how NodePorts are reached: node = the node's own address (works with every kube-proxy mode), localhost = 127.0.0.1 (not served by kube-proxy in nftables or IPVS mode)")
        .choices(["node", "localhost"])
        .default("node")
        .env("EDGELB_GATE_CONNECT"),
    )
    .addOption(new Option("--node-ip <address>", "this node's address, for --connect node (the DaemonSet sets it from status.hostIP)").env("NODE_IP"))
    .addOption(
      new Option("--node-name <name>", "this node's Kubernetes Node name (required; the DaemonSet sets it from spec.nodeName): only requests signed for it pass").env("NODE_NAME"),
    )
    .addOption(
      new Option("--cluster <name>", "this node's edgelb cluster name, the agent's --cluster (required; the DaemonSet reads it from the edgelb-cluster ConfigMap): only requests signed for it pass").env("EDGELB_CLUSTER"),
    )
    .addOption(new Option("--keys-dir <dir>", "directory with one file per key, named by key id (the mounted Secret)").default(d.keysDir).env("EDGELB_GATE_KEYS_DIR"))
    .addOption(new Option("--keys-reload <duration>", "how often the key directory is re-read").argParser(duration).default(d.keysReloadMs, "10s").env("EDGELB_GATE_KEYS_RELOAD"))
    .addOption(new Option("--max-skew <duration>", "a signature's timestamp may be this far from the gate's clock").argParser(duration).default(d.maxSkewMs, "30s").env("EDGELB_GATE_MAX_SKEW"))
    .addOption(
      new Option("--replay-cache-size <n>", "nonces remembered to refuse replays (when full, the window shrinks; replays stay refused)")
        .argParser(integer(1, 10_000_000))
        .default(d.replayCacheSize)
        .env("EDGELB_GATE_REPLAY_CACHE_SIZE"),
    )
    .addOption(new Option("--node-ports <range>", "ports a signature may name (the cluster's NodePort range)").argParser(portRange).default(d.nodePorts, "30000-32767").env("EDGELB_GATE_NODE_PORTS"))
    .addOption(new Option("--headers-timeout <duration>", "a request head must arrive within this (slowloris)").argParser(duration).default(d.headersTimeoutMs, "10s").env("EDGELB_GATE_HEADERS_TIMEOUT"))
    .addOption(new Option("--keep-alive-timeout <duration>", "idle connections from the edge close after this").argParser(duration).default(d.keepAliveTimeoutMs, "5s").env("EDGELB_GATE_KEEP_ALIVE_TIMEOUT"))
    .addOption(new Option("--connect-timeout <duration>", "connecting to a NodePort gives up after this (502)").argParser(duration).default(d.connectTimeoutMs, "1.5s").env("EDGELB_GATE_CONNECT_TIMEOUT"))
    .addOption(new Option("--max-connections <n>", "open connections at most (bounds file descriptors and memory under a flood)").argParser(integer(1, 1_000_000)).default(d.maxConnections).env("EDGELB_GATE_MAX_CONNECTIONS"))
    .addOption(
      new Option("--edge <path>", "how connections from the edge are handled: wrap = Node's TCP handle read and written directly (fastest; Node internals), net = node:net sockets; auto = wrap when this Node has it")
        .choices(["auto", "wrap", "net"])
        .default(d.edge)
        .env("EDGELB_GATE_EDGE"),
    )
    .addOption(new Option("--drain <duration>", "on SIGTERM, requests in flight may finish for this long (keep it under the pod's termination grace period)").argParser(duration).default(d.drainMs, "8s").env("EDGELB_GATE_DRAIN"))
    .addOption(new Option("--metrics-address <address>", "admin listener for /metrics and /healthz (firewall it); empty turns it off").default(d.metricsAddress).env("EDGELB_GATE_METRICS_ADDRESS"))
    .addOption(new Option("--log-format <format>", "json or pretty").choices(["json", "pretty"]).default(defaultLogFormat()).env("EDGELB_LOG_FORMAT"))
    .addOption(new Option("--log-level <level>", "trace, debug, info, warn, error").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info").env("EDGELB_LOG_LEVEL"))
    .action(async (o: Record<string, unknown>) => {
      const config = resolveGateConfig(o, env);
      await run(config);
    });
  return program;
}

export function resolveGateConfig(o: Record<string, unknown>, _env: NodeJS.ProcessEnv): GateConfig {
  const connect = o.connect as ConnectMode;
  const nodeIp = (o.nodeIp as string | undefined)?.trim() || undefined;
  if (connect === "node" && !nodeIp) throw new CliError("--connect node needs --node-ip (or NODE_IP, from the downward API: status.hostIP); or use --connect localhost");
  if (nodeIp && !isIPLiteral(normalizeAddress(nodeIp))) throw new CliError(`--node-ip "${nodeIp}": not an IP address`);
  const nodeName = (o.nodeName as string | undefined)?.trim() || undefined;
  if (!nodeName) throw new CliError("--node-name is required (or NODE_NAME, from the downward API: spec.nodeName): the gate forwards only requests signed for this node");
  if (!NODE_NAME.test(nodeName)) throw new CliError(`--node-name "${nodeName.slice(0, 253)}": not a Kubernetes Node name (lowercase letters, digits, '-' and '.')`);
  const clusterName = (o.cluster as string | undefined)?.trim() || undefined;
  if (!clusterName) throw new CliError("--cluster is required (or EDGELB_CLUSTER, the agent's cluster name): the gate forwards only requests signed for this cluster");
  if (!CLUSTER_NAME.test(clusterName)) throw new CliError(`--cluster "${clusterName.slice(0, 63)}": not a cluster name (a DNS label: lowercase letters, digits and '-', at most 63)`);
  try {
    parseListenAddress(o.listen as string);
    if (o.metricsAddress) parseListenAddress(o.metricsAddress as string);
  } catch (err) {
    throw new CliError((err as Error).message.replace("metrics address", "address"));
  }
  return {
    listen: o.listen as string,
    connect,
    nodeIp: nodeIp ? normalizeAddress(nodeIp) : undefined,
    nodeName,
    clusterName,
    keysDir: o.keysDir as string,
    keysReloadMs: o.keysReload as number,
    maxSkewMs: o.maxSkew as number,
    replayCacheSize: o.replayCacheSize as number,
    nodePorts: o.nodePorts as { min: number; max: number },
    headersTimeoutMs: o.headersTimeout as number,
    keepAliveTimeoutMs: o.keepAliveTimeout as number,
    connectTimeoutMs: o.connectTimeout as number,
    maxConnections: o.maxConnections as number,
    edge: o.edge as EdgeMode,
    drainMs: o.drain as number,
    metricsAddress: (o.metricsAddress as string | undefined) ?? "",
    logFormat: o.logFormat as "json" | "pretty",
    logLevel: o.logLevel as string,
  };
}

/** Runs the gate until SIGTERM/SIGINT. */
async function runGate(config: GateConfig): Promise<void> {
  const gate = await startGate(config);
  const signal = await untilStopped();
  gate.log.info({ event: "gate.stopping", signal }, `Received ${signal}, shutting down.`);
  await gate.close();
}

export function main(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env, run = runGate): Promise<number> {
  return runCommand(buildGateProgram(run, env), argv);
}

runIfMain(import.meta.url, () => main());
