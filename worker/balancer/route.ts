// Chooses the origin of a route for one attempt of a request, without looking
// at every node: the healthy origins of a route are precomputed per snapshot,
// and ejected or already tried ones are skipped by probing from the balancer's
// choice rather than by filtering the whole list. Failing open picks among all
// origins the same way, and a route found with every healthy origin ejected is
// not scanned again on every request. Small routes and non-uniform weights over
// many healthy origins take the plain list path, with the same semantics.
import { AFFINITY_GROUPS, affinityOf, nodeAt, originAt, originKey, routeOrigins, type Backend, type Route, type RouteOrigin } from "../config/routes.ts";
import { hash32, rendezvousScore } from "./hash.ts";
import { COOKIE_NODE_CHARS, cookieNodePart, cookieValue, pick, rendezvous, type BalancerState } from "./index.ts";
import type { EjectionPool } from "../health/index.ts";

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
  /** Clock for how long "every healthy origin is ejected" is trusted; Date.now by default. */
  now?: () => number;
}

export interface Choice {
  origin?: RouteOrigin;
  /** Every remaining origin is ejected or reported unhealthy: one of them was chosen anyway. */
  failedOpen: boolean;
  /** When failing open: how many origins were left to try (a count, so the log line stays small). */
  remaining?: number;
}

/** Routes up to this many origins take the list path (cheap at this size, and exact). */
export const SMALL_ROUTE = 32;

/**
 * How long a route found with every healthy origin ejected fails open without
 * looking again: one scan per second instead of one per request. Ejections
 * last 10 s or more, so a node coming back waits at most this long.
 */
export const ALL_EJECTED_RECHECK_MS = 1_000;

export function chooseOrigin(route: Route, ctx: ChooseContext): Choice {
  if (route.size <= SMALL_ROUTE) return chooseFromList(route, ctx);
  if (route.healthyCount > 0) {
    const state = ctx.state;
    // The clock is read only while the route is marked (the common path stays clock-free).
    if (state.allEjectedUntil === 0 || state.allEjectedUntil <= (ctx.now ?? Date.now)()) {
      const origin = chooseHealthy(route, ctx);
      if (origin) {
        state.allEjectedUntil = 0;
        return { origin, failedOpen: false };
      }
      // Unless this request's own tries hide a usable origin, every healthy one is ejected.
      if (everyTriedEjected(ctx)) state.allEjectedUntil = (ctx.now ?? Date.now)() + ALL_EJECTED_RECHECK_MS;
    }
  }
  return failOpen(route, ctx);
}

/**
 * The ejection cap's pool for an origin of this route: its Service's NodePort
 * in its cluster, sized by the Service's serving (agent-healthy) nodes, or all
 * of them when none is. O(Services behind the hostname).
 */
export function ejectionPool(route: Route, origin: Pick<RouteOrigin, "cluster" | "port">): EjectionPool | undefined {
  for (const b of route.backends) {
    if (b.cluster === origin.cluster && b.port === origin.port) return { id: `${b.cluster}:${b.port}`, size: b.healthy.length || b.size };
  }
  return undefined;
}

function everyTriedEjected(ctx: ChooseContext): boolean {
  for (const key of ctx.tried) if (!ctx.isEjected(key)) return false;
  return true;
}

const usable = (key: string, ctx: ChooseContext) => !ctx.tried.has(key) && !ctx.isEjected(key);

function listChoice(list: readonly RouteOrigin[], route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  if (ctx.cookie !== undefined) {
    const pinned = list.find((o) => cookieValue(o) === ctx.cookie);
    if (pinned) return pinned;
  }
  if (ctx.clientIp !== undefined) return rendezvous(ctx.clientIp, list);
  return pick(route.policy.algorithm, list, { state: ctx.state, inFlight: ctx.inFlight, random: ctx.random });
}

/** The proxy's original path: filter the route's origins, then choose. */
/**
 * A small route's origins, made once per route: routes are immutable and rebuilt on each snapshot
 * load, so the list (frozen: requests share it) lives as long as the route does. Not once per request.
 */
const smallRouteOrigins = new WeakMap<Route, readonly RouteOrigin[]>();
function originsOf(route: Route): readonly RouteOrigin[] {
  let list = smallRouteOrigins.get(route);
  if (list === undefined) smallRouteOrigins.set(route, (list = Object.freeze(routeOrigins(route).map((o) => Object.freeze(o)))));
  return list;
}

function chooseFromList(route: Route, ctx: ChooseContext): Choice {
  const all = originsOf(route);
  // The usual request: nothing tried yet, every node healthy and not ejected: the list as it is.
  let usableAll = ctx.tried.size === 0;
  for (let i = 0; usableAll && i < all.length; i++) usableAll = all[i]!.healthy && !ctx.isEjected(all[i]!.key);
  if (usableAll && all.length > 0) return { origin: listChoice(all, route, ctx), failedOpen: false };
  const fresh = all.filter((o) => !ctx.tried.has(o.key));
  const ok = fresh.filter((o) => o.healthy && !ctx.isEjected(o.key));
  if (ok.length > 0 || fresh.length === 0) return { origin: listChoice(ok, route, ctx), failedOpen: false };
  // Every remaining node is ejected or reported unhealthy: trying them beats refusing.
  return { origin: listChoice(fresh, route, ctx), failedOpen: true, remaining: fresh.length };
}

/**
 * Every remaining origin is ejected or reported unhealthy: trying them beats
 * refusing. Chooses among all untried origins of the route by its policy,
 * skipping only the few this request tried: O(tried), not O(size).
 */
function failOpen(route: Route, ctx: ChooseContext): Choice {
  // Tried keys are origins of this route.
  const left = route.size - ctx.tried.size;
  if (left <= 0) return { failedOpen: false };
  const origin = chooseAny(route, ctx);
  return origin ? { origin, failedOpen: true, remaining: left } : { failedOpen: false };
}

function chooseAny(route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  if (ctx.cookie !== undefined) {
    const pinned = pinnedByCookie(route, ctx.cookie);
    if (pinned && !ctx.tried.has(pinned.key)) return pinned;
  }
  if (ctx.clientIp !== undefined) return highestScore(route, ctx.clientIp, ctx, true);
  const n = route.size;
  switch (route.policy.algorithm) {
    case "weighted":
      if (!route.uniformWeights) return untriedFrom(route, weightedPosition(route, ctx), ctx)?.[1];
      return untriedFrom(route, ctx.state.next++ % n, ctx)?.[1];
    case "round-robin":
      return untriedFrom(route, ctx.state.next++ % n, ctx)?.[1];
    case "random":
      return untriedFrom(route, Math.floor(ctx.random() * n), ctx)?.[1];
    case "least-request": {
      const a = untriedFrom(route, Math.floor(ctx.random() * n), ctx);
      if (!a) return undefined;
      const b = untriedFrom(route, Math.floor(ctx.random() * n), ctx);
      if (!b || b[0] === a[0]) return a[1];
      return ctx.inFlight(b[1].key) < ctx.inFlight(a[1].key) ? b[1] : a[1];
    }
  }
}

/** The i-th origin of the route (0 ≤ i < size): backend and position. */
function originIndex(route: Route, i: number): [Backend, number] {
  for (const b of route.backends) {
    if (i < b.size) return [b, i];
    i -= b.size;
  }
  throw new Error("origin index out of range");
}

/** From index start on, the first origin this request has not tried (wrapping). */
function untriedFrom(route: Route, start: number, ctx: ChooseContext): [number, RouteOrigin] | undefined {
  const n = route.size;
  for (let j = 0; j < n; j++) {
    const i = (start + j) % n;
    const [b, pos] = originIndex(route, i);
    if (!ctx.tried.has(originKey(b, pos))) return [i, originAt(b, pos)];
  }
  return undefined;
}

/** A random origin index with probability proportional to its weight: O(log size) after one O(size) build. */
function weightedPosition(route: Route, ctx: ChooseContext): number {
  let sums = ctx.state.cumulativeWeights;
  if (!sums || sums.length !== route.size) {
    sums = new Float64Array(route.size);
    let total = 0;
    let i = 0;
    for (const b of route.backends) for (let p = 0; p < b.size; p++) sums[i++] = total += b.weights ? b.weights[p]! : 1;
    ctx.state.cumulativeWeights = sums;
  }
  const r = ctx.random() * sums[sums.length - 1]!;
  let lo = 0;
  let hi = sums.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sums[mid]! > r) hi = mid;
    else lo = mid + 1;
  }
  return lo;
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
 * A random usable origin: random draws first, so an ejected node's share
 * spreads over all others rather than landing on its neighbour, then a linear
 * probe (bounded by the route's size) for when most are out.
 */
function probeRandom(route: Route, ctx: ChooseContext, skip = -1): [number, RouteOrigin] | undefined {
  const n = route.healthyCount;
  for (let k = 0; k < RANDOM_DRAWS; k++) {
    const i = Math.floor(ctx.random() * n);
    if (i === skip) continue;
    const [b, pos] = healthyAt(route, i);
    if (usable(originKey(b, pos), ctx)) return [i, originAt(b, pos)];
  }
  return probe(route, Math.floor(ctx.random() * n), ctx, skip);
}

/** Half of the healthy origins out leaves 1/256 of picks to the probe. */
const RANDOM_DRAWS = 8;

/**
 * Round robin over the healthy origins. An unusable origin's turn passes to
 * the next pick, not to its neighbour: the counter moves past it, so every
 * usable origin still gets exactly one pick per cycle and an ejected node's
 * share spreads evenly over all the others.
 */
function nextInTurn(route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  const n = route.healthyCount;
  for (let j = 0; j < n; j++) {
    const [b, pos] = healthyAt(route, ctx.state.next++ % n);
    if (usable(originKey(b, pos), ctx)) return originAt(b, pos);
  }
  return undefined;
}

/** A usable healthy origin, or undefined when none is left. */
function chooseHealthy(route: Route, ctx: ChooseContext): RouteOrigin | undefined {
  const n = route.healthyCount;
  if (n === 0) return undefined;
  if (ctx.cookie !== undefined) {
    const pinned = pinnedByCookie(route, ctx.cookie);
    if (pinned && pinned.healthy && usable(pinned.key, ctx)) return pinned;
  }
  if (ctx.clientIp !== undefined) return highestScore(route, ctx.clientIp, ctx, false);
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
      return nextInTurn(route, ctx);
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
 * Client-ip affinity in O(√n)-ish instead of O(n): two-level rendezvous
 * hashing. A Cluster Service's nodes sit in AFFINITY_GROUPS fixed groups (by
 * the node's own seed); a Local Service's few nodes are one group. The client
 * picks a group by weighted rendezvous (weight = the group's node count, so
 * every node gets an even share), then a node inside it by plain rendezvous.
 * A node that is unhealthy, ejected or tried is skipped inside its group, so
 * only its own clients move (about 1/N of them); a group with no usable node
 * hands its clients to their next-best group. Failing open, every untried
 * origin counts as usable, whatever its health.
 */
function highestScore(route: Route, clientIp: string, ctx: ChooseContext, failOpen: boolean): RouteOrigin | undefined {
  const client = hash32(clientIp);
  // Candidate groups with their weighted-rendezvous rank (smaller is better).
  const groups: { b: Backend; nodes: number[] | undefined; positions: number; rank: number }[] = [];
  for (const b of route.backends) {
    if ((failOpen ? b.size : b.healthy.length) === 0) continue;
    if (b.members) {
      groups.push({ b, nodes: undefined, positions: b.size, rank: rankOf(client, groupSeed(b), b.size) });
      continue;
    }
    const g = affinityOf(b.table);
    for (let k = 0; k < AFFINITY_GROUPS; k++) {
      const nodes = g.members[k]!;
      if (nodes.length > 0) groups.push({ b, nodes, positions: nodes.length, rank: rankOf(client, g.groupSeeds[k]!, nodes.length) });
    }
  }
  // Best-ranked group first; the next one only when a group has no usable node.
  for (let left = groups.length; left > 0; left--) {
    let at = 0;
    for (let k = 1; k < groups.length; k++) if (groups[k]!.rank < groups[at]!.rank) at = k;
    const grp = groups[at]!;
    grp.rank = Infinity;
    const b = grp.b;
    const seeds = affinityOf(b.table).nodeSeeds;
    let best = -1;
    let bestScore = -1;
    let bestKey = "";
    for (let k = 0; k < grp.positions; k++) {
      // Position in the backend: a node index for Cluster Services, a member index for Local ones.
      const pos = grp.nodes ? grp.nodes[k]! : k;
      if (!failOpen && !(b.memberHealthy ? b.memberHealthy[pos]! : b.table.healthy[pos]!)) continue;
      const score = rendezvousScore(client, seeds[nodeAt(b, pos)]!);
      if (score < bestScore) continue;
      const key = originKey(b, pos);
      if (score === bestScore && key >= bestKey) continue;
      if (failOpen ? ctx.tried.has(key) : !usable(key, ctx)) continue;
      best = pos;
      bestScore = score;
      bestKey = key;
    }
    if (best !== -1) return originAt(b, best);
  }
  return undefined;
}

function groupSeed(b: Backend): number {
  return hash32(`${b.cluster}/${b.service}#local`);
}

/** Weighted rendezvous: -ln(u)/w, u uniform in (0, 1) from the hash; the smallest wins. */
function rankOf(client: number, seed: number, weight: number): number {
  const u = (rendezvousScore(client, seed) + 0.5) / 4294967296;
  return -Math.log(u) / weight;
}

/** The origin an affinity cookie names: one lookup per cluster by the cookie's node part. */
function pinnedByCookie(route: Route, cookie: string): RouteOrigin | undefined {
  const nodePart = cookie.slice(0, COOKIE_NODE_CHARS);
  for (const b of route.backends) {
    const table = b.table;
    if (!table.cookieNodes) {
      // Shared by every Service of the cluster: O(nodes) once per snapshot.
      table.cookieNodes = new Map();
      for (let i = 0; i < table.names.length; i++) table.cookieNodes.set(cookieNodePart(table.cluster, table.names[i]!), i);
    }
    const node = table.cookieNodes.get(nodePart);
    if (node === undefined) continue;
    const pos = b.members ? b.members.indexOf(node) : node;
    if (pos === -1) continue;
    const origin = originAt(b, pos);
    if (cookieValue(origin) === cookie) return origin;
  }
  return undefined;
}
