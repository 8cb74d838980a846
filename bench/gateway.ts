// Gateway API routing cost (issue 17): a decision under 20 µs with 5,000
// HTTPRoutes × 5 rules. Measured on the worker's real modules in Node (tsx),
// in this process: the snapshot's gateway section is validated and compiled
// (buildGatewayIndex) once, then each decision is what the request path does
// for a Gateway hostname before any I/O: lookupGateway (host → table),
// decide (spec-precedence match + weighted backendRef) and chooseOrigin (the
// proxy's node pick for that backend).
import { buildGatewayIndex, decide, lookupGateway, matchInput } from "../worker/gateway/index.ts";
import { chooseOrigin, type ChooseContext } from "../worker/balancer/route.ts";
import { newBalancerState, type BalancerState } from "../worker/balancer/index.ts";
import type { Route } from "../worker/config/routes.ts";
import { SNAPSHOT_SCHEMA, validateSnapshot, type SnapshotInput } from "../worker/snapshot/schema.ts";
import type { GatewaySectionInput } from "../worker/snapshot/gateway.ts";
import { fmt, verdictOf, type Section } from "./lib/report.ts";

export interface GatewayBenchOptions {
  quick: boolean;
  log: (line: string) => void;
}

type RuleInput = GatewaySectionInput["routes"][number]["rules"][number];

/** Five rules per route, one of each kind of match a real route has. */
function rules(i: number): RuleInput[] {
  const b = (n: number, weight?: number) => ({ namespace: `ns-${i % 50}`, name: `svc-${(i + n) % 5000}`, port: 80, ...(weight === undefined ? {} : { weight }) });
  return [
    { matches: [{ path: { type: "Exact", value: "/healthz" } }], backendRefs: [b(0)] },
    { matches: [{ path: { type: "PathPrefix", value: `/api/v1/r${i}` }, headers: [{ type: "Exact", name: "x-canary", value: "true" }] }], backendRefs: [b(1)] },
    { matches: [{ path: { type: "PathPrefix", value: "/api" }, method: "POST" }, { path: { type: "PathPrefix", value: "/api" }, queryParams: [{ type: "Exact", name: "v", value: "2" }] }], backendRefs: [b(1, 90), b(2, 10)] },
    { matches: [{ path: { type: "RegularExpression", value: "/static/[a-z0-9]+\\.(css|js)" } }], backendRefs: [b(3)] },
    { matches: [{ path: { type: "PathPrefix", value: "/" } }], backendRefs: [b(0, 80), b(4, 20)] },
  ];
}

export function gatewaySnapshot(routes: number, nodes: number, sharedHost: boolean): SnapshotInput {
  const section: GatewaySectionInput = { backends: [], routes: [] };
  for (let s = 0; s < 5000; s++) {
    section.backends.push({ namespace: `ns-${s % 50}`, name: `svc-${s}`, port: 80, nodePort: 30000 + (s % 2700) });
  }
  // Every backendRef names ns-(i%50)/svc-k: list each such pair once.
  const listed = new Set(section.backends.map((b) => `${b.namespace}/${b.name}`));
  for (let i = 0; i < routes; i++) {
    for (const rule of rules(i)) {
      for (const ref of rule.backendRefs ?? []) {
        if ("invalid" in ref) continue;
        const key = `${ref.namespace}/${ref.name}`;
        if (!listed.has(key)) {
          listed.add(key);
          section.backends.push({ namespace: ref.namespace, name: ref.name, port: 80, nodePort: 30000 + (i % 2700) });
        }
      }
    }
    section.routes.push({
      namespace: `ns-${i % 50}`,
      name: `route-${i}`,
      creationTimestamp: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      gateway: "edge/public",
      listener: "https",
      hostnames: sharedHost ? ["shop.example.com"] : [`app-${i}.example.com`, ...(i % 10 === 0 ? [`*.tenant-${i}.example.com`] : [])],
      rules: rules(i),
    });
  }
  return {
    schema: SNAPSHOT_SCHEMA,
    cluster: "bench",
    generation: 1,
    publishedAt: new Date().toISOString(),
    nodes: Array.from({ length: nodes }, (_, n) => ({ name: `node-${n}`, address: `10.0.${n >> 8}.${n & 255}`, healthy: n % 20 !== 0 })),
    services: [],
    gateway: section,
  };
}

function cpuMs(f: () => void): number {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

interface Measured {
  label: string;
  build: number;
  decisionUs: number;
  decisions: number;
  hits: Record<string, number>;
}

export function measure(label: string, routes: number, sharedHost: boolean, decisions: number): Measured {
  const input = gatewaySnapshot(routes, 1000, sharedHost);
  let index!: ReturnType<typeof buildGatewayIndex>;
  const build = cpuMs(() => {
    const r = validateSnapshot(input);
    if (!r.ok) throw new Error(r.error);
    index = buildGatewayIndex([{ cluster: "bench", snapshot: r.snapshot }]);
  });
  // Requests: hits on every rule kind, and misses (404), over random routes.
  const paths = ["/", "/healthz", "/api/items", "/api/v1/r7/x", "/static/app.js", "/static/a/b.css", "/checkout/cart?id=3", "/api?v=2"];
  const requests: { req: Request; url: URL; host: string }[] = [];
  for (let k = 0; k < 1000; k++) {
    const i = (k * 7919) % routes;
    const host = sharedHost ? "shop.example.com" : k % 10 === 5 ? `x.tenant-${i - (i % 10)}.example.com` : `app-${i}.example.com`;
    const path = paths[k % paths.length]!.replace("/r7/", `/r${i}/`);
    const headers = k % 3 === 0 ? { "x-canary": "true" } : undefined;
    const req = new Request(`https://${host}${path}`, { method: k % 4 === 0 ? "POST" : "GET", headers });
    requests.push({ req, url: new URL(req.url), host });
  }
  const states = new WeakMap<Route, BalancerState>();
  const ctx = (route: Route): ChooseContext => {
    let state = states.get(route);
    if (!state) states.set(route, (state = newBalancerState()));
    return { state, inFlight: () => 0, random: Math.random, isEjected: () => false, tried: new Set() };
  };
  const hits: Record<string, number> = {};
  const once = (k: number, count: boolean) => {
    const r = requests[k % requests.length]!;
    const table = lookupGateway(index, r.host);
    if (!table) throw new Error(`no table for ${r.host}`);
    const d = decide(table, matchInput(r.req, r.url), Math.random);
    let outcome = "404";
    if (d.kind === "matched" && d.backend?.route) {
      const choice = chooseOrigin(d.backend.route, ctx(d.backend.route));
      outcome = choice.origin ? "origin" : "no origin";
    }
    if (count) hits[outcome] = (hits[outcome] ?? 0) + 1;
  };
  for (let k = 0; k < 2000; k++) once(k, true); // warm-up, and the outcome mix
  const spent = cpuMs(() => {
    for (let k = 0; k < decisions; k++) once(k, false);
  });
  return { label, build, decisionUs: (spent * 1000) / decisions, decisions, hits };
}

export async function runGateway(o: GatewayBenchOptions): Promise<Section> {
  const routes = o.quick ? 1000 : 5000;
  const decisions = o.quick ? 20_000 : 100_000;
  const cases: [string, boolean][] = [
    [`${routes.toLocaleString("en-US")} HTTPRoutes × 5 rules, one hostname each (1 in 10 also a wildcard)`, false],
    [`${routes.toLocaleString("en-US")} HTTPRoutes × 5 rules, all on one hostname`, true],
  ];
  const rows: string[][] = [];
  const data: Measured[] = [];
  for (const [label, shared] of cases) {
    o.log(`  gateway ${label}…`);
    const m = measure(label, routes, shared, decisions);
    data.push(m);
    rows.push([label, fmt(m.decisionUs, 2), o.quick ? "" : verdictOf(m.decisionUs < 20), fmt(m.build, 0), Object.entries(m.hits).map(([k, v]) => `${k} ${v}`).join(", ")]);
    o.log(`    decision ${fmt(m.decisionUs, 2)} µs, validate + compile ${fmt(m.build, 0)} ms CPU`);
  }
  const worst = Math.max(...data.map((d) => d.decisionUs));
  return {
    title: "2g. Gateway API routing (HTTPRoute match + weighted backend + node pick, worker modules in Node 20)",
    targets: [
      {
        target: `Gateway routing decision < 20 µs at ${routes.toLocaleString("en-US")} HTTPRoutes × 5 rules`,
        result: `${fmt(worst, 2)} µs (worst of both layouts)`,
        verdict: o.quick ? "not measured" : verdictOf(worst < 20),
        ...(worst >= 20 ? { limit: "decide() reads the Exact map, the regex list and the path's own PathPrefix buckets (worker/gateway/match)" } : {}),
      },
    ],
    columns: ["config", "decision µs (CPU)", "< 20 µs", "validate + compile ms (CPU)", "outcomes of 2,000 warm-up requests"],
    rows,
    notes: [
      "synthetic gateway section (bench/gateway.ts): 1,000 nodes (1 in 20 unhealthy), 5,000 backend Services; each route has 5 rules: an Exact path, a PathPrefix with a header match, two PathPrefix matches with a method and a query match and a 90/10 split, a RegularExpression path (RE2, re2js), and a catch-all PathPrefix '/' with an 80/20 split",
      "decision = lookupGateway (hostname → table: exact, longest wildcard, '*') + decide (spec-precedence match and weighted backendRef, worker/gateway) + chooseOrigin (the proxy's node pick): CPU time per decision (process.cpuUsage) over 1,000 prebuilt requests mixing every rule kind and misses",
      "validate + compile = valibot validation of the whole snapshot (regexes compiled once to check them) + buildGatewayIndex, once per snapshot change",
    ],
    data,
  };
}
