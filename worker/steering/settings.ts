// EDGELB_STEERING: which clusters may serve which hostnames, and in what order.
// A JSON object of hostname pattern (exact name or `*.suffix`, one label like
// routes) → rule. Parsed once per isolate; any problem rejects the whole
// setting with a message naming the pattern and field (see ./store.ts for the
// last good setting kept in its place).
import * as v from "valibot";
import { ClusterName, Hostname } from "../snapshot/schema.ts";

export const POLICIES = ["failover", "proximity", "geo", "weighted", "random"] as const;
export type SteeringPolicy = (typeof POLICIES)[number];

export const CONTINENTS = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"] as const;

export interface SteeringRule {
  /** The pattern as configured (lowercase). */
  pattern: string;
  policy: SteeringPolicy;
  /** Every cluster allowed to serve, in configured order (failover's order; ties elsewhere). */
  clusters: string[];
  /** weighted: weight per entry of `clusters` (0 = only when the others cannot serve). */
  weights?: number[];
  /** geo: country → ordered clusters, then continent, then `fallback`. */
  countries?: Map<string, string[]>;
  continents?: Map<string, string[]>;
  fallback?: string[];
}

export interface Steering {
  exact: Map<string, SteeringRule>;
  /** Keyed by the suffix after `*.`. */
  wildcard: Map<string, SteeringRule>;
  rules: SteeringRule[];
}

export const NO_STEERING: Steering = { exact: new Map(), wildcard: new Map(), rules: [] };

const ClusterList = v.pipe(v.array(ClusterName), v.minLength(1, "must name at least one cluster"), v.maxLength(64), v.check((l) => new Set(l).size === l.length, "must not name a cluster twice"));

const Rule = v.strictObject({
  policy: v.picklist(POLICIES, `must be one of ${POLICIES.join(", ")}`),
  clusters: v.optional(ClusterList),
  weights: v.optional(v.record(ClusterName, v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1_000_000)))),
  countries: v.optional(v.record(v.pipe(v.string(), v.regex(/^[A-Z]{2}$/, "country codes are ISO 3166-1 alpha-2 in upper case, e.g. DE")), ClusterList)),
  continents: v.optional(v.record(v.picklist(CONTINENTS, `continent codes are ${CONTINENTS.join(" ")}`), ClusterList)),
  default: v.optional(ClusterList),
});

const Setting = v.pipe(v.record(v.string(), v.unknown()), v.maxEntries(10_000));

export type SteeringParse = { ok: true; steering: Steering; warnings: string[] } | { ok: false; error: string };

/** Parses EDGELB_STEERING (unset or blank: no steering). `served` are EDGELB_CLUSTERS, for warnings. */
export function parseSteering(raw: string | undefined, served: readonly string[] = []): SteeringParse {
  if (raw === undefined || raw.trim() === "") return { ok: true, steering: NO_STEERING, warnings: [] };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { ok: false, error: `EDGELB_STEERING is not JSON: ${(err as Error).message}` };
  }
  const top = v.safeParse(Setting, value);
  if (!top.success || Array.isArray(value)) {
    return { ok: false, error: `EDGELB_STEERING must be a JSON object of hostname pattern → rule, e.g. {"app.example.com": {"policy": "failover", "clusters": ["east", "west"]}}` };
  }
  const steering: Steering = { exact: new Map(), wildcard: new Map(), rules: [] };
  const warnings: string[] = [];
  const servedSet = new Set(served);
  for (const [key, body] of Object.entries(top.output)) {
    const pattern = key.trim().toLowerCase().replace(/\.$/, "");
    const where = `EDGELB_STEERING "${key}"`;
    if (!v.safeParse(Hostname, pattern).success) return { ok: false, error: `${where}: not a hostname or '*.' wildcard` };
    const parsed = v.safeParse(Rule, body);
    if (!parsed.success) {
      const issue = parsed.issues[0];
      const path = v.getDotPath(issue);
      return { ok: false, error: `${where}: ${path ? `${path}: ` : ""}${issue.message}` };
    }
    const rule = compileRule(pattern, parsed.output);
    if (typeof rule === "string") return { ok: false, error: `${where}: ${rule}` };
    const wildcard = pattern.startsWith("*.");
    const map = wildcard ? steering.wildcard : steering.exact;
    const mapKey = wildcard ? pattern.slice(2) : pattern;
    if (map.has(mapKey)) return { ok: false, error: `${where}: the pattern is given twice` };
    map.set(mapKey, rule);
    steering.rules.push(rule);
    if (servedSet.size > 0) {
      const unknown = rule.clusters.filter((c) => !servedSet.has(c));
      if (unknown.length > 0) warnings.push(`${where}: ${unknown.join(", ")} not in EDGELB_CLUSTERS; never served`);
    }
  }
  return { ok: true, steering, warnings };
}

type RuleInput = v.InferOutput<typeof Rule>;

function compileRule(pattern: string, r: RuleInput): SteeringRule | string {
  const extra = (field: string) => `"${field}" is not used by policy "${r.policy}"`;
  if (r.policy !== "weighted" && r.weights) return extra("weights");
  if (r.policy !== "geo") {
    if (r.countries) return extra("countries");
    if (r.continents) return extra("continents");
    if (r.default) return extra("default");
  }
  if (r.policy === "weighted") {
    if (!r.weights || Object.keys(r.weights).length === 0) return `policy "weighted" needs "weights", e.g. {"old": 90, "new": 10}`;
    const names = Object.keys(r.weights);
    const clusters = r.clusters ?? names;
    if (clusters.length !== names.length || clusters.some((c) => !(c in r.weights!))) return `"clusters" and the keys of "weights" must name the same clusters`;
    const weights = clusters.map((c) => r.weights![c]!);
    if (!weights.some((w) => w > 0)) return `at least one weight must be above 0`;
    return { pattern, policy: r.policy, clusters, weights };
  }
  if (r.policy === "geo") {
    if (!r.countries && !r.continents && !r.default) return `policy "geo" needs "countries", "continents" or "default"`;
    const lists = [...Object.values(r.countries ?? {}), ...Object.values(r.continents ?? {}), ...(r.default ? [r.default] : [])];
    let clusters = r.clusters;
    if (clusters) {
      const allowed = new Set(clusters);
      for (const list of lists) {
        const stray = list.find((c) => !allowed.has(c));
        if (stray) return `cluster "${stray}" is used in a geo list but not in "clusters"`;
      }
    } else {
      clusters = [...new Set(lists.flat())];
    }
    return {
      pattern,
      policy: r.policy,
      clusters,
      countries: new Map(Object.entries(r.countries ?? {})),
      continents: new Map(Object.entries(r.continents ?? {})),
      fallback: r.default ?? clusters,
    };
  }
  if (!r.clusters) return `policy "${r.policy}" needs "clusters"`;
  return { pattern, policy: r.policy, clusters: r.clusters };
}

/** The rule for a normalized request host: exact names win; `*.suffix` matches one more label. */
export function ruleFor(steering: Steering, host: string): SteeringRule | undefined {
  if (steering.rules.length === 0) return undefined;
  const exact = steering.exact.get(host);
  if (exact) return exact;
  const dot = host.indexOf(".");
  return dot > 0 ? steering.wildcard.get(host.slice(dot + 1)) : undefined;
}
