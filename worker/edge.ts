// All state of one isolate in one object: config, passive health, in-flight
// counts, balancer state. The default export holds one; tests make their own.
//
// Who answers a request: on a hostname a snapshot routes, the app, for every
// path. /__edgelb/* (status page, control API) answers only on the worker's
// own control hostnames, so an app's scripts never share an origin with the
// status page and its token: those in EDGELB_CONTROL_HOSTS when set, else any
// hostname no snapshot routes. A *.workers.dev name is the worker's own and is
// never proxied to an app.
import { Hono, type Context } from "hono";
import { newBalancerState, type BalancerState } from "./balancer/index.ts";
import { ConfigStore, type ConfigKV } from "./config/index.ts";
import { FastPath } from "./config/fast/index.ts";
import { DEFAULT_INSTANCE, LocationCopy, type LocationCache } from "./config/location/index.ts";
import { GENERATIONS_OBJECT, type GenerationsApi, type WatchableGenerationsApi } from "./generations/api.ts";
import { hostRoutes, lookupHost, normalizeHost, type Route } from "./config/routes.ts";
import { HostCache } from "./config/host-cache/index.ts";
import { TokenTable } from "./control/auth/index.ts";
import { controlApp } from "./control/index.ts";
import { lookupGateway, type GatewayTable } from "./gateway/index.ts";
import { serveGateway } from "./gateway/serve/index.ts";
import { gatewayStatus, type GatewayClusterStatus } from "./gateway/status/index.ts";
import { readSettings, type Env, type Settings } from "./env/index.ts";
import { healthSettings, PassiveHealth, type HealthOptions, type HealthVars } from "./health/index.ts";
import { createLogger, type Logger } from "./log/index.ts";
import { RetryBudget } from "./proxy/budget.ts";
import { proxy } from "./proxy/index.ts";
import { ConnectHedges } from "./proxy/hedge/index.ts";
import { requestIdOf } from "./proxy/headers.ts";
import { GateSigner, readGateKeys, type GateKeyVars } from "./sign/index.ts";
import { enforceSourceRanges, sourcesAllow } from "./source-ranges/index.ts";
import { statusPage } from "./status-page/index.ts";
import { ClaimLog, type HostClaims } from "./steering/claims.ts";
import { clientPlace } from "./steering/geo.ts";
import { clusterFacts, requestCf, steerRequest, type SteeringDeps } from "./steering/request.ts";
import { ruleFor, steer, type ClientPlace } from "./steering/index.ts";
import { loadSteering, type SteeringState } from "./steering/store.ts";
import { defaultTransports, type Transports } from "./transport/index.ts";
import { pathAndQuery } from "./transport/target/index.ts";

const CONTROL_PREFIX = "/__edgelb";

function isControlPath(path: string): boolean {
  return path.startsWith(CONTROL_PREFIX) && (path.length === CONTROL_PREFIX.length || path.charCodeAt(CONTROL_PREFIX.length) === 47 /* / */);
}

/** The worker's own workers.dev name: never an app's. */
function isWorkersDev(host: string): boolean {
  return host === "workers.dev" || host.endsWith(".workers.dev");
}

/** Loopback names: `npm start` and `wrangler dev` reach the worker by these. */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * The hostnames that serve /__edgelb/* without EDGELB_CONTROL_HOSTS: the
 * worker's own *.workers.dev name and loopback. Never an app's hostname, even
 * one no snapshot routes right now (its origin would hold the status token).
 */
function isDefaultControlHost(host: string): boolean {
  return isWorkersDev(host) || LOOPBACK_HOSTS.has(host);
}

/** A short answer that names nothing of the configuration; the log line with the same id has the details. */
function plainError(status: number, message: string, requestId: string, extra: Record<string, string> = {}): Response {
  return new Response(`edgelb: ${message} (request ${requestId})\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "x-request-id": requestId, ...extra },
  });
}

export interface EdgeOptions {
  env: Env;
  /** The KV the config store reads (default env.EDGELB_KV); tests pass one that fails. */
  kv?: ConfigKV;
  /** The location's cache (caches.default in the worker) that its isolates share snapshots through; none: each isolate reads KV. */
  cache?: LocationCache;
  transports?: Transports;
  log?: Logger;
  now?: () => number;
  random?: () => number;
  health?: Omit<HealthOptions, "now" | "log">;
  /**
   * The local lab only (lab/edge/local-worker.ts): the x-edgelb-test-cf header stands in for
   * request.cf. Never read from a var: the deployed entry (worker/index.ts) cannot turn it on.
   */
  localMode?: boolean;
}

export interface Edge {
  readonly settings: Settings;
  readonly config: ConfigStore;
  readonly health: PassiveHealth;
  readonly app: Hono;
  fetch(request: Request, ctx?: Pick<ExecutionContext, "waitUntil">): Promise<Response>;
  status(): EdgeStatus;
}

type WaitUntil = Pick<ExecutionContext, "waitUntil">;

/** A hostname the plain path serves: its normalized name and its one route. */
interface PlainHost {
  host: string;
  route: Route;
}

/** The path of a serialized URL, without its query (for control paths and log lines). */
function pathOf(url: string): string {
  const target = pathAndQuery(url);
  const q = target.indexOf("?");
  return q === -1 ? target : target.slice(0, q);
}

/** The runtime's execution context, if this request has one (tests may call app.fetch without). */
function executionCtxOf(c: Context): ExecutionContext | undefined {
  try {
    return c.executionCtx as unknown as ExecutionContext;
  } catch {
    return undefined;
  }
}

export function createEdge(opts: EdgeOptions): Edge {
  const settings = readSettings(opts.env);
  const now = opts.now ?? Date.now;
  const log = opts.log ?? createLogger();
  for (const problem of settings.problems) log("warn", "settings.invalid", { problem });
  const config = new ConfigStore({
    kv: opts.kv ?? opts.env.EDGELB_KV,
    clusters: settings.clusters,
    ttlMs: settings.cacheTtlMs,
    log,
    now,
    ...(opts.cache ? { location: new LocationCopy(opts.cache, instanceOf(opts.env)) } : {}),
    ...(fastPath(opts, settings, now, log)),
  });
  // Outlier detection is tuned by its own vars (worker/health); options given in code win.
  const ejection = healthSettings(opts.env as HealthVars);
  for (const problem of ejection.problems) log("warn", "settings.invalid", { problem });
  const health = new PassiveHealth({ ...ejection.options, ...opts.health, now, log });
  const gateKeys = readGateKeys(opts.env as GateKeyVars);
  for (const problem of gateKeys.problems) log("warn", "settings.invalid", { problem });
  const inFlight = new Map<string, number>();
  const balancers = new WeakMap<Route, BalancerState>();
  const startedAt = now();
  const deps = {
    health,
    inFlight,
    balancer: (route: Route) => {
      let s = balancers.get(route);
      if (!s) balancers.set(route, (s = newBalancerState()));
      return s;
    },
    transports: opts.transports ?? defaultTransports,
    workerTransport: settings.transport,
    log,
    requestLogs: settings.requestLogs,
    echoRequestId: settings.echoRequestId,
    forwarded: settings.forwarded,
    random: opts.random ?? Math.random,
    now,
    retryBudget: new RetryBudget({ now }),
    hedges: new ConnectHedges(now),
    signer: new GateSigner(gateKeys, { now }),
    clientBodyTimeoutMs: clientBodyTimeoutMs((opts.env as { EDGELB_CLIENT_BODY_TIMEOUT_MS?: string }).EDGELB_CLIENT_BODY_TIMEOUT_MS),
  };

  // Steering (worker/steering): loaded with the first request (it may read the last good setting from KV).
  const steeringVars = opts.env;
  const localMode = opts.localMode === true;
  if (localMode) log("warn", "settings.local_mode", { problem: `local mode (the lab's entry): the ${"x-edgelb-test-cf"} header overrides request.cf` });
  if ((steeringVars as { EDGELB_LOCAL_MODE?: string }).EDGELB_LOCAL_MODE !== undefined) {
    log("warn", "settings.invalid", { problem: "EDGELB_LOCAL_MODE is no longer read: a var cannot turn on the test cf header (only the local lab's entry does)" });
  }
  const staleAfterMs = staleAfter(steeringVars.EDGELB_STALE_AFTER, log);
  let steeringLoad: Promise<SteeringState> | undefined;
  let steeringState: SteeringState | undefined;
  let claimLog: ClaimLog | undefined;
  const steeringDeps: SteeringDeps = {
    steering: { exact: new Map(), wildcard: new Map(), rules: [] },
    staleAfterMs,
    localMode,
    cluster: (name) => {
      const s = config.cluster(name);
      return s?.snapshot ? { loadedAt: s.loadedAt, heartbeatAt: s.heartbeatAt, location: s.snapshot.location, failOpen: s.snapshot.failOpen } : undefined;
    },
    now,
    random: opts.random ?? Math.random,
  };
  const steeringReady = async (waitUntil: (p: Promise<unknown>) => void): Promise<ClaimLog> => {
    if (claimLog) return claimLog;
    steeringLoad ??= loadSteering(steeringVars.EDGELB_STEERING, settings.clusters, opts.env.EDGELB_KV, log, waitUntil);
    steeringState = await steeringLoad;
    steeringDeps.steering = steeringState.steering;
    return (claimLog ??= new ClaimLog(steeringState.steering, log));
  };

  const status = (request?: Request): EdgeStatus => {
    const base = edgeStatus({ config, health, inFlight, now, startedAt, settings });
    const sample = clientPlace(request ? requestCf(request, localMode) : undefined);
    return { ...base, steering: steeringStatus(claimLog?.check(config.routes) ?? [], steeringState, steeringDeps, sample, config) };
  };

  const app = new Hono();
  // Hands a background refresh to the runtime so it may outlive the response.
  const background = (ctx: WaitUntil | undefined) => (p: Promise<unknown>) => {
    const guarded = p.catch((err: unknown) => log("error", "background.failed", { error: String(err) }));
    // No execution context (a test calling app.fetch directly): the promise just runs.
    ctx?.waitUntil(guarded);
  };
  // Status page (worker/status-page): /__edgelb/ and its assets, no token; data needs one.
  const control = new Hono();
  control.route(CONTROL_PREFIX, statusPage());
  control.route(
    CONTROL_PREFIX,
    controlApp({
      kv: opts.env.EDGELB_KV,
      config,
      tokens: new TokenTable(settings),
      maxPushBytes: settings.maxPushBytes,
      log,
      status,
      now,
      heartbeatKvEveryMs: heartbeatKvEvery(staleAfterMs),
      // The generations object decides heartbeats' KV refreshes when the fast path publishes to it (wx18).
      ...generationsFor(opts, settings.fastCheckMs),
      // A claim the push made that another cluster owns is logged now, not at the hostname's first request.
      onInstalled: async () => {
        (await steeringReady(() => {})).check(config.routes);
      },
    }),
  );
  const toControl = (request: Request, ctx: WaitUntil | undefined) => control.fetch(request, opts.env, ctx as ExecutionContext | undefined);
  const notServed = (request: Request, host: string, route?: Route) => {
    const requestId = requestIdOf(request);
    if (route) {
      // A Service claims a control hostname: it is not proxied, and the operator should know.
      log("warn", "host.reserved", { requestId, host, services: route.services.map((s) => `${s.cluster}/${s.id}`) });
    } else {
      log("info", "host.unknown", { requestId, host: host.slice(0, 253), path: pathOf(request.url).slice(0, 200) });
    }
    return plainError(404, "this hostname is not served here", requestId);
  };
  const controlHosts = settings.controlHosts;
  const unavailable = (request: Request, host: string, retryInMs: number = config.unavailableFor() ?? 1000) => {
    // Some cluster was never read: this hostname may be its. Not a 404 that
    // clients and caches would believe, but "soon".
    const requestId = requestIdOf(request);
    log("warn", "config.unavailable_answered", { requestId, host: host.slice(0, 253), retryInMs });
    return plainError(503, "this hostname's configuration is not available yet; try again shortly", requestId, {
      "retry-after": String(Math.max(1, Math.ceil(retryInMs / 1000))),
      "cache-control": "no-store",
    });
  };

  // Raw Host value → its plain route: a hostname one cluster's Service serves with no steering rule,
  // no source ranges and no gateway route winning. Everything that decision read (the normalized
  // name, the control-host checks, the route, gateway and steering lookups) depends only on the
  // route index, the gateway index and the steering setting, so it holds while those do.
  const plainHosts = new HostCache<PlainHost>();
  const rememberPlain = (raw: string, host: string, route: Route) => plainHosts.set(raw, config.routes, config.gateways, steeringDeps.steering, { host, route });

  // Every request comes here straight from the runtime: no router (hono's Context, matching and
  // middleware cost more than the one host check that tells data-plane requests from control ones).
  const serve = (request: Request, ctx: WaitUntil | undefined): Promise<Response> => {
    try {
      // Read once (a runtime call): the proxy's field pass takes the same object.
      const headers = request.headers;
      const raw = headers.get("host");
      const waitUntil = background(ctx);
      if (raw !== null && claimLog !== undefined) {
        // A hostname routed before under the same routes, gateways and steering: one lookup.
        const plain = plainHosts.get(raw, config.routes, config.gateways, steeringDeps.steering);
        if (plain !== undefined && config.readyNow(waitUntil)) return servePlain(request, plain, waitUntil, headers);
      }
      const host = normalizeHost(raw ?? new URL(request.url).host);
      if (controlHosts ? controlHosts.has(host) : isDefaultControlHost(host)) {
        if (isControlPath(pathOf(request.url))) return serveControl(request, ctx, waitUntil);
        return Promise.resolve(notServed(request, host, lookupHost(config.routes, host)));
      }
      // Config and steering loaded (every request of an isolate but its first): nothing to wait
      // for, so no async layer of its own (each costs a promise and a resumption per request).
      if (claimLog !== undefined && config.readyNow(waitUntil)) {
        const answer = dispatch(request, host, claimLog, waitUntil, raw);
        return answer instanceof Response ? Promise.resolve(answer) : answer;
      }
      return serveLoading(request, host, waitUntil, raw);
    } catch (err) {
      return Promise.reject(err);
    }
  };
  const serveControl = async (request: Request, ctx: WaitUntil | undefined, waitUntil: (p: Promise<unknown>) => void): Promise<Response> => {
    // Loaded first, so the status of a fresh isolate shows the snapshots (or why KV failed).
    await config.ready(waitUntil);
    await steeringReady(waitUntil);
    return toControl(request, ctx);
  };
  /** The first requests of an isolate: they wait for the config and the steering setting. */
  const serveLoading = async (request: Request, host: string, waitUntil: (p: Promise<unknown>) => void, raw: string | null): Promise<Response> => {
    await config.ready(waitUntil);
    const claims = claimLog ?? (await steeringReady(waitUntil));
    return dispatch(request, host, claims, waitUntil, raw);
  };
  /** dispatch's plain branch for a remembered hostname: only what can change per request is checked again. */
  const servePlain = (request: Request, plain: PlainHost, waitUntil: (p: Promise<unknown>) => void, headers: Headers): Promise<Response> => {
    // The refused claims were logged when the entry was made: the memo holds for that route index only.
    const waitMs = config.unavailableBefore(plain.route.cluster);
    if (waitMs !== undefined) return Promise.resolve(unavailable(request, plain.host, waitMs));
    config.busy(waitUntil);
    return proxy(request, plain.route, deps, undefined, { waitUntil, headers });
  };
  /** Who answers a data-plane request once the config is ready: an app's origins, or the edge itself. */
  const dispatch = (request: Request, host: string, claims: ClaimLog, waitUntil: (p: Promise<unknown>) => void, raw: string | null): Response | Promise<Response> => {
    const route = lookupHost(config.routes, host);
    // Gateway API hostnames: within one cluster, an exact one beats a Service's wildcard and a
    // Service's own name beats any route; between clusters, the hostname's owner serves (below).
    const gateway = isWorkersDev(host) ? undefined : lookupGateway(config.gateways, host);
    if (gateway && (!route || gatewayWins(route, gateway, host))) {
      // A wildcard or `*` route must not answer a hostname that an unread cluster may own exactly: "soon", as below.
      if (gateway.pattern.startsWith("*") && config.unavailableFor() !== undefined) return unavailable(request, host);
      const owner = gatewayOwner(gateway, settings.clusters);
      if (owner !== undefined) {
        // An exact route too: an earlier cluster that could not be read may own the name through a Service.
        const waitMs = config.unavailableBefore(owner);
        if (waitMs !== undefined) return unavailable(request, host, waitMs);
        // The steering rule decides which clusters may serve the hostname, for routes as for Services.
        const rule = ruleFor(steeringDeps.steering, host);
        if (rule && !rule.clusters.includes(owner)) {
          const requestId = requestIdOf(request);
          log("warn", "routes.claim_refused", { requestId, host: host.slice(0, 253), cluster: owner, kind: "HTTPRoute", reason: "the steering rule for this hostname does not list the cluster" });
          return plainError(503, "no server is ready for this site", requestId, { "retry-after": "10", "cache-control": "no-store" });
        }
      }
      return serveGateway(request, gateway, host, deps, (req, r, originHost) => {
        // Only a request that goes to an origin makes the location busy (the fast path's held check).
        config.busy(waitUntil);
        return proxy(req, r, deps, undefined, originHost === undefined ? { waitUntil } : { originHost, waitUntil });
      });
    }
    if (route && !isWorkersDev(host)) {
      // Logs a cluster's refused claim on a hostname once, when the index changes.
      claims.check(config.routes);
      const steered = steerRequest(config.routes, route, host, request, steeringDeps);
      if (!steered) {
        // An earlier cluster could not be read (a KV error, not a deletion): it may own this
        // hostname, so a later claimer does not get it here; "soon", as for an unknown hostname.
        const waitMs = config.unavailableBefore(route.cluster);
        if (waitMs !== undefined) return unavailable(request, host, waitMs);
        if (route.sourceRanges !== undefined && route.sourceRanges.length > 0) {
          const denied = enforceSourceRanges(route.sourceRanges, request);
          if (denied) return denied;
        } else if (raw !== null) {
          // Every check above but unavailableBefore depends on the routes, gateways and steering only.
          rememberPlain(raw, host, route);
        }
        config.busy(waitUntil);
        return proxy(request, route, deps, undefined, { waitUntil });
      }
      if (steered.routes.length === 0) {
        const requestId = requestIdOf(request);
        log("info", "steering.no_cluster", { requestId, host: host.slice(0, 253), skipped: steered.decision.skipped });
        return plainError(503, "no server is ready for this site", requestId, { "retry-after": "10", "cache-control": "no-store" });
      }
      if (steered.decision.failedOpen) log("warn", "steering.fail_open", { host: host.slice(0, 253), skipped: steered.decision.skipped });
      let routes = steered.routes;
      const first = routes[0]!;
      const denied = enforceSourceRanges(first.sourceRanges, request);
      if (denied) {
        // Each cluster's Service has its own loadBalancerSourceRanges: a later cluster that allows
        // the client serves it; only when none does is the first one's refusal the answer.
        const allowing = routes.findIndex((r) => sourcesAllow(r.sourceRanges, request));
        if (allowing === -1) return denied;
        routes = routes.slice(allowing);
      }
      // The proxy checks each later cluster's ranges again before it moves there (moveCluster).
      config.busy(waitUntil);
      return proxy(request, routes[0]!, deps, { next: routes.slice(1), pin: steered.pin }, { waitUntil });
    }
    if (config.unavailableFor() !== undefined) return unavailable(request, host);
    // A hostname this location does not know may be a new one: checked, at most about once a minute, when it
    // is next to a served name. Never on workers.dev, which serves no app's hostname: there every isolate would check on its own.
    if (!isWorkersDev(host)) config.unknownHost(host, waitUntil);
    return notServed(request, host, route);
  };
  // The same handler behind a hono app, for callers that hold an app (tests, embedding).
  app.all("*", (c) => serve(c.req.raw, executionCtxOf(c)));

  /**
   * A Service route and a Gateway API route for the same host. One cluster: the route wins only with
   * an exact name over the Service's wildcard. Different clusters: the same ownership as between two
   * Services: with a steering rule for the host, a cluster it does not list never serves and of two
   * listed clusters the one listed first owns it; without a rule, the first in EDGELB_CLUSTERS.
   */
  const gatewayWins = (route: Route, gateway: GatewayTable, host: string): boolean => {
    const other = gatewayOwner(gateway, settings.clusters);
    if (other === undefined || other === route.cluster) {
      // Both wildcards: the longer suffix is the more specific (`*.a.example.com` beats `*.example.com`).
      return route.pattern.startsWith("*.") && (!gateway.pattern.startsWith("*") || (gateway.pattern.startsWith("*.") && gateway.pattern.length > route.pattern.length));
    }
    // A catch-all `*` route serves only what nothing else claims: never another cluster's named Service.
    if (gateway.pattern === "*") return false;
    const rule = ruleFor(steeringDeps.steering, host);
    const order = rule ? rule.clusters : settings.clusters;
    const rank = (c: string) => {
      const i = order.indexOf(c);
      return i === -1 ? Infinity : i;
    };
    const g = rank(other);
    const r = rank(route.cluster);
    if (g === Infinity && r === Infinity) return false;
    return g < r;
  };

  return {
    settings,
    config,
    health,
    app,
    status,
    fetch(request, ctx) {
      return serve(request, ctx);
    },
  };
}

/** Edge state of one origin (a node at one port): only origins with state are listed. */
export interface OriginStatus {
  port: number;
  origin: string;
  ejected: boolean;
  ejectedUntil: string | null;
  ejections: number;
  consecutiveFailures: number;
  lastError: string | null;
  inFlight: number;
}

/** A node of a cluster, listed once per cluster (not once per Service). */
export interface NodeStatus {
  name: string;
  address: string;
  zone: string | null;
  /** The agent's verdict in the snapshot. */
  healthy: boolean;
  /** Passive health and in-flight counts are kept per origin (node + NodePort): one entry per port with state. */
  origins: OriginStatus[];
}

export interface ServiceStatus {
  namespace: string;
  name: string;
  hostnames: string[];
  nodePort: number;
  scheme: string;
  trafficPolicy: string;
  policy: unknown;
  /** total: nodes that may serve it; serving: of those, healthy by the agent and not ejected at this port. */
  counts: { nodes: number; serving: number };
  /** Local Services only: the nodes with ready endpoints. Cluster Services use every node of the cluster. */
  endpoints?: { node: string; weight: number; healthy: boolean }[];
}

/** A hostname several clusters claim (or a steering rule covers): who serves, in what order for a sample client, who is skipped and why. */
export interface HostnameStatus extends HostClaims {
  /** With a steering rule: the order for the sample client (the status request's own location). */
  order?: string[];
  skipped?: { cluster: string; reason: string }[];
}

export interface SteeringStatus {
  source: string;
  error: string | null;
  warnings: string[];
  staleAfterSeconds: number | null;
  /** The client place the orders below are for: the status request's own (request.cf). */
  sample: ClientPlace;
  hostnames: HostnameStatus[];
}

export interface EdgeStatus {
  steering?: SteeringStatus;
  now: string;
  isolateStartedAt: string;
  settings: { clusters: string[]; cacheTtlSeconds: number; transport: string; requestLogs: boolean };
  clusters: {
    name: string;
    generation: number | null;
    publishedAt: string | null;
    ageSeconds: number | null;
    loadedAt: string | null;
    checkedAt: string | null;
    /** The agent's last heartbeat as a worker recorded it (null: the stored value carries none). */
    heartbeatAt: string | null;
    source: string | null;
    lastError: string | null;
    /** How the edge reaches this cluster's nodes: direct (nodeIP:NodePort) or through the node gate. */
    origins: { mode: "direct" } | { mode: "gate"; port: number };
    nodes: NodeStatus[];
    services: ServiceStatus[];
    /** Gateway API routes (worker/gateway/status), when the snapshot has any. */
    gateway?: GatewayClusterStatus;
  }[];
}

// O(nodes + services + origins with state), and so is the output: never
// nodes × services entries.
function edgeStatus(s: {
  config: ConfigStore;
  health: PassiveHealth;
  inFlight: Map<string, number>;
  now: () => number;
  startedAt: number;
  settings: Settings;
}): EdgeStatus {
  const now = s.now();
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    now: new Date(now).toISOString(),
    isolateStartedAt: new Date(s.startedAt).toISOString(),
    settings: {
      clusters: s.settings.clusters,
      cacheTtlSeconds: s.settings.cacheTtlMs / 1000,
      transport: s.settings.transport,
      requestLogs: s.settings.requestLogs,
    },
    clusters: s.config.all().map((c) => {
      const snap = c.snapshot;
      // node name → ports where this isolate holds state (keys are `cluster/node:port`);
      // walking only those keeps a status call O(nodes + services + origins with state).
      const prefix = `${c.name}/`;
      const statefulPorts = new Map<string, number[]>();
      for (const key of new Set([...s.health.keys(), ...s.inFlight.keys()])) {
        if (!key.startsWith(prefix)) continue;
        const colon = key.lastIndexOf(":");
        const node = key.slice(prefix.length, colon);
        const port = Number(key.slice(colon + 1));
        const list = statefulPorts.get(node);
        if (list) list.push(port);
        else statefulPorts.set(node, [port]);
      }
      // port → names of nodes ejected at that port, to count what serves each Service.
      const ejectedAt = new Map<number, Set<string>>();
      const nodes: NodeStatus[] = (snap?.nodes ?? []).map((n) => {
        const origins: OriginStatus[] = [];
        for (const port of (statefulPorts.get(n.name) ?? []).sort((a, b) => a - b)) {
          const key = `${c.name}/${n.name}:${port}`;
          const h = s.health.get(key);
          const inFlight = s.inFlight.get(key) ?? 0;
          if (!h && inFlight === 0) continue;
          const ejected = s.health.isEjected(key);
          if (ejected) {
            let set = ejectedAt.get(port);
            if (!set) ejectedAt.set(port, (set = new Set()));
            set.add(n.name);
          }
          origins.push({
            port,
            origin: key,
            ejected,
            ejectedUntil: ejected ? iso(h?.ejectedUntil) : null,
            ejections: h?.ejections ?? 0,
            consecutiveFailures: h?.consecutiveFailures ?? 0,
            lastError: h?.lastError ?? null,
            inFlight,
          });
        }
        return { name: n.name, address: n.address, zone: n.zone ?? null, healthy: n.healthy, origins };
      });
      const healthyByName = new Map((snap?.nodes ?? []).map((n) => [n.name, n.healthy]));
      const healthyNodes = (snap?.nodes ?? []).filter((n) => n.healthy);
      return {
        name: c.name,
        generation: snap?.generation ?? null,
        publishedAt: snap?.publishedAt ?? null,
        ageSeconds: snap ? Math.max(0, Math.round((now - Date.parse(snap.publishedAt)) / 1000)) : null,
        heartbeatAt: iso(c.heartbeatAt),
        loadedAt: iso(c.loadedAt),
        checkedAt: iso(c.checkedAt),
        source: c.source ?? null,
        lastError: c.lastError ?? null,
        origins: snap?.origins ?? { mode: "direct" },
        ...optional("gateway", gatewayStatus(c.name, snap, s.config.gateways)),
        nodes,
        services: (snap?.services ?? []).map((svc): ServiceStatus => {
          const ejected = ejectedAt.get(svc.nodePort);
          const base = {
            namespace: svc.namespace,
            name: svc.name,
            hostnames: svc.hostnames,
            nodePort: svc.nodePort,
            scheme: svc.scheme,
            trafficPolicy: svc.trafficPolicy,
            policy: svc.policy,
          };
          if (svc.trafficPolicy !== "Local") {
            // `endpoints: []`: scaled to 0, no node can serve it (the router answers 503).
            if (svc.endpoints?.length === 0) return { ...base, counts: { nodes: snap!.nodes.length, serving: 0 } };
            let serving = healthyNodes.length;
            if (ejected) for (const n of healthyNodes) if (ejected.has(n.name)) serving--;
            return { ...base, counts: { nodes: snap!.nodes.length, serving } };
          }
          // As the router does: endpoints on nodes missing from the snapshot are no backends.
          const endpoints = (svc.endpoints ?? [])
            .filter((ep) => healthyByName.has(ep.node))
            .map((ep) => ({ node: ep.node, weight: ep.weight, healthy: ep.healthy && healthyByName.get(ep.node)! }));
          const serving = endpoints.filter((ep) => ep.healthy && !ejected?.has(ep.node)).length;
          return { ...base, counts: { nodes: endpoints.length, serving }, endpoints };
        }),
      };
    }),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return value === undefined ? {} : ({ [key]: value } as { [k in K]?: V });
}

/** The generations object for the control endpoint, under the same condition as the fast path (it must see every push). */
function generationsFor(opts: EdgeOptions, intervalMs: number): { generations?: () => GenerationsApi } {
  const ns = opts.env.EDGELB_GENERATIONS;
  if (!ns || !(intervalMs > 0)) return {};
  return { generations: () => ns.get(ns.idFromName(GENERATIONS_OBJECT)) as unknown as GenerationsApi };
}

/** The fast path when the generations object is bound and its check is on. */
function fastPath(opts: EdgeOptions, s: { fastCheckMs: number; fastHoldMs: number }, now: () => number, log: Logger): { fast?: FastPath } {
  const ns = opts.env.EDGELB_GENERATIONS;
  if (!ns || s.fastCheckMs <= 0) return {};
  const stub = () => ns.get(ns.idFromName(GENERATIONS_OBJECT)) as unknown as WatchableGenerationsApi;
  return { fast: new FastPath({ stub, ...(opts.cache ? { cache: opts.cache } : {}), instance: instanceOf(opts.env), intervalMs: s.fastCheckMs, holdMs: s.fastHoldMs, now, log }) };
}

/**
 * This deployment's identity in the zone's shared cache: EDGELB_INSTANCE, else the generations
 * object's id (derived from the worker's own Durable Object namespace, so different per deployment),
 * else DEFAULT_INSTANCE (then two deployments on one zone need EDGELB_INSTANCE set; docs/worker.md).
 */
export function instanceOf(env: Partial<Env>): string {
  const named = env.EDGELB_INSTANCE?.trim();
  if (named) return named;
  const ns = env.EDGELB_GENERATIONS;
  if (ns) {
    try {
      return `do-${ns.idFromName(GENERATIONS_OBJECT).toString()}`;
    } catch {
      // fall through
    }
  }
  return DEFAULT_INSTANCE;
}

/** EDGELB_CLIENT_BODY_TIMEOUT_MS: the client-body idle timeout (default 60 s). */
function clientBodyTimeoutMs(v: string | undefined): number | undefined {
  const n = Number(v);
  return v !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * How often a heartbeat alone may rewrite a cluster's KV value (its metadata): a third of the
 * staleness limit, so a cold isolate that sees only KV (up to ~60 s behind) still finds a live
 * cluster fresh; at least 10 min (144 KV writes a day per cluster, inside the free plan's 1,000 with
 * room for changes), at most 1 h (24 a day, also without a limit). Every other reader (the location
 * copy, the fast path) sees each heartbeat.
 */
export function heartbeatKvEvery(staleAfterMs: number | undefined): number {
  if (staleAfterMs === undefined) return 3_600_000;
  return Math.min(3_600_000, Math.max(600_000, Math.floor(staleAfterMs / 3)));
}

function staleAfter(raw: string | undefined, log: Logger): number | undefined {
  if (raw === undefined || raw.trim() === "" || raw.trim() === "0") return undefined;
  const n = Number(raw);
  if (Number.isFinite(n) && n > 0) return n * 1000;
  log("warn", "settings.invalid", { problem: `EDGELB_STALE_AFTER "${raw}" is not a number of seconds; clusters are never skipped as stale` });
  return undefined;
}

function steeringStatus(
  claims: HostClaims[],
  state: SteeringState | undefined,
  deps: SteeringDeps,
  sample: ClientPlace,
  config: ConfigStore,
): SteeringStatus {
  const hostnames = claims.map((h): HostnameStatus => {
    if (!h.steering) return h;
    const rule = state?.steering.rules.find((r) => r.pattern === h.steering!.pattern);
    if (!rule) return h;
    // The claims as the router sees them: each cluster's route for this pattern.
    const routes = claimRoutes(config, h.pattern);
    const d = steer(rule, routes, (name) => clusterFacts(deps, name), sample, () => 0.5);
    return { ...h, order: d.order.map((r) => r.cluster), skipped: d.skipped };
  });
  return {
    source: state?.source ?? "none",
    error: state?.error ?? null,
    warnings: state?.warnings ?? [],
    staleAfterSeconds: deps.staleAfterMs === undefined ? null : deps.staleAfterMs / 1000,
    sample,
    hostnames,
  };
}

const gatewayOwners = new WeakMap<GatewayTable, string | undefined>();

/** The cluster whose HTTPRoutes fill a gateway table (the earliest in EDGELB_CLUSTERS, should several). */
function gatewayOwner(table: GatewayTable, clusters: readonly string[]): string | undefined {
  if (gatewayOwners.has(table)) return gatewayOwners.get(table);
  let best: string | undefined;
  let bestAt = Infinity;
  const see = (entries: Iterable<{ target: { cluster: string } }>) => {
    for (const e of entries) {
      const at = clusters.indexOf(e.target.cluster);
      const rank = at === -1 ? clusters.length : at;
      if (best === undefined || rank < bestAt) [best, bestAt] = [e.target.cluster, rank];
    }
  };
  for (const list of table.exact.values()) see(list);
  see(table.regex);
  for (const list of table.prefix.values()) see(list);
  gatewayOwners.set(table, best);
  return best;
}

function claimRoutes(config: ConfigStore, pattern: string): Route[] {
  const index = config.routes;
  // An exact name: every cluster's route that can serve it (its wildcard owner's too), as the router sees them.
  if (!pattern.startsWith("*.")) return hostRoutes(index, pattern);
  const claimed = index.claims.get(pattern);
  if (claimed) return [...claimed];
  const owner = index.wildcard.get(pattern.slice(2));
  return owner ? [owner] : [];
}
