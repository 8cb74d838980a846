// The command line: every flag also from an environment variable (shown in
// --help), secrets from files or env, and one clear message with exit code 2
// for anything wrong before the agent starts.
//
// `buildProgram({ run })` returns the commander program; more subcommands
// (e.g. `cleanup`) attach with `program.command(...)` and can reuse
// `addSinkOptions()` and `resolveSinkConfig()`.
import { readFileSync } from "node:fs";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import * as v from "valibot";
import { ClusterName, Region } from "../../worker/snapshot/schema.ts";
import { DEFAULT_GATE_PORT } from "../../worker/snapshot/signing.ts";
import { DEFAULTS, type AgentConfig, type SinkKind } from "../config.ts";
import { defaultLogFormat } from "../log/index.ts";
import { parsePatterns } from "../model/hostnames.ts";
import { MAX_NO_ENDPOINT_HOLD_MS, NO_ENDPOINT_HOLD_MS } from "../model/no-endpoint-hold.ts";
import { ADDRESS_FAMILIES, ADDRESS_TYPES, DEFAULT_PROBE_ADDRESS_PREFERENCE, type AddressFamily, type AddressType, type ProbeAddressPreference } from "../model/node.ts";
import { DEFAULT_MAX_CONCURRENT_PROBES } from "../health/table.ts";

/** A problem with flags, environment or files: print it, exit 2. */
export class CliError extends Error {
  override name = "CliError";
}

export const EXIT_USAGE = 2;

/** "250ms", "5s", "2m", "1h" or plain milliseconds. */
export function parseDuration(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`"${value}" is not a duration (e.g. 250ms, 5s, 2m)`);
  const n = Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "ms"] ?? 1);
  return Math.round(n);
}

/** A whole-number flag value within [min, max] (commander argParser). */
export function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${n} is out of range (${min}–${max})`);
    return n;
  };
}

function addressPreference(value: string): AddressType[] {
  const list = value.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((t) => !(ADDRESS_TYPES as readonly string[]).includes(t));
  if (list.length === 0 || bad.length > 0) {
    throw new InvalidArgumentError(`"${value}" must be a comma-separated list of ${ADDRESS_TYPES.join(", ")}`);
  }
  return list as AddressType[];
}

/** --probe-address-preference: address types like --node-address-preference, or "published". */
function probeAddressPreference(value: string): ProbeAddressPreference {
  if (value.trim() === "published") return "published";
  try {
    return addressPreference(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" must be "published" or a comma-separated list of ${ADDRESS_TYPES.join(", ")}`);
  }
}

/** --endpoint-loss-hold: a duration from 0 (publish at once, no damping) up to the flap cap. */
function endpointLossHold(value: string): number {
  const ms = parseDuration(value);
  if (ms > MAX_NO_ENDPOINT_HOLD_MS) throw new InvalidArgumentError(`"${value}" is longer than ${MAX_NO_ENDPOINT_HOLD_MS / 60_000}m, the longest hold a flapping Service gets`);
  return ms;
}

function hostnamePatterns(value: string): string[] {
  const { patterns, invalid } = parsePatterns(value);
  if (invalid.length > 0 || patterns.length === 0) {
    throw new InvalidArgumentError(`"${value}" must be a comma-separated list of hostnames or '*.' wildcards${invalid.length ? ` (invalid: ${invalid.join(", ")})` : ""}`);
  }
  return patterns;
}

function url(value: string): string {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error();
    return value.replace(/\/+$/, "");
  } catch {
    throw new InvalidArgumentError(`"${value}" is not an http(s) URL`);
  }
}

/** Reads a secret file; trailing newline trimmed (as `kubectl create secret --from-file` leaves it). */
export function readSecretFile(path: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const token = text.trim();
  if (!token) throw new CliError(`${flag} ${path}: the file is empty`);
  return token;
}

function envBool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new CliError(`${name}=${JSON.stringify(raw)}: expected true or false`);
}

/** Options every subcommand that talks to the edge needs. */
export function addSinkOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--cluster <name>", "this cluster's name at the edge; the snapshot is stored under cluster/<name>").env("EDGELB_CLUSTER"))
    .addOption(
      new Option("--sink <kind>", "where snapshots go: the worker's push endpoint, or the Cloudflare KV REST API")
        .choices(["worker", "kv-api"])
        .default("worker")
        .env("EDGELB_SINK"),
    )
    .addOption(new Option("--worker-url <url>", "the edge worker's URL (sink worker), e.g. https://edge.example.com").argParser(url).env("EDGELB_WORKER_URL"))
    .addOption(
      new Option("--push-token-file <path>", "file holding the worker's push token (sink worker); or set EDGELB_PUSH_TOKEN").env("EDGELB_PUSH_TOKEN_FILE"),
    )
    .addOption(new Option("--account-id <id>", "Cloudflare account id (sink kv-api); or CLOUDFLARE_ACCOUNT_ID").env("EDGELB_ACCOUNT_ID"))
    .addOption(new Option("--namespace-id <id>", "Workers KV namespace id the worker reads (sink kv-api)").env("EDGELB_NAMESPACE_ID"))
    .addOption(
      new Option("--api-token-file <path>", "file holding a Cloudflare API token with Workers KV Storage: Edit (sink kv-api); or set CLOUDFLARE_API_TOKEN").env(
        "EDGELB_API_TOKEN_FILE",
      ),
    )
    .addOption(
      new Option("--cloudflare-api-url <url>", "Cloudflare API base URL (for proxies and tests)")
        .argParser(url)
        .default("https://api.cloudflare.com/client/v4")
        .env("EDGELB_CLOUDFLARE_API_URL"),
    );
}

export interface SinkFlags {
  cluster?: string;
  sink: SinkKind;
  workerUrl?: string;
  pushTokenFile?: string;
  accountId?: string;
  namespaceId?: string;
  apiTokenFile?: string;
  cloudflareApiUrl?: string;
}

export type SinkConfig = Pick<
  AgentConfig,
  "cluster" | "sink" | "workerUrl" | "pushToken" | "pushTokenFile" | "accountId" | "namespaceId" | "apiToken" | "apiTokenFile" | "cloudflareApiUrl"
>;

/** Checks the sink flags belong together and reads the secrets. */
export function resolveSinkConfig(o: SinkFlags, env: NodeJS.ProcessEnv, opts: { requireSecrets: boolean } = { requireSecrets: true }): SinkConfig {
  if (!o.cluster) throw new CliError("--cluster is required (or EDGELB_CLUSTER): the name this cluster has at the edge");
  if (!v.is(ClusterName, o.cluster)) throw new CliError(`--cluster "${o.cluster}": must be a DNS label (lowercase letters, digits and '-', at most 63)`);
  const out: SinkConfig = { cluster: o.cluster, sink: o.sink };
  if (o.sink === "worker") {
    if (!o.workerUrl && opts.requireSecrets) throw new CliError("--sink worker needs --worker-url (or EDGELB_WORKER_URL)");
    out.workerUrl = o.workerUrl;
    if (o.pushTokenFile) {
      out.pushToken = readSecretFile(o.pushTokenFile, "--push-token-file");
      out.pushTokenFile = o.pushTokenFile;
    }
    else if (env.EDGELB_PUSH_TOKEN?.trim()) out.pushToken = env.EDGELB_PUSH_TOKEN.trim();
    else if (opts.requireSecrets) throw new CliError("--sink worker needs a push token: --push-token-file PATH or EDGELB_PUSH_TOKEN");
  } else {
    const accountId = o.accountId ?? env.CLOUDFLARE_ACCOUNT_ID;
    if (!accountId && opts.requireSecrets) throw new CliError("--sink kv-api needs --account-id (or EDGELB_ACCOUNT_ID / CLOUDFLARE_ACCOUNT_ID)");
    if (!o.namespaceId && opts.requireSecrets) throw new CliError("--sink kv-api needs --namespace-id (or EDGELB_NAMESPACE_ID)");
    out.accountId = accountId;
    out.namespaceId = o.namespaceId;
    out.cloudflareApiUrl = o.cloudflareApiUrl;
    if (o.apiTokenFile) {
      out.apiToken = readSecretFile(o.apiTokenFile, "--api-token-file");
      out.apiTokenFile = o.apiTokenFile;
    }
    else if (env.CLOUDFLARE_API_TOKEN?.trim()) out.apiToken = env.CLOUDFLARE_API_TOKEN.trim();
    else if (opts.requireSecrets) throw new CliError("--sink kv-api needs an API token: --api-token-file PATH or CLOUDFLARE_API_TOKEN");
  }
  return out;
}

export function addAgentOptions(cmd: Command): Command {
  const d = DEFAULTS;
  return addSinkOptions(cmd)
    .addOption(
      new Option("--kubeconfig <path>", "kubeconfig to use (default: in-cluster service account, then $KUBECONFIG, then ~/.kube/config)").env(
        "EDGELB_KUBECONFIG",
      ),
    )
    .addOption(
      new Option("--load-balancer-class <class>", "spec.loadBalancerClass this agent serves").default(d.loadBalancerClass).env("EDGELB_LOAD_BALANCER_CLASS"),
    )
    .addOption(new Option("--only-class", "serve only Services with our loadBalancerClass, not class-less ones (env: EDGELB_ONLY_CLASS=true)"))
    .addOption(
      new Option("--default-domain <domain>", "hostname for Services without edgelb.dev/hostnames: <name>.<namespace>.<domain>").env("EDGELB_DEFAULT_DOMAIN"),
    )
    .addOption(
      new Option("--node-address-preference <types>", `node address types to publish, first match wins (${ADDRESS_TYPES.join(", ")})`)
        .argParser(addressPreference)
        .default(d.addressPreference, d.addressPreference.join(","))
        .env("EDGELB_NODE_ADDRESS_PREFERENCE"),
    )
    .addOption(
      new Option("--address-family <family>", "which address a dual-stack node publishes (default: its first one of the preferred type)")
        .choices(ADDRESS_FAMILIES)
        .env("EDGELB_ADDRESS_FAMILY"),
    )
    .addOption(
      new Option(
        "--probe-address-preference <types>",
        "node address the agent health-checks (kube-proxy healthz, healthCheckNodePorts, the gate), first match wins, else the published one; " +
          "\"published\" = the address the edge connects to, for an agent outside the cluster, or nodes joined over public addresses (k3s --node-external-ip, several sites) whose InternalIPs it cannot reach",
      )
        .argParser(probeAddressPreference)
        .default(DEFAULT_PROBE_ADDRESS_PREFERENCE, DEFAULT_PROBE_ADDRESS_PREFERENCE.join(","))
        .env("EDGELB_PROBE_ADDRESS_PREFERENCE"),
    )
    .addOption(
      new Option(
        "--allow-private-addresses",
        "node addresses Cloudflare refuses (private, loopback, link-local, CGNAT, unique local) are expected, e.g. a lab: no warnings (env: EDGELB_ALLOW_PRIVATE_ADDRESSES=true)",
      ),
    )
    .addOption(
      new Option("--allowed-hostnames <patterns>", "annotated hostnames must match one of these (e.g. \"*.example.com,example.com\"); default: any")
        .argParser(hostnamePatterns)
        .env("EDGELB_ALLOWED_HOSTNAMES"),
    )
    .addOption(
      new Option("--origins <mode>", "how the edge reaches the nodes: direct = nodeIP:NodePort; gate = the node gate (edgelb-node-gate) on every node, with signed requests (docs/gate.md)")
        .choices(["direct", "gate"])
        .default("direct")
        .env("EDGELB_ORIGINS"),
    )
    .addOption(
      new Option("--gate-port <port>", "the node gate's port on every node (--origins gate)").argParser(integer(1, 65535)).default(DEFAULT_GATE_PORT).env("EDGELB_GATE_PORT"),
    )
    .addOption(
      new Option("--health-check-mode <mode>", "kube-proxy: HTTP GET http://<node>:<healthz-port>/healthz (and healthCheckNodePort for Local Services); tcp: TCP connect only, for clusters without kube-proxy")
        .choices(["kube-proxy", "tcp"])
        .default(d.health.mode)
        .env("EDGELB_HEALTH_CHECK_MODE"),
    )
    .addOption(
      new Option("--health-check-interval <duration>", "time between probes of a node").argParser(parseDuration).default(d.health.intervalMs, "5s").env("EDGELB_HEALTH_CHECK_INTERVAL"),
    )
    .addOption(
      new Option("--health-check-timeout <duration>", "a probe slower than this fails").argParser(parseDuration).default(d.health.timeoutMs, "2s").env("EDGELB_HEALTH_CHECK_TIMEOUT"),
    )
    .addOption(new Option("--rise <n>", "consecutive successes before a node is back in rotation").argParser(integer(1, 100)).default(d.health.rise).env("EDGELB_RISE"))
    .addOption(new Option("--fall <n>", "consecutive failures before a node leaves rotation").argParser(integer(1, 100)).default(d.health.fall).env("EDGELB_FALL"))
    .addOption(
      new Option("--healthz-port <port>", "kube-proxy's healthz port on every node (the port probed in tcp mode)")
        .argParser(integer(1, 65535))
        .default(d.health.healthzPort)
        .env("EDGELB_HEALTHZ_PORT"),
    )
    .addOption(
      new Option("--max-concurrent-probes <n>", "at most this many health probes in flight at once; intervals get ±10% jitter")
        .argParser(integer(1, 10_000))
        .default(DEFAULT_MAX_CONCURRENT_PROBES)
        .env("EDGELB_MAX_CONCURRENT_PROBES"),
    )
    .addOption(
      new Option(
        "--endpoint-loss-hold <duration>",
        "a Service that loses its last ready endpoint is published as such (the edge answers 503) only once that has lasted this long; it doubles for a Service that keeps losing it, up to 5m; 0 = at once, no damping",
      )
        .argParser(endpointLossHold)
        .default(NO_ENDPOINT_HOLD_MS, `${NO_ENDPOINT_HOLD_MS / 1000}s`)
        .env("EDGELB_ENDPOINT_LOSS_HOLD"),
    )
    .addOption(
      new Option("--coalesce <duration>", "quiet period: changes closer together than this become one write").argParser(parseDuration).default(d.coalesceMs, "250ms").env("EDGELB_COALESCE"),
    )
    .addOption(
      new Option("--max-delay <duration>", "longest a change waits for the quiet period").argParser(parseDuration).default(d.maxDelayMs, "2s").env("EDGELB_MAX_DELAY"),
    )
    .addOption(
      new Option("--min-write-interval <duration>", "at least this long between writes (Workers KV allows one write per second per key)")
        .argParser(parseDuration)
        .default(d.minWriteIntervalMs, "1s")
        .env("EDGELB_MIN_WRITE_INTERVAL"),
    )
    .addOption(
      new Option("--daily-write-budget <n>", "writes allowed per UTC day, then changes wait for the next day (KV free tier: 1000); 0 = unlimited")
        .argParser(integer(0, 1_000_000_000))
        .default(d.dailyWriteBudget)
        .env("EDGELB_DAILY_WRITE_BUDGET"),
    )
    .addOption(
      new Option(
        "--heartbeat-interval <duration>",
        "tell the edge this often that the cluster is alive while nothing changes (the edge's EDGELB_STALE_AFTER counts from it); default 60s with --sink worker (no KV write), 10m with --sink kv-api (one KV write each: 144/day); 0 = never",
      )
        .argParser(parseDuration)
        .env("EDGELB_HEARTBEAT_INTERVAL"),
    )
    .addOption(
      new Option("--resync-period <duration>", "re-list every resource this often to catch anything a stuck watch missed; 0 = never")
        .argParser(parseDuration)
        .default(d.resyncMs, "10m")
        .env("EDGELB_RESYNC_PERIOD"),
    )
    .addOption(new Option("--region <name>", "where this cluster runs, e.g. eu-central: shown at the edge and usable in steering").argParser(region).env("EDGELB_REGION"))
    .addOption(
      new Option("--location <lat,lon>", "this cluster's coordinates in degrees, e.g. 50.11,8.68: the edge's proximity steering sends clients to the nearest cluster")
        .argParser(location)
        .env("EDGELB_LOCATION"),
    )
    .addOption(new Option("--dry-run", "compute and print what would be pushed and the diff; push nothing (env: EDGELB_DRY_RUN=true)"))
    .addOption(
      new Option("--take-over", "push even though the edge holds another cluster's snapshot under this --cluster name (that cluster is replaced; env: EDGELB_TAKE_OVER=true)"),
    )
    .addOption(
      new Option("--log-format <format>", "json (one object per line) or pretty (default: pretty on a terminal, else json)").choices(["json", "pretty"]).env("EDGELB_LOG_FORMAT"),
    )
    .addOption(
      new Option("--log-level <level>", "minimum level logged").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info").env("EDGELB_LOG_LEVEL"),
    );
}

interface AgentFlags extends SinkFlags {
  kubeconfig?: string;
  loadBalancerClass: string;
  onlyClass?: boolean;
  defaultDomain?: string;
  nodeAddressPreference: AddressType[];
  addressFamily?: AddressFamily;
  probeAddressPreference: ProbeAddressPreference;
  allowPrivateAddresses?: boolean;
  allowedHostnames?: string[];
  origins: "direct" | "gate";
  gatePort: number;
  healthCheckMode: "kube-proxy" | "tcp";
  healthCheckInterval: number;
  healthCheckTimeout: number;
  rise: number;
  fall: number;
  healthzPort: number;
  maxConcurrentProbes: number;
  endpointLossHold: number;
  coalesce: number;
  maxDelay: number;
  minWriteInterval: number;
  dailyWriteBudget: number;
  heartbeatInterval?: number;
  resyncPeriod: number;
  dryRun?: boolean;
  takeOver?: boolean;
  logFormat?: "json" | "pretty";
  logLevel: AgentConfig["logLevel"];
  region?: string;
  location?: { lat: number; lon: number };
}

/** --region: the snapshot's Region rule, checked here so a typo stops the agent at start, not at the edge. */
function region(value: string): string {
  const v2 = value.trim();
  if (!v.is(Region, v2)) throw new InvalidArgumentError(`"${value}" must be 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit`);
  return v2;
}

/** --location LAT,LON in degrees (latitude first, like map services print them). */
function location(value: string): { lat: number; lon: number } {
  const parts = value.split(",").map((s) => s.trim());
  const [lat, lon] = parts.map((s) => (s === "" ? NaN : Number(s)));
  if (parts.length !== 2 || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat!) > 90 || Math.abs(lon!) > 180) {
    throw new InvalidArgumentError(`"${value}" must be LAT,LON in degrees, latitude -90..90 and longitude -180..180, e.g. 50.11,8.68`);
  }
  return { lat: lat!, lon: lon! };
}

export function resolveAgentConfig(o: AgentFlags, env: NodeJS.ProcessEnv): AgentConfig {
  const dryRun = o.dryRun ?? envBool(env, "EDGELB_DRY_RUN") ?? false;
  const sink = resolveSinkConfig(o, env, { requireSecrets: !dryRun });
  if (o.kubeconfig) {
    try {
      readFileSync(o.kubeconfig);
    } catch (err) {
      throw new CliError(`--kubeconfig ${o.kubeconfig}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  if (o.healthCheckTimeout >= o.healthCheckInterval) {
    throw new CliError(`--health-check-timeout (${o.healthCheckTimeout} ms) must be shorter than --health-check-interval (${o.healthCheckInterval} ms)`);
  }
  if (o.healthCheckInterval < 50) throw new CliError("--health-check-interval must be at least 50ms");
  if (o.maxDelay < o.coalesce) throw new CliError(`--max-delay (${o.maxDelay} ms) must not be shorter than --coalesce (${o.coalesce} ms)`);
  return {
    ...sink,
    kubeconfig: o.kubeconfig,
    loadBalancerClass: o.loadBalancerClass,
    onlyClass: o.onlyClass ?? envBool(env, "EDGELB_ONLY_CLASS") ?? false,
    defaultDomain: o.defaultDomain?.toLowerCase().replace(/^\.|\.$/g, ""),
    addressPreference: o.nodeAddressPreference,
    addressFamily: o.addressFamily,
    probeAddressPreference: o.probeAddressPreference === "published" ? "published" : [...o.probeAddressPreference],
    allowPrivateAddresses: o.allowPrivateAddresses ?? envBool(env, "EDGELB_ALLOW_PRIVATE_ADDRESSES") ?? false,
    allowedHostnames: o.allowedHostnames,
    origins: o.origins === "gate" ? { mode: "gate", port: o.gatePort } : undefined,
    health: {
      mode: o.healthCheckMode,
      intervalMs: o.healthCheckInterval,
      timeoutMs: o.healthCheckTimeout,
      rise: o.rise,
      fall: o.fall,
      healthzPort: o.healthzPort,
      maxConcurrentProbes: o.maxConcurrentProbes,
    },
    noEndpointHoldMs: o.endpointLossHold,
    coalesceMs: o.coalesce,
    maxDelayMs: o.maxDelay,
    minWriteIntervalMs: o.minWriteInterval,
    heartbeatMs: o.heartbeatInterval,
    dailyWriteBudget: o.dailyWriteBudget,
    resyncMs: o.resyncPeriod,
    dryRun,
    takeOver: o.takeOver ?? envBool(env, "EDGELB_TAKE_OVER") ?? false,
    logFormat: o.logFormat ?? defaultLogFormat(),
    logLevel: o.logLevel,
    ...(o.region ? { region: o.region } : {}),
    ...(o.location ? { location: o.location } : {}),
  };
}

export interface ProgramHandlers {
  run: (config: AgentConfig) => Promise<void>;
  env?: NodeJS.ProcessEnv;
}

/** One aligned help row per annotation: name, then its lines. */
function annotationHelp(rows: [name: string, ...lines: string[]][]): string[] {
  const width = Math.max(...rows.map(([name]) => name.length)) + 2;
  return rows.flatMap(([name, ...lines]) => lines.map((l, i) => `  ${(i === 0 ? name : "").padEnd(width)}${l}`));
}

export function buildProgram(h: ProgramHandlers): Command {
  const env = h.env ?? process.env;
  const program = new Command("edgelb-sync-agent")
    .description(
      "Watches Services of type LoadBalancer, Nodes and EndpointSlices, health-checks nodes, and pushes one snapshot " +
        "per cluster to the edgelb worker (or Workers KV). Every flag can also be set from the environment variable shown.",
    )
    .version("0.1.0")
    .showSuggestionAfterError(true)
    .addHelpText(
      "after",
      [
        "",
        "Service annotations:",
        ...annotationHelp([
          ["edgelb.dev/hostnames", "comma-separated hostnames (default <name>.<namespace>.<--default-domain>)"],
          ["edgelb.dev/port", "port name or number to expose (default: the only TCP port, else 'http', else 80)"],
          ["edgelb.dev/backend-protocol", "http (default) or https between the edge and the nodes"],
          ["edgelb.dev/algorithm", "round-robin (default), random, weighted, least-request"],
          ["edgelb.dev/retry-non-idempotent", '"true": retry POST/PATCH on another node even after they reached one', "(default false: a retry could run them twice; set it only for idempotent apps)"],
          ["edgelb.dev/response-timeout", "how long the edge waits for a response head, e.g. 120s, 5m, up to 1h", "(default 30s, then 504; raise it for long polls and slow reports)"],
        ]),
        "  spec.sessionAffinity: ClientIP maps to client-IP affinity at the edge.",
        "  spec.loadBalancerSourceRanges (or service.beta.kubernetes.io/load-balancer-source-ranges): 403 for other clients.",
        "  ports[].appProtocol http/https sets the backend protocol when edgelb.dev/backend-protocol is absent.",
        "Node annotation: edgelb.dev/address  the address the edge connects to (e.g. the public IP of a NAT).",
        "Namespace annotation: edgelb.dev/allowed-hostnames  hostnames its Services may claim (admins only).",
        "",
        "Examples:",
        "  edgelb-sync-agent --cluster home --worker-url https://edge.example.com --push-token-file /var/run/edgelb/token",
        "  CLOUDFLARE_API_TOKEN=… edgelb-sync-agent --cluster home --sink kv-api --account-id ACC --namespace-id NS",
        "  edgelb-sync-agent --cluster home --dry-run --log-format pretty",
      ].join("\n"),
    );
  addAgentOptions(program);
  program.action(async (flags: AgentFlags) => {
    await h.run(resolveAgentConfig(flags, env));
  });
  return program;
}

/** Turns a commander or CLI problem into the one line a user sees. */
export function usageMessage(err: unknown): string | undefined {
  if (err instanceof CliError) return err.message;
  if (err instanceof CommanderError) return err.message.replace(/^error:\s*/, "").replace(/\s*\n\s*/g, " ");
  return undefined;
}

/** Makes a program (and its subcommands) throw instead of exiting, and print nothing itself for errors. */
export function quietErrors(cmd: Command): Command {
  cmd.exitOverride().configureOutput({ outputError: () => {} });
  for (const sub of cmd.commands) quietErrors(sub);
  return cmd;
}
