// Hostnames claimed by more than one cluster: who owns each, who is refused,
// and who a steering rule lets serve. Computed once per route index (not per
// request) for the log and the status page.
import type { RouteIndex } from "../config/routes.ts";
import type { Logger } from "../log/index.ts";
import { ruleFor, type Steering } from "./settings.ts";

export interface HostClaims {
  pattern: string;
  /** Every cluster that claims it, in EDGELB_CLUSTERS order. */
  clusters: string[];
  /** Without a steering rule: the first cluster, which alone serves. */
  owner: string | undefined;
  /** Claims that do not serve: later clusters without a rule, clusters the rule does not list. */
  refused: string[];
  /** The steering rule's pattern and policy, when one applies. */
  steering?: { pattern: string; policy: string; clusters: string[] };
}

/** Every hostname pattern with more than one claiming cluster, or a steering rule. */
export function hostClaims(index: RouteIndex, steering: Steering): HostClaims[] {
  const out: HostClaims[] = [];
  const seen = new Set<string>();
  for (const [pattern, routes] of index.claims) {
    seen.add(pattern);
    out.push(describe(pattern, routes.map((r) => r.cluster), steering));
  }
  // Steered hostnames one cluster claims (the others may be down): listed too.
  for (const map of [index.exact, index.wildcard]) {
    for (const route of map.values()) {
      if (seen.has(route.pattern) || !ruleFor(steering, ruleHost(route.pattern))) continue;
      out.push(describe(route.pattern, [route.cluster], steering));
    }
  }
  return out.sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
}

/** A wildcard Service pattern is steered by the rule for its own spelling (`*.x` matches rule `*.x`). */
function ruleHost(pattern: string): string {
  return pattern.startsWith("*.") ? `_.${pattern.slice(2)}` : pattern;
}

function describe(pattern: string, clusters: string[], steering: Steering): HostClaims {
  const rule = ruleFor(steering, ruleHost(pattern));
  if (!rule) return { pattern, clusters, owner: clusters[0], refused: clusters.slice(1) };
  return {
    pattern,
    clusters,
    owner: undefined,
    refused: clusters.filter((c) => !rule.clusters.includes(c)),
    steering: { pattern: rule.pattern, policy: rule.policy, clusters: rule.clusters },
  };
}

/** Logs each refused claim once, when it appears (the index is rebuilt on every snapshot change). */
export class ClaimLog {
  private index: RouteIndex | undefined;
  private logged = new Set<string>();
  current: HostClaims[] = [];

  constructor(private readonly steering: Steering, private readonly log: Logger) {}

  /** Cheap when the index did not change: one identity check. */
  check(index: RouteIndex): HostClaims[] {
    if (index === this.index) return this.current;
    this.index = index;
    this.current = hostClaims(index, this.steering);
    const now = new Set<string>();
    for (const h of this.current) {
      for (const cluster of h.refused) {
        const id = `${h.pattern}|${cluster}`;
        now.add(id);
        if (this.logged.has(id)) continue;
        this.log("warn", "routes.claim_refused", {
          host: h.pattern,
          cluster,
          ...(h.owner ? { servedBy: h.owner, reason: "an earlier cluster in EDGELB_CLUSTERS serves this hostname; add an EDGELB_STEERING rule to let several clusters serve it" } : { reason: `the EDGELB_STEERING rule "${h.steering!.pattern}" does not list this cluster`, allowed: h.steering!.clusters }),
        });
      }
    }
    this.logged = now;
    return this.current;
  }
}
