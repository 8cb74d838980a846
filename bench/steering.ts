// Multi-cluster steering cost (issue 18): 3 clusters × 5,000 Services, every
// hostname claimed by all three, one steering rule per policy. A decision is
// what the edge does per request before the proxy: route lookup, the
// hostname's rule, the claims, request.cf, and the ordered clusters
// (worker/steering/request.ts steerRequest). Runs the worker's real modules in
// this Node process; target: under 20 µs per decision.
import { performance } from "node:perf_hooks";
import { fmt, verdictOf, type Section, type TargetRow } from "./lib/report.ts";
import { rng, serviceHostname, syntheticSnapshot } from "./lib/snapshots.ts";

export interface SteeringBenchOptions {
  quick: boolean;
  log: (line: string) => void;
}

// The worker's modules are loaded by URL (typed against workers-types, which
// the node-side type check does not load). The shapes used here:
interface Route {
  cluster: string;
}
type RouteIndex = object;
interface Steered {
  routes: Route[];
}
const importWorker = <T>(p: string): Promise<T> => import(new URL(p, import.meta.url).href) as Promise<T>;

export const POLICY_RULES: Record<string, (clusters: string[]) => object> = {
  failover: (c) => ({ policy: "failover", clusters: c }),
  proximity: (c) => ({ policy: "proximity", clusters: c }),
  geo: (c) => ({ policy: "geo", countries: { DE: [c[1], c[0]] }, continents: { EU: [c[1], c[2]] }, default: c }),
  weighted: (c) => ({ policy: "weighted", weights: { [c[0]!]: 80, [c[1]!]: 15, [c[2]!]: 5 } }),
  random: (c) => ({ policy: "random", clusters: c }),
};

const CLUSTERS = ["us-east", "eu-central", "ap-south"];
const LOCATIONS = [
  { lat: 39.04, lon: -77.49 },
  { lat: 50.11, lon: 8.68 },
  { lat: 19.08, lon: 72.88 },
];
/** Clients from a few places, as request.cf gives them (strings). */
const CLIENTS = [
  { country: "DE", continent: "EU", latitude: "52.52", longitude: "13.40" },
  { country: "US", continent: "NA", latitude: "42.36", longitude: "-71.06" },
  { country: "IN", continent: "AS", latitude: "28.61", longitude: "77.21" },
  { country: "BR", continent: "SA", latitude: "-23.55", longitude: "-46.63" },
];

export interface SteeringMeasure {
  policy: string;
  decisionUs: number;
  decisions: number;
  /** How often each cluster came first: a sanity check that the decisions are real. */
  firsts: Record<string, number>;
}

export async function measureSteering(services: number, decisions: number): Promise<SteeringMeasure[]> {
  const { validateSnapshot } = await importWorker<{ validateSnapshot(v: unknown): { ok: true; snapshot: unknown } | { ok: false; error: string } }>("../worker/snapshot/schema.ts");
  const { buildIndex, lookupHost } = await importWorker<{
    buildIndex(list: { cluster: string; snapshot: unknown }[]): RouteIndex;
    lookupHost(index: RouteIndex, host: string): Route | undefined;
  }>("../worker/config/routes.ts");
  const { parseSteering } = await importWorker<{ parseSteering(raw: string, served: string[]): { ok: true; steering: unknown } | { ok: false; error: string } }>(
    "../worker/steering/settings.ts",
  );
  const { steerRequest } = await importWorker<{
    steerRequest(index: RouteIndex, owner: Route, host: string, request: Request, deps: unknown): Steered | undefined;
  }>("../worker/steering/request.ts");

  const snapshots = CLUSTERS.map((cluster, i) => {
    const input = { ...syntheticSnapshot({ nodes: 50, services, seed: 7 + i }), cluster, location: LOCATIONS[i] };
    const parsed = validateSnapshot(input);
    if (!parsed.ok) throw new Error(parsed.error);
    return { cluster, snapshot: parsed.snapshot as { location: { lat: number; lon: number } } };
  });
  const index = buildIndex(snapshots);
  const byName = new Map(snapshots.map((s) => [s.cluster, s.snapshot]));
  const hosts = Array.from({ length: services }, (_, i) => serviceHostname(i));
  // Requests are built before timing: the runtime makes them, not the worker.
  const requests = hosts.slice(0, 1000).map((h, i) => {
    const req = new Request(`https://${h}/`, { headers: { "cf-connecting-ip": `198.51.100.${i % 250}` } });
    Object.defineProperty(req, "cf", { value: CLIENTS[i % CLIENTS.length] });
    return req;
  });
  const out: SteeringMeasure[] = [];
  const random = rng(1);
  for (const [policy, rule] of Object.entries(POLICY_RULES)) {
    // One wildcard rule per team domain: the lookup a real setting with many rules makes.
    const setting: Record<string, object> = {};
    for (let t = 0; t < 50; t++) setting[`*.team-${t}.bench.example.com`] = rule(CLUSTERS);
    const parsed = parseSteering(JSON.stringify(setting), CLUSTERS);
    if (!parsed.ok) throw new Error(parsed.error);
    const now = Date.now();
    const deps = {
      steering: parsed.steering,
      staleAfterMs: 300_000,
      localMode: false,
      cluster: (name: string) => {
        const s = byName.get(name);
        return s ? { loadedAt: now, location: s.location } : undefined;
      },
      now: () => now,
      random,
    };
    const firsts: Record<string, number> = {};
    const run = (n: number, count: boolean) => {
      for (let i = 0; i < n; i++) {
        const req = requests[i % requests.length]!;
        const host = hosts[i % requests.length]!;
        const owner = lookupHost(index, host)!;
        const steered = steerRequest(index, owner, host, req, deps)!;
        if (count) {
          const c = steered.routes[0]!.cluster;
          firsts[c] = (firsts[c] ?? 0) + 1;
        }
      }
    };
    run(Math.min(decisions, 20_000), true); // warm up the JIT, and count who comes first
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    run(decisions, false);
    const cpu = process.cpuUsage(cpu0);
    const wallUs = (performance.now() - t0) * 1000;
    const cpuUs = cpu.user + cpu.system;
    out.push({ policy, decisionUs: Math.min(cpuUs, wallUs) / decisions, decisions, firsts });
  }
  return out;
}

export async function runSteering(o: SteeringBenchOptions): Promise<Section> {
  const services = o.quick ? 1000 : 5000;
  const decisions = o.quick ? 20_000 : 200_000;
  o.log(`  steering: 3 clusters × ${services.toLocaleString("en-US")} services, ${decisions.toLocaleString("en-US")} decisions per policy…`);
  const results = await measureSteering(services, decisions);
  const worst = Math.max(...results.map((r) => r.decisionUs));
  const label = `3 clusters × ${services.toLocaleString("en-US")} Services`;
  const targets: TargetRow[] = [
    {
      target: `steering decision < 20 µs (${label})`,
      result: `${fmt(worst, 2)} µs (slowest policy)`,
      verdict: o.quick ? "" : verdictOf(worst < 20),
      ...(worst >= 20 ? { limit: "route lookup + rule lookup + request.cf parsing + per-cluster ordering, per request" } : {}),
    },
  ];
  return {
    title: "5. Multi-cluster steering (3 clusters, every hostname claimed by all three; the worker's modules in Node 20)",
    targets,
    notes: [
      "decision = lookupHost + the hostname's EDGELB_STEERING rule (50 wildcard rules) + its three claims + request.cf + the ordered clusters with skip reasons (worker/steering/request.ts), as the edge runs it before the proxy; CPU µs per decision after a warm-up",
      "clients from Berlin, Boston, Delhi and São Paulo in turn; 'first' counts which cluster each policy put first",
    ],
    columns: ["policy", "services", "decisions", "µs per decision", "first: us-east / eu-central / ap-south"],
    rows: results.map((r) => [
      r.policy,
      services.toLocaleString("en-US"),
      r.decisions.toLocaleString("en-US"),
      fmt(r.decisionUs, 2),
      CLUSTERS.map((c) => String(r.firsts[c] ?? 0)).join(" / "),
    ]),
    data: { services, clusters: CLUSTERS, results },
  };
}
