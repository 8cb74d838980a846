// One routing-cost measurement in a fresh Node process (so sizes do not share
// heaps or JIT state): `node --expose-gc --import tsx --import ./bench/lib/no-sockets.ts
// bench/routing-child.ts <nodes> <services>` prints one JSON line.
//
// It runs the worker's real modules: ConfigStore (KV read → parseSnapshot →
// validate → buildIndex, exactly what an isolate does on load and on each
// background refresh), lookupRoute, PassiveHealth, chooseOrigin (the proxy's pick), and the
// whole request path (createEdge → serve → proxy; hono only for control paths) with a transport stub that
// answers at once, so no I/O is timed.
import { performance } from "node:perf_hooks";
import { rng, serviceHostname, syntheticSnapshot } from "./lib/snapshots.ts";
import { installWorkerdStreams } from "./lib/workerd-streams.ts";

// The response relay needs workerd's IdentityTransformStream/FixedLengthStream;
// without them every request below would be a 500 (and timed as one).
installWorkerdStreams();

// The worker's modules are loaded by URL, not by static import: they are typed
// against @cloudflare/workers-types (KVNamespace, ExecutionContext), which the
// node-side type check (tsconfig.json) does not load. The shapes used here:
interface RouteOrigin {
  key: string;
  healthy: boolean;
}
interface Route {
  policy: { algorithm: string; affinity: string };
}
interface RouteIndex {
  exact: Map<string, Route>;
}
interface Store {
  refresh(): Promise<void>;
  routes: RouteIndex;
}
interface Transport {
  name: "fetch" | "socket";
  send(req: unknown): Promise<Response>;
}
type BalancerState = object;
const importWorker = <T>(p: string): Promise<T> => import(new URL(p, import.meta.url).href) as Promise<T>;
const { newBalancerState } = await importWorker<{ newBalancerState(): BalancerState }>("../worker/balancer/index.ts");
const { chooseOrigin } = await importWorker<{
  chooseOrigin(
    route: Route,
    ctx: {
      state: BalancerState;
      inFlight: (k: string) => number;
      random: () => number;
      isEjected: (k: string) => boolean;
      tried: ReadonlySet<string>;
      clientIp?: string;
    },
  ): { origin?: RouteOrigin; failedOpen: boolean };
}>("../worker/balancer/route.ts");
const { ConfigStore } = await importWorker<{
  ConfigStore: new (o: { kv: unknown; clusters: string[]; ttlMs: number; log: () => void }) => Store;
}>("../worker/config/index.ts");
const { buildIndex, lookupRoute } = await importWorker<{
  buildIndex(list: { cluster: string; snapshot: unknown }[]): RouteIndex;
  lookupRoute(index: RouteIndex, host: string): Route | undefined;
}>("../worker/config/routes.ts");
const { createEdge } = await importWorker<{
  createEdge(o: { env: unknown; transports: { fetch: Transport; socket: Transport }; log: () => void }): {
    fetch(request: Request, ctx: { waitUntil(p: Promise<unknown>): void }): Promise<Response>;
  };
}>("../worker/edge.ts");
const { PassiveHealth } = await importWorker<{
  PassiveHealth: new (o: { log: () => void }) => { isEjected(key: string): boolean };
}>("../worker/health/index.ts");
const { parseSnapshot, validateSnapshot } = await importWorker<{
  parseSnapshot(text: string): { ok: true; snapshot: unknown } | { ok: false; error: string };
  validateSnapshot(value: unknown): unknown;
}>("../worker/snapshot/schema.ts");

const nodes = Number(process.argv[2]);
const services = Number(process.argv[3]);
const budgetMs = Number(process.argv[4] ?? 1500);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Repeats fn until budgetMs of wall time (min/max runs); returns per-run CPU and wall ms. */
async function measure(fn: () => unknown, minRuns: number, maxRuns: number, budget = budgetMs): Promise<{ cpuMs: number; wallMs: number; runs: number }> {
  const c0 = cpuMs();
  const t0 = performance.now();
  let runs = 0;
  while (runs < minRuns || (runs < maxRuns && performance.now() - t0 < budget)) {
    await fn();
    runs++;
  }
  return { cpuMs: (cpuMs() - c0) / runs, wallMs: (performance.now() - t0) / runs, runs };
}

const noLog = () => {};
const text = JSON.stringify(syntheticSnapshot({ nodes, services }));
const bytes = Buffer.byteLength(text);
// The KV reads ConfigStore (getWithMetadata) and the control endpoints (get) make.
const kv = { get: async () => text, getWithMetadata: async () => ({ value: text, metadata: null, cacheStatus: null }) };

// Snapshot load, the real path: ConfigStore.refresh() on a fresh store.
const base = heapMiB();
let kept: Store | undefined;
// At least 3 loads at every size (the first one pays for JIT warm-up, as a
// fresh isolate would); more while the time budget lasts. A size that is too
// slow for 3 loads hits the parent's time limit and is reported as such.
const loadRuns = 3;
const load = await measure(
  async () => {
    kept = undefined;
    const store = new ConfigStore({ kv, clusters: ["default"], ttlMs: 10_000, log: noLog });
    await store.refresh();
    if (store.routes.exact.size === 0) throw new Error("snapshot did not load");
    kept = store;
  },
  loadRuns,
  20,
);
const retainedMiB = heapMiB() - base;
const store = kept!;

// The parts, for the breakdown.
const parse = await measure(() => JSON.parse(text), 3, 20, 500);
const value = JSON.parse(text);
const validate = await measure(() => validateSnapshot(value), 2, 20, 500);
const parsed = parseSnapshot(text);
if (!parsed.ok) throw new Error(parsed.error);
const index = await measure(() => buildIndex([{ cluster: "default", snapshot: parsed.snapshot }]), 3, 10, 500);

// Routing decision: host lookup and the proxy's choice for the first attempt
// (chooseOrigin: the balancer's pick among usable origins = healthy and not
// ejected, with client-ip affinity where the Service asks for it), over random
// hostnames of the snapshot.
const health = new PassiveHealth({ log: noLog });
const balancers = new WeakMap<object, BalancerState>();
const r = rng(3);
const hosts = Array.from({ length: 4096 }, () => serviceHostname(Math.floor(r() * services)));
let h = 0;
let sink = 0;
const decide = () => {
  const route = lookupRoute(store.routes, hosts[h++ & 4095]!);
  if (!route) throw new Error("no route");
  let state = balancers.get(route);
  if (!state) balancers.set(route, (state = newBalancerState()));
  const choice = chooseOrigin(route, {
    state,
    inFlight: () => 0,
    random: Math.random,
    isEjected: (k) => health.isEjected(k),
    tried: new Set<string>(),
    clientIp: route.policy.affinity === "client-ip" ? "203.0.113.7" : undefined,
  });
  sink += choice.origin ? 1 : 0;
};
// Batches of decisions so the clock's resolution does not matter.
const batch = 200;
for (let i = 0; i < batch * 5; i++) decide(); // warm-up (JIT)
const decision = await measure(
  () => {
    for (let i = 0; i < batch; i++) decide();
  },
  5,
  100_000,
  budgetMs,
);

// The whole worker request path in-process, I/O stubbed out: the stub answers
// like the simulated node's echo app (200, x-edgelb-node, a ~300 B JSON body).
const originBody = JSON.stringify({ node: "node-1", method: "GET", path: "/path", query: "q=1", headers: { host: "svc.bench.example.com", "x-forwarded-for": "203.0.113.7" }, bodyBytes: 0, body: "" }).padEnd(300);
const stub: Transport = {
  name: "fetch",
  send: async () => new Response(originBody, { status: 200, headers: { "content-type": "application/json", "x-edgelb-node": "node-1" } }),
};
const edge = createEdge({
  env: { EDGELB_KV: kv, EDGELB_CLUSTERS: "default" },
  transports: { fetch: stub, socket: { ...stub, name: "socket" } },
  log: noLog,
});
const ctx = { waitUntil: () => {} };
/** Only a real answer counts: 200 from the stub origin with its whole body. */
async function expectOrigin(res: Response): Promise<void> {
  const body = await res.text();
  if (res.status !== 200 || res.headers.get("x-edgelb-node") !== "node-1" || body !== originBody) {
    throw new Error(`request path answered ${res.status} (x-edgelb-node ${res.headers.get("x-edgelb-node")}): ${body.slice(0, 200)}`);
  }
}
await expectOrigin(await edge.fetch(new Request(`http://${hosts[0]}/path?q=1`, { headers: { host: hosts[0]! } }), ctx));
let k = 0;
const request = await measure(
  async () => {
    for (let i = 0; i < 50; i++) {
      const res = await edge.fetch(new Request(`http://${hosts[k & 4095]}/path?q=1`, { headers: { host: hosts[k++ & 4095]! } }), ctx);
      await expectOrigin(res);
    }
  },
  3,
  100_000,
  budgetMs,
);

process.stdout.write(
  `ROUTING_JSON ${JSON.stringify({
    nodes,
    services,
    bytes,
    load,
    retainedMiB,
    parse,
    validate,
    index,
    decision: { cpuUs: (decision.cpuMs * 1000) / batch, wallUs: (decision.wallMs * 1000) / batch, decisions: decision.runs * batch },
    request: { cpuUs: (request.cpuMs * 1000) / 50, wallUs: (request.wallMs * 1000) / 50, requests: request.runs * 50 },
    sink,
  })}\n`,
);
