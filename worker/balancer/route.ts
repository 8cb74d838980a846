// Chooses the origin of a route for one attempt of a request, without looking
// at every node: the healthy origins of a route are precomputed per snapshot,
// and ejected or already tried ones are skipped by probing from the balancer's
// choice rather than by filtering the whole list. Small routes and the rare
// cases that need the whole list (non-uniform weights over many origins,
// fail-open) take the plain list path, with the same semantics.
import { originAt, originKey, routeOrigins, type Backend, type Route, type RouteOrigin } from "../config/routes.ts";
import { hash32, rendezvousScore } from "./hash.ts";
import { cookieValue, pick, rendezvous, type BalancerState } from "./index.ts";

export interface ChooseContext {
  state: BalancerState;
  inFlight: (key: string) => number;
  random: () => number;
  /** Passive health's verdict for an origin key. */
  isEjected: (key: string) => boolean;
  /** Origin keys this request already tried. */
  tried: ReadonlySet<string>;
  /** Set when the route's affinity is client-ip. */
  clientIp?: string;
  /** The affinity cookie's value, when the route's affinity is cookie. */
  cookie?: string;
}

export interface Choice {
  origin?: RouteOrigin;
  /** Every remaining origin is ejected or reported unhealthy: one of them was chosen anyway. */
  failedOpen: boolean;
  /** The remaining (untried) nodes when failing open, for the log. */
  remaining?: string[];
}

/** Routes up to this many origins take the list path (cheap at this size, and exact). */
export const SMALL_ROUTE = 32;

export function chooseOrigin(route: Route, ctx: ChooseContext): Choice {
  if (route.size <= SMALL_ROUTE) return chooseFromList(route, ctx);
  const origin = chooseHealthy(route, ctx);
  if (origin) return { origin, failedOpen: false };
  return failOpen(route, ctx);
}

const usable = (key: string, ctx: ChooseContext) => !ctx.tried.has(key) && !ctx.isEjected(key);

function listChoice(list: RouteOrigin[], route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  if (ctx.cookie !== undefined) {
    const pinned = list.find((o) => cookieValue(o) === ctx.cookie);
    if (pinned) return pinned;
  }
  if (ctx.clientIp !== undefined) return rendezvous(ctx.clientIp, list);
  return pick(route.policy.algorithm, list, { state: ctx.state, inFlight: ctx.inFlight, random: ctx.random });
}

/** The proxy's original path: filter the route's origins, then choose. */
function chooseFromList(route: Route, ctx: ChooseContext): Choice {
  const fresh = routeOrigins(route).filter((o) => !ctx.tried.has(o.key));
  const ok = fresh.filter((o) => o.healthy && !ctx.isEjected(o.key));
  if (ok.length > 0 || fresh.length === 0) return { origin: listChoice(ok, route, ctx), failedOpen: false };
  // Every remaining node is ejected or reported unhealthy: trying them beats refusing.
  return { origin: listChoice(fresh, route, ctx), failedOpen: true, remaining: fresh.map((o) => o.node) };
}

function failOpen(route: Route, ctx: ChooseContext): Choice {
  const fresh = routeOrigins(route).filter((o) => !ctx.tried.has(o.key));
  if (fresh.length === 0) return { failedOpen: false };
  return { origin: listChoice(fresh, route, ctx), failedOpen: true, remaining: fresh.map((o) => o.node) };
}

/** The i-th healthy origin of the route (0 ≤ i < healthyCount): backend and position. */
function healthyAt(route: Route, i: number): [Backend, number] {
  for (const b of route.backends) {
    if (i < b.healthy.length) return [b, b.healthy[i]!];
    i -= b.healthy.length;
  }
  throw new Error("healthy index out of range");
}

/** From healthy index start on, the first usable origin (wrapping), skipping one position. */
function probe(route: Route, start: number, ctx: ChooseContext, skip = -1): [number, RouteOrigin] | undefined {
  const n = route.healthyCount;
  for (let j = 0; j < n; j++) {
    const i = (start + j) % n;
    if (i === skip) continue;
    const [b, pos] = healthyAt(route, i);
    if (usable(originKey(b, pos), ctx)) return [i, originAt(b, pos)];
  }
  return undefined;
}

/**
 * A random usable origin: a few random draws first, so an ejected node's
 * share spreads over all others rather than landing on its neighbour, then a
 * linear probe (bounded by the route's size) for when most are out.
 */
function probeRandom(route: Route, ctx: ChooseContext, skip = -1): [number, RouteOrigin] | undefined {
  const n = route.healthyCount;
  for (let k = 0; k < 4; k++) {
    const i = Math.floor(ctx.random() * n);
    if (i === skip) continue;
    const [b, pos] = healthyAt(route, i);
    if (usable(originKey(b, pos), ctx)) return [i, originAt(b, pos)];
  }
  return probe(route, Math.floor(ctx.random() * n), ctx, skip);
}

/** A usable healthy origin, or undefined when none is left. */
function chooseHealthy(route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  const n = route.healthyCount;
  if (n === 0) return undefined;
  if (ctx.cookie !== undefined) {
    const pinned = pinnedByCookie(route, ctx.cookie);
    if (pinned && pinned.healthy && usable(pinned.key, ctx)) return pinned;
  }
  if (ctx.clientIp !== undefined) return highestScore(route, ctx.clientIp, ctx);
  const algorithm = route.policy.algorithm;
  if (algorithm === "weighted" && !route.uniformWeights) {
    // Smooth weighted round-robin needs every candidate's credit: the list path.
    const list: RouteOrigin[] = [];
    for (const b of route.backends) {
      for (const pos of b.healthy) {
        const o = originAt(b, pos);
        if (usable(o.key, ctx)) list.push(o);
      }
    }
    return pick("weighted", list, { state: ctx.state, inFlight: ctx.inFlight, random: ctx.random });
  }
  switch (algorithm) {
    case "round-robin":
    case "weighted": // equal weights: smooth weighted round-robin is round-robin
      return probe(route, ctx.state.next++ % n, ctx)?.[1];
    case "random":
      return probeRandom(route, ctx)?.[1];
    case "least-request": {
      // Power of two choices: two distinct usable origins, the less busy wins.
      const a = probeRandom(route, ctx);
      if (!a) return undefined;
      const b = probeRandom(route, ctx, a[0]);
      if (!b) return a[1];
      return ctx.inFlight(b[1].key) < ctx.inFlight(a[1].key) ? b[1] : a[1];
    }
  }
}

/**
 * Rendezvous hashing over the route's healthy origins with the same score as
 * rendezvous(): one integer mix per node, and a health/ejection check only for
 * an origin that would beat the best so far (O(log n) of them on average).
 */
function highestScore(route: Route, clientIp: string, ctx: ChooseContext): RouteOrigin | undefined {
  const client = hash32(clientIp);
  let best: [Backend, number] | undefined;
  let bestScore = -1;
  let bestKey = "";
  for (const b of route.backends) {
    const seeds = b.table.seeds;
    const healthy = b.healthy;
    const members = b.members;
    for (let k = 0; k < healthy.length; k++) {
      const pos = healthy[k]!;
      const score = rendezvousScore(client, seeds[members ? members[pos]! : pos]!);
      if (score < bestScore) continue;
      const key = originKey(b, pos);
      if (score === bestScore && key >= bestKey) continue;
      if (!usable(key, ctx)) continue;
      best = [b, pos];
      bestScore = score;
      bestKey = key;
    }
  }
  return best && originAt(best[0], best[1]);
}

/** The origin an affinity cookie names, through a per-backend map built on first use. */
function pinnedByCookie(route: Route, cookie: string): RouteOrigin | undefined {
  for (const b of route.backends) {
    if (!b.cookies) {
      b.cookies = new Map();
      for (let pos = 0; pos < b.size; pos++) b.cookies.set(cookieValue({ key: originKey(b, pos) }), pos);
    }
    const pos = b.cookies.get(cookie);
    if (pos !== undefined) return originAt(b, pos);
  }
  return undefined;
}
