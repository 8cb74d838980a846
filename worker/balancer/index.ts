// Picks one origin from the candidates of a route. Pure apart from the small
// per-route state (round-robin counters, smooth weighted round-robin credits)
// and the in-flight counts it is handed.
import type { AlgorithmName } from "../snapshot/schema.ts";
import type { RouteOrigin } from "../config/routes.ts";
import { nodeSeed } from "../config/routes.ts";
import { hash32, rendezvousScore } from "./hash.ts";

export interface BalancerState {
  next: number;
  /** Smooth weighted round-robin credit per origin key. */
  credit: Map<string, number>;
  /**
   * Until this time every healthy origin of the route was found ejected: pick
   * among all (fail open) without scanning them again on every request.
   */
  allEjectedUntil: number;
  /** Fail-open weighted picks: running sums of the weights of every origin, built on first use. */
  cumulativeWeights: Float64Array | undefined;
}

export function newBalancerState(): BalancerState {
  return { next: 0, credit: new Map(), allEjectedUntil: 0, cumulativeWeights: undefined };
}

export interface PickContext {
  state: BalancerState;
  inFlight: (key: string) => number;
  random: () => number;
}

export function pick(algorithm: AlgorithmName, candidates: readonly RouteOrigin[], ctx: PickContext): RouteOrigin | undefined {
  if (candidates.length <= 1) return candidates[0];
  switch (algorithm) {
    case "round-robin":
      return candidates[ctx.state.next++ % candidates.length];
    case "random":
      return candidates[Math.floor(ctx.random() * candidates.length)];
    case "weighted":
      return smoothWeighted(candidates, ctx.state);
    case "least-request":
      return powerOfTwo(candidates, ctx);
  }
}

/**
 * nginx's smooth weighted round-robin: every pick adds each weight to its
 * credit, takes the largest credit and charges it the total. Weights 3:1 give
 * a a b a, never a a a b in a burst.
 */
function smoothWeighted(candidates: readonly RouteOrigin[], state: BalancerState): RouteOrigin {
  let total = 0;
  let best: RouteOrigin | undefined;
  let bestCredit = -Infinity;
  for (const o of candidates) {
    const credit = (state.credit.get(o.key) ?? 0) + o.weight;
    state.credit.set(o.key, credit);
    total += o.weight;
    if (credit > bestCredit) {
      best = o;
      bestCredit = credit;
    }
  }
  state.credit.set(best!.key, bestCredit - total);
  return best!;
}

/** Least-request by the power of two choices: two distinct random origins, the less busy wins. */
function powerOfTwo(candidates: readonly RouteOrigin[], ctx: PickContext): RouteOrigin {
  const i = Math.floor(ctx.random() * candidates.length);
  let j = Math.floor(ctx.random() * (candidates.length - 1));
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  return ctx.inFlight(b.key) < ctx.inFlight(a.key) ? b : a;
}

/**
 * Rendezvous (highest random weight) hashing on a client key: each client
 * ranks origins by score(hash(client), seed(origin)). Removing one of N origins
 * moves only the clients that ranked it first (about 1/N); adding one takes
 * about 1/(N+1). The score is integer-only so a route of thousands of nodes
 * costs microseconds (the node seeds are precomputed per snapshot).
 */
export function rendezvous(clientKey: string, candidates: readonly RouteOrigin[]): RouteOrigin | undefined {
  const client = hash32(clientKey);
  let best: RouteOrigin | undefined;
  let bestScore = -1;
  for (const o of candidates) {
    const score = rendezvousScore(client, nodeSeed(o.cluster, o.node, o.address));
    if (score > bestScore || (score === bestScore && best && o.key < best.key)) {
      best = o;
      bestScore = score;
    }
  }
  return best;
}

/**
 * The opaque value of the affinity cookie for an origin (does not reveal node
 * names): a fixed-width hash of the node, so the edge finds the node with one
 * lookup per cluster, then a hash of the whole origin (node and NodePort).
 */
export function cookieValue(origin: Pick<RouteOrigin, "key" | "cluster" | "node">): string {
  return cookieNodePart(origin.cluster, origin.node) + hash32(origin.key).toString(36);
}

/** The first COOKIE_NODE_CHARS characters of a cookie value: the node's part. */
export function cookieNodePart(cluster: string, node: string): string {
  return hash32(`${cluster}/${node}`).toString(36).padStart(COOKIE_NODE_CHARS, "0");
}

/** 2^32 in base 36 takes 7 digits. */
export const COOKIE_NODE_CHARS = 7;

export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
