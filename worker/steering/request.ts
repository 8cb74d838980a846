// The edge's side of steering: for a request to a hostname with a steering
// rule, the routes to try (one per cluster, best first); without a rule, the
// owner's route alone. Reads request.cf (or, in the local lab only, a header
// carrying test cf values), the clusters' install times and locations.
import { hash32 } from "../balancer/hash.ts";
import { readCookie } from "../balancer/index.ts";
import { hostRoutes, type Route, type RouteIndex } from "../config/routes.ts";
import type { LatLon } from "./geo.ts";
import { clientPlace, steer, type ClusterFacts, type Decision } from "./index.ts";
import { ruleFor, type Steering } from "./settings.ts";

/** The local lab's stand-in for request.cf (JSON), read only in local mode (the lab's entry, never a var); never proxied. */
export const TEST_CF_HEADER = "x-edgelb-test-cf";

/** What the edge knows of a served cluster. */
export interface ClusterView {
  /** When this isolate installed the snapshot's current generation (its own clock: no agent skew). */
  loadedAt?: number;
  /** The agent's last heartbeat as recorded by a worker (its clock; never in the future). */
  heartbeatAt?: number | undefined;
  location?: LatLon;
  /** The agent published every node as healthy because every one failed its checks. */
  failOpen?: boolean | undefined;
}

export interface SteeringDeps {
  steering: Steering;
  /** A cluster whose agent has not been heard of (heartbeat, else install) for this long is skipped; undefined: never. */
  staleAfterMs: number | undefined;
  /** True only in the local lab: test cf values come from TEST_CF_HEADER. */
  localMode: boolean;
  cluster: (name: string) => ClusterView | undefined;
  now: () => number;
  random: () => number;
}

export interface Steered {
  /** Routes to try, best first; empty: no allowed cluster serves the hostname. */
  routes: Route[];
  /** The decision (for logs and the status page). */
  decision: Decision<Route>;
  /** The cluster-pin cookie's value as the client sent it (cookie affinity across clusters). */
  pin?: string;
}

/** request.cf, or in local mode the test header's values when it parses as a JSON object. */
export function requestCf(request: Request, localMode: boolean): Record<string, unknown> | undefined {
  if (localMode) {
    const raw = request.headers.get(TEST_CF_HEADER);
    if (raw !== null && raw.length <= 4096) {
      try {
        const v: unknown = JSON.parse(raw);
        if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
      } catch {
        // A malformed test header is ignored like a missing one.
      }
    }
  }
  return (request as { cf?: Record<string, unknown> }).cf;
}

/** The facts steering reads of a cluster: its location and whether it is stale. */
export function clusterFacts(deps: Pick<SteeringDeps, "cluster" | "staleAfterMs" | "now">, name: string): ClusterFacts | undefined {
  const view = deps.cluster(name);
  if (!view) return undefined;
  const facts: ClusterFacts = {};
  if (view.location) facts.location = view.location;
  if (view.failOpen) facts.failOpen = true;
  // From the agent's last heartbeat, which every isolate learns with the snapshot (KV metadata, the
  // location copy, the fast path): a fresh isolate sees a dead agent as stale too. Values stored
  // without one (older agents and workers) fall back to this isolate's install time.
  const since = view.heartbeatAt ?? view.loadedAt;
  if (deps.staleAfterMs !== undefined && since !== undefined) {
    const age = deps.now() - since;
    if (age > deps.staleAfterMs) facts.staleSeconds = Math.round(age / 1000);
  }
  return facts;
}

const NO_ROUTES: Route[] = [];

/** Undefined when no steering rule applies: then the owner's route alone serves. */
export function steerRequest(index: RouteIndex, owner: Route, host: string, request: Request, deps: SteeringDeps): Steered | undefined {
  const rule = ruleFor(deps.steering, host);
  if (!rule) return undefined;
  // Every cluster's route that can match the host (exact or wildcard, claimed or refused):
  // the rule drops the clusters it does not list, and an allowed cluster's wildcard serves
  // a name another cluster claims exactly.
  const claims = hostRoutes(index, host);
  const policy = owner.policy;
  const pin = policy.affinity === "cookie" ? readCookie(request.headers.get("cookie"), pinCookieName(policy.cookieName)) : undefined;
  let pinned: string | undefined;
  if (pin !== undefined) for (const c of claims) if (clusterPin(c.cluster) === pin) pinned = c.cluster;
  const key = policy.affinity === "client-ip" ? request.headers.get("cf-connecting-ip")?.trim() || undefined : undefined;
  const client = { ...clientPlace(requestCf(request, deps.localMode)), key, pinned };
  const decision = steer(rule, claims, (name) => clusterFacts(deps, name), client, deps.random);
  // A cluster without a single node for the Service cannot even fail open.
  const routes = decision.order.filter((r) => r.size > 0);
  return { routes: routes.length ? routes : NO_ROUTES, decision, pin };
}

/** The cookie that pins a client to a cluster, beside the node cookie of the Service's policy. */
export function pinCookieName(cookieName: string): string {
  return `${cookieName}_cluster`;
}

/** The pin cookie's value for a cluster: opaque (error bodies and cookies never name a cluster). */
export function clusterPin(cluster: string): string {
  return hash32(`cluster/${cluster}`).toString(36);
}
