// Pure: the limits the agent enforces before it publishes, so the edge never
// has to refuse a whole snapshot for one tenant's routes. Two limits, both
// from the snapshot contract (the worker checks them again and keeps its last
// good snapshot if an agent ever publishes more):
// - MAX_MATCH_ENTRIES hostname × match entries in all routes (edge memory);
// - MAX_REGEX_PATHS_PER_KEY RegularExpression paths per hostname × index key
//   (distinct patterns: edge CPU per decision, worker/snapshot/regex-key.ts).
// Routes are admitted oldest first (creationTimestamp, then namespace/name, as
// the spec breaks ties): an existing route keeps serving when a newer one would
// go over a limit, and the newer one is refused with a status that says why.
import { MAX_MATCH_ENTRIES } from "../../worker/snapshot/gateway.ts";
import { MAX_REGEX_PATHS_PER_KEY, RegexKeyBudget } from "../../worker/snapshot/regex-key.ts";

/** What the caps read of a route attachment (the contract's input shape). */
export interface CappedAttachment {
  hostnames: readonly string[];
  rules: readonly { matches?: readonly { path?: { type: string; value: string } }[] }[];
}

export class RouteCaps {
  private entries = 0;
  private readonly regex = new RegexKeyBudget();

  constructor(private readonly maxEntries = MAX_MATCH_ENTRIES) {}

  /** Admits every attachment of one route × parent, or none: undefined when admitted, else why not. */
  admit(attachments: readonly CappedAttachment[]): string | undefined {
    let entries = 0;
    for (const a of attachments) for (const r of a.rules) entries += a.hostnames.length * Math.max(1, r.matches?.length ?? 1);
    if (this.entries + entries > this.maxEntries) {
      return `the edge's route tables are full: this route adds ${entries} hostname × match entries to ${this.entries}, more than the ${this.maxEntries} the edge keeps for a cluster; older routes keep serving`;
    }
    // Several attachments of one route may share a hostname: count them together.
    const demand = new Map<string, Set<string>>();
    for (const a of attachments) {
      for (const [k, set] of RegexKeyBudget.demand(a)) {
        const have = demand.get(k);
        if (have) for (const p of set) have.add(p);
        else demand.set(k, new Set(set));
      }
    }
    const why = this.regex.admit(demand);
    if (why) return `${why}; older routes keep serving`;
    this.entries += entries;
    return undefined;
  }
}

export { MAX_MATCH_ENTRIES, MAX_REGEX_PATHS_PER_KEY };

/** Items with a route attachment's creationTimestamp and namespace/name, oldest first; `order` is the original position. */
export function byAgeOf<T extends { entries: readonly { namespace: string; name: string; creationTimestamp: string }[] }>(items: readonly T[]): { p: T; order: number }[] {
  const key = (p: T) => {
    const e = p.entries[0]!;
    return { at: Date.parse(e.creationTimestamp) || 0, id: `${e.namespace}/${e.name}` };
  };
  return items
    .map((p, order) => ({ p, order, k: key(p) }))
    .sort((a, b) => a.k.at - b.k.at || (a.k.id < b.k.id ? -1 : a.k.id > b.k.id ? 1 : 0) || a.order - b.order)
    .map(({ p, order }) => ({ p, order }));
}
