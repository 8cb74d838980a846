// Pure decisions for Service status and the Events that go with it. Input: the
// Services in the informer cache, each one's verdict from the model, and the
// snapshot the edge is actually serving. Output: which status patches to make
// and each Service's load-balancer state, whose transitions become Events.
import type { V1LoadBalancerIngress, V1Service } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { isIPLiteral } from "../../worker/snapshot/schema.ts";
import { isEdgelbIngress } from "../model/service.ts";

export { isEdgelbIngress };

/** Structural subset of the model's FinalVerdict. */
export type VerdictLike =
  | { kind: "ignored"; reason: string; foreign?: string | undefined }
  | { kind: "skipped"; reason: string }
  | {
      kind: "served";
      service?: {
        lostHostnames?: { hostname: string; to: string }[] | undefined;
        notices?: readonly PlannedEvent[] | undefined;
      };
    };

/** Structural subset of the published Snapshot. */
export interface PublishedLike {
  generation?: number;
  nodes: ReadonlyArray<{ name: string; healthy: boolean }>;
  services: ReadonlyArray<{
    namespace: string;
    name: string;
    hostnames: readonly string[];
    trafficPolicy?: "Cluster" | "Local";
    endpoints?: ReadonlyArray<{ node: string; healthy?: boolean }>;
  }>;
}

export function serviceKey(svc: { metadata?: { namespace?: string; name?: string } }): string {
  return `${svc.metadata?.namespace ?? "default"}/${svc.metadata?.name ?? ""}`;
}

/**
 * The ingress list for hostnames the edge serves. Status hostnames must be DNS
 * names: an IP literal there is invalid and "*.example.com" fails the API's
 * validation, so neither is ever written.
 */
export function ingressFor(hostnames: readonly string[]): V1LoadBalancerIngress[] {
  return hostnames.filter((h) => !isIPLiteral(h) && !h.startsWith("*.")).map((hostname) => ({ hostname }));
}

/** Canonical form for comparing ingress lists (order matters to kubectl, so keep it). */
export function ingressKey(ingress: readonly V1LoadBalancerIngress[] | undefined | null): string {
  return JSON.stringify(
    (ingress ?? []).map((i) => ({
      ...(i.hostname ? { hostname: i.hostname } : {}),
      ...(i.ip ? { ip: i.ip } : {}),
      ...(i.ipMode ? { ipMode: i.ipMode } : {}),
      ...(i.ports?.length ? { ports: i.ports } : {}),
    })),
  );
}

export type LbState =
  | { phase: "ignored" }
  /** Class-less, and another load balancer already serves it: left to that one. */
  | { phase: "foreign"; owner: string; reason: string }
  | { phase: "skipped"; reason: string }
  /** Ours and servable, but the edge does not serve it yet. */
  | { phase: "pending" }
  /** Ours, but what the edge serves is not known yet (before the stored snapshot was read). */
  | { phase: "unknown" }
  | {
      phase: "published";
      hostnames: string[];
      /** The nodes that may carry its traffic, healthy or not: health alone never makes an Event. */
      backends: BackendSet;
      available: boolean;
      failOpen: boolean;
      lost: string[];
      /** Told once each (dropped ports, wildcard-only, refused hostnames, unroutable addresses). */
      notices?: readonly PlannedEvent[];
    };

/**
 * The nodes a Service's traffic may go to (its node set, like upstream's
 * "hosts": eligible nodes, or a Local Service's endpoint nodes; health
 * does not change it). Every Cluster-policy Service of one
 * plan shares the same BackendSet object, so memory and
 * time stay O(nodes + services), not O(nodes × services): at 5,000 × 5,000
 * per-Service lists were 25M strings (~200 MB). `id` is a digest of the
 * sorted names, so comparing two sets (for "Updated load balancer with new
 * hosts") is one string comparison however many nodes there are.
 */
export interface BackendSet {
  id: string;
  count: number;
}

export function backendSet(nodes: Iterable<string>): BackendSet {
  const sorted = [...nodes].sort();
  const hash = createHash("sha256");
  for (const n of sorted) hash.update(n).update("\n");
  return { id: hash.digest("base64url"), count: sorted.length };
}

export interface PlanInput {
  services: readonly V1Service[];
  verdicts: ReadonlyMap<string, VerdictLike>;
  /** What the edge serves now (last accepted or stored snapshot); null before anything is known. */
  published: PublishedLike | null;
  /** Every node failed its checks and all were published anyway. */
  failOpen?: boolean;
  /** Local services published with all endpoints failing. */
  failOpenServices?: readonly string[];
  /** Ingress we set (or saw set to our desired value) per Service key: lets us clear it later. */
  owned: ReadonlyMap<string, string>;
}

export interface StatusPatch {
  key: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
  /** The new ingress; empty clears it. */
  ingress: V1LoadBalancerIngress[];
  from: V1LoadBalancerIngress[];
}

export interface Plan {
  patches: StatusPatch[];
  states: Map<string, LbState>;
  /** Ownership after this round (apply only for patches that succeed, see StatusWriter). */
  owned: Map<string, string>;
}

/** What the edge serves, indexed once per plan (the published snapshot can hold thousands of Services). */
export interface EdgeIndex {
  services: Map<string, PublishedLike["services"][number]>;
  /** The published nodes, shared by every Cluster-policy Service. */
  cluster: BackendSet;
}

export function indexEdge(published: PublishedLike): EdgeIndex {
  const services = new Map<string, PublishedLike["services"][number]>();
  for (const s of published.services) services.set(`${s.namespace}/${s.name}`, s);
  return { services, cluster: backendSet(published.nodes.map((n) => n.name)) };
}

export function lbState(
  svc: V1Service,
  verdict: VerdictLike | undefined,
  edge: EdgeIndex | null,
  input: { failOpen?: boolean | undefined; failOpenServices?: ReadonlySet<string> | undefined },
): LbState {
  const key = serviceKey(svc);
  if (verdict?.kind === "ignored" && verdict.foreign) return { phase: "foreign", owner: verdict.foreign, reason: verdict.reason };
  if (!verdict || verdict.kind === "ignored") return { phase: "ignored" };
  if (verdict.kind === "skipped") return { phase: "skipped", reason: verdict.reason };
  if (!edge) return { phase: "unknown" };
  const onEdge = edge.services.get(key);
  if (!onEdge) return { phase: "pending" };
  let backends: BackendSet;
  let failOpen = false;
  if (onEdge.trafficPolicy === "Local") {
    backends = backendSet((onEdge.endpoints ?? []).map((e) => e.node));
    failOpen = input.failOpenServices?.has(key) ?? false;
  } else {
    backends = edge.cluster;
    failOpen = input.failOpen ?? false;
  }
  const lost = (verdict.service?.lostHostnames ?? []).map((l) => `${l.hostname} (served by ${l.to})`);
  const notices = verdict.service?.notices;
  return {
    phase: "published",
    hostnames: [...onEdge.hostnames],
    backends,
    available: backends.count > 0,
    failOpen,
    lost,
    ...(notices && notices.length > 0 ? { notices } : {}),
  };
}

export function planStatus(input: PlanInput): Plan {
  const patches: StatusPatch[] = [];
  const states = new Map<string, LbState>();
  const owned = new Map<string, string>();
  const edge = input.published ? indexEdge(input.published) : null;
  const failOpenServices = new Set(input.failOpenServices ?? []);
  for (const svc of input.services) {
    const key = serviceKey(svc);
    const verdict = input.verdicts.get(key);
    const state = lbState(svc, verdict, edge, { failOpen: input.failOpen, failOpenServices });
    states.set(key, state);
    const current = svc.status?.loadBalancer?.ingress ?? [];
    const currentKey = ingressKey(current);
    // Entries edgelb never writes (another controller's `ip`s) stay, whatever
    // the verdict: only hostname entries are ever ours to replace or clear.
    const theirs = current.filter((i) => !isEdgelbIngress(i));
    const oursNow = current.length - theirs.length;
    let want: V1LoadBalancerIngress[] | null; // null: leave alone
    if (state.phase === "published") {
      want = [...theirs, ...ingressFor(state.hostnames)];
    } else if (state.phase === "ignored") {
      const cls = svc.spec?.loadBalancerClass;
      // Ours: written by this process, or still published at our edge (a restarted agent's stored snapshot).
      const ours = input.owned.has(key) || (!cls && edge?.services.has(key) === true);
      if (svc.spec?.type === "LoadBalancer" && !ours && (cls || !svc.metadata?.deletionTimestamp)) {
        // Not served by this process: another class's controller (maybe another edgelb), or,
        // class-less under --only-class, whoever serves class-less Services (another edgelb,
        // any controller writing hostnames) owns even its hostname entries: left exactly as found.
        want = null;
      } else {
        // Served by this process and now ignored (e.g. --only-class after a restart of the
        // Service's class), no longer a LoadBalancer, or a class-less one being deleted: our entries go.
        want = oursNow > 0 ? theirs : null;
      }
    } else if (state.phase === "foreign") {
      // Left to its owner: only a hostname of ours (from before it arrived) goes.
      want = oursNow > 0 ? theirs : null;
    } else if (state.phase === "unknown") {
      // Nothing known about the edge yet: do not touch what is there.
      want = null;
    } else {
      // Ours, but the edge does not serve it (skipped, or not pushed yet).
      want = theirs;
    }
    if (want === null) continue;
    const wantKey = ingressKey(want);
    if (wantKey !== "[]") owned.set(key, wantKey);
    if (wantKey === currentKey) continue;
    patches.push({
      key,
      namespace: svc.metadata?.namespace ?? "default",
      name: svc.metadata?.name ?? "",
      ...(svc.metadata?.uid ? { uid: svc.metadata.uid } : {}),
      ...(svc.metadata?.resourceVersion ? { resourceVersion: svc.metadata.resourceVersion } : {}),
      ingress: want,
      from: current,
    });
  }
  return { patches, states, owned };
}

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** Events for a Service's state change (status-write Events come from the patch itself). */
export function transitionEvents(prev: LbState | undefined, next: LbState, pushError: string | null, prevPushError: string | null): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  if (next.phase === "unknown") return out;
  if (next.phase === "foreign") {
    if (prev?.phase !== "foreign" || prev.reason !== next.reason) {
      out.push({ type: "Normal", reason: "LoadBalancerOwnedElsewhere", message: next.reason });
    }
    return out;
  }
  if (next.phase === "skipped") {
    if (prev?.phase !== "skipped" || prev.reason !== next.reason) {
      out.push({ type: "Warning", reason: "SyncLoadBalancerFailed", message: `Error syncing load balancer: ${next.reason}` });
    }
    return out;
  }
  if (next.phase === "pending") {
    if (prev?.phase !== "pending") out.push({ type: "Normal", reason: "EnsuringLoadBalancer", message: "Ensuring load balancer" });
    if (pushError && pushError !== prevPushError) {
      out.push({ type: "Warning", reason: "SyncLoadBalancerFailed", message: `Error syncing load balancer: the edge did not accept the snapshot: ${pushError}` });
    }
    return out;
  }
  if (next.phase !== "published") return out;
  const wasPublished = prev?.phase === "published" ? prev : null;
  // Like upstream: Events follow the node set, never health (a flapping node
  // must not write an Event on every Service; the controller logs fail-open).
  if (wasPublished && wasPublished.backends.id !== next.backends.id && next.available) {
    out.push({ type: "Normal", reason: "UpdatedLoadBalancer", message: "Updated load balancer with new hosts" });
  }
  if (!next.available && (!wasPublished || wasPublished.available)) {
    out.push({ type: "Warning", reason: "UnAvailableLoadBalancer", message: "There are no available nodes for LoadBalancer" });
  }
  const told = new Set((wasPublished?.notices ?? []).map((n) => `${n.reason}\u0000${n.message}`));
  for (const n of next.notices ?? []) if (!told.has(`${n.reason}\u0000${n.message}`)) out.push({ type: n.type, reason: n.reason, message: n.message });
  const newlyLost = next.lost.filter((l) => !wasPublished?.lost.includes(l));
  if (newlyLost.length > 0) {
    out.push({ type: "Warning", reason: "SyncLoadBalancerFailed", message: `Error syncing load balancer: hostname already in use: ${newlyLost.join(", ")}` });
  }
  return out;
}

/** The Event that goes with a successful status patch. */
export function patchEvent(p: StatusPatch): PlannedEvent {
  // Only our own (hostname) entries count: another controller's stay as they are.
  const ours = p.ingress.filter(isEdgelbIngress);
  const to = ours.map((i) => i.hostname).join(", ");
  if (ours.length === 0) return { type: "Normal", reason: "DeletedLoadBalancer", message: "Deleted load balancer" };
  if (!p.from.some(isEdgelbIngress)) return { type: "Normal", reason: "EnsuredLoadBalancer", message: `Ensured load balancer: ${to}` };
  return { type: "Normal", reason: "UpdatedLoadBalancer", message: `Updated load balancer: ${to}` };
}
