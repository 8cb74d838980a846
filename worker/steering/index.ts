// Steering: for one request to a hostname several clusters claim, the clusters
// that may serve it, best first, and why each other one is left out. Pure: the
// hostname's rule, the client's place (request.cf) and each cluster's state in,
// an order out. The proxy tries the first cluster and moves down the list within
// the same client request (worker/proxy). O(clusters) per request.
import { hash32 } from "../balancer/hash.ts";
import { haversineKm, type ClientPlace, type LatLon } from "./geo.ts";
import type { SteeringRule } from "./settings.ts";

export { clientPlace, haversineKm, type ClientPlace, type LatLon } from "./geo.ts";
export { NO_STEERING, parseSteering, ruleFor, type Steering, type SteeringRule, type SteeringPolicy } from "./settings.ts";

/** One cluster's claim on the hostname: its route (worker/config/routes), or anything with these fields. */
export interface Claim {
  cluster: string;
  /** Origins the agent reports healthy for the Service(s) behind the hostname in that cluster. */
  healthyCount: number;
}

/** What steering needs to know of a served cluster. */
export interface ClusterFacts {
  location?: LatLon;
  /** Set when the cluster is past the staleness limit: seconds since its agent's last heartbeat. */
  staleSeconds?: number;
  /** Its agent saw every node fail and published them all (fail open): its "healthy" nodes may all be down. */
  failOpen?: boolean;
}

export interface Client extends ClientPlace {
  /** Affinity key (client-ip affinity: the client's address): the same key gets the same order. */
  key?: string;
  /** The cluster this client was pinned to (cookie affinity): first when it can serve. */
  pinned?: string;
}

export interface Skip {
  cluster: string;
  reason: string;
}

export interface Decision<C extends Claim> {
  /** Clusters to try, best first. */
  order: C[];
  skipped: Skip[];
  /** No cluster passed the checks: the ones skipped for health or staleness are tried anyway. */
  failedOpen: boolean;
}

/**
 * Orders the claims of one hostname. `claims` are the clusters that claim it
 * (any order); `facts` tells each cluster's location and staleness.
 */
export function steer<C extends Claim>(
  rule: SteeringRule,
  claims: readonly C[],
  facts: (cluster: string) => ClusterFacts | undefined,
  client: Client,
  random: () => number = Math.random,
): Decision<C> {
  const ranked = rankClusters(rule, facts, client, random);
  const order: C[] = [];
  const skipped: Skip[] = [];
  // Failing open, a stale cluster with healthy nodes beats one with none.
  let fallback: C[] | undefined;
  let unhealthy: C[] | undefined;
  for (const name of ranked) {
    const claim = findClaim(claims, name);
    if (!claim) {
      skipped.push({ cluster: name, reason: "does not serve this hostname (no snapshot, or no Service claims it)" });
      continue;
    }
    const stale = facts(name)?.staleSeconds;
    if (stale !== undefined) {
      skipped.push({ cluster: name, reason: `stale: no heartbeat from its agent for ${stale} s` });
      if (claim.healthyCount > 0) (fallback ??= []).push(claim);
      else (unhealthy ??= []).push(claim);
      continue;
    }
    if (facts(name)?.failOpen) {
      // Served only when no other cluster can: its nodes are published healthy because all failed.
      skipped.push({ cluster: name, reason: "every node failed its agent's health checks (published anyway: fail open)" });
      (fallback ??= []).push(claim);
      continue;
    }
    if (claim.healthyCount === 0) {
      skipped.push({ cluster: name, reason: "no healthy node for the Service" });
      (unhealthy ??= []).push(claim);
      continue;
    }
    order.push(claim);
  }
  for (const c of rule.clusters) {
    if (!ranked.includes(c) && findClaim(claims, c)) skipped.push({ cluster: c, reason: "not listed for this client's location" });
  }
  for (const claim of claims) {
    if (!rule.clusters.includes(claim.cluster)) skipped.push({ cluster: claim.cluster, reason: "claims the hostname but the steering setting does not allow it" });
  }
  // Nothing passed: serving from a cluster that may be down beats refusing (as within a cluster).
  if (order.length === 0 && (fallback || unhealthy)) return { order: [...(fallback ?? []), ...(unhealthy ?? [])], skipped, failedOpen: true };
  return { order, skipped, failedOpen: false };
}

function findClaim<C extends Claim>(claims: readonly C[], cluster: string): C | undefined {
  for (const c of claims) if (c.cluster === cluster) return c;
  return undefined;
}

/** The allowed clusters in the rule's order for this client (before health and staleness). */
export function rankClusters(rule: SteeringRule, facts: (cluster: string) => ClusterFacts | undefined, client: Client, random: () => number): string[] {
  let ranked: string[];
  switch (rule.policy) {
    case "failover":
      ranked = rule.clusters;
      break;
    case "proximity":
      ranked = client.position ? byDistance(rule.clusters, client.position, facts) : rule.clusters;
      break;
    case "geo":
      ranked =
        (client.country !== undefined ? rule.countries?.get(client.country) : undefined) ??
        (client.continent !== undefined ? rule.continents?.get(client.continent) : undefined) ??
        rule.fallback ??
        rule.clusters;
      break;
    case "weighted":
      ranked = weightedOrder(rule.clusters, rule.weights, client.key, random);
      break;
    case "random":
      ranked = weightedOrder(rule.clusters, undefined, client.key, random);
      break;
  }
  const pinned = client.pinned;
  if (pinned !== undefined && ranked[0] !== pinned && ranked.includes(pinned)) {
    ranked = [pinned, ...ranked.filter((c) => c !== pinned)];
  }
  return ranked;
}

/** Nearest first; clusters without a location after every located one, in configured order. */
function byDistance(clusters: string[], from: LatLon, facts: (cluster: string) => ClusterFacts | undefined): string[] {
  const scored = clusters.map((c, i) => {
    const at = facts(c)?.location;
    return { c, i, d: at ? haversineKm(from, at) : Infinity };
  });
  scored.sort((a, b) => a.d - b.d || a.i - b.i);
  return scored.map((s) => s.c);
}

/**
 * A weighted random order without replacement (Efraimidis–Spirakis: sort by
 * u^(1/w), here as -ln(u)/w ascending). With an affinity key, u comes from a
 * hash of key and cluster, so one client always gets the same order and a
 * cluster leaving moves only the clients that ranked it first. Weight 0 ranks
 * last (a drained cluster still takes over when the others cannot serve).
 */
function weightedOrder(clusters: string[], weights: number[] | undefined, key: string | undefined, random: () => number): string[] {
  const scored = clusters.map((c, i) => {
    const w = weights ? weights[i]! : 1;
    const u = key !== undefined ? (hash32(`${key}|${c}`) + 0.5) / 4294967296 : Math.max(random(), Number.MIN_VALUE);
    return { c, i, s: w > 0 ? -Math.log(u) / w : Infinity };
  });
  scored.sort((a, b) => a.s - b.s || a.i - b.i);
  return scored.map((s) => s.c);
}
