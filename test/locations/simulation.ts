// Several Cloudflare locations at once: one plain-workerd process of the real
// worker per location (its own isolate state), all sharing one KV emulation
// that behaves like Workers KV across locations (./kv-hub). The agent watches
// the simulated cluster and pushes to location 0 only, as in production (the
// location nearest to it). Traffic runs through every location; each answer
// says which node served it (x-edgelb-node), so the suite and the bench can
// tell, per location, when it stopped sending to a node. Attempts that did not
// get an answer (refused, dropped: a connect timeout) are read from each
// location's own logs (proxy.retry / proxy.failed name the node), matched to
// the request by the x-request-id the traffic sends.
import http from "node:http";
import { pino } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { startPlainWorker, type PlainWorker } from "../../bench/workerd/index.ts";
import { cutFastPath, forwarderJs, renderHome, renderLocation, ROUTER_JS } from "./generations-home.ts";
import { startKvHub, type KvHub } from "./kv-hub.ts";

export const CLUSTER = "home";
const TOKEN = "locations-push-token";

export interface Outcome {
  location: number;
  /** The x-request-id sent, which the worker's logs repeat. */
  requestId: string;
  startedAt: number;
  ms: number;
  status: number;
  /** The node that answered. */
  node?: string;
  ok: boolean;
  failure?: string;
}

/** An attempt the worker gave up on (its proxy.retry / proxy.failed log line). */
export interface FailedAttempt {
  node: string;
  /** No connection within the connect timeout (a dropped SYN), as opposed to refused, reset or a bad answer. */
  connectTimeout: boolean;
  error: string;
  /** A connect hedge (proxy.hedge): this node's connect was slower than the hedge delay and the request moved on after `hedgedAfterMs`. */
  hedgedAfterMs?: number;
}

export interface SimulationOptions {
  locations: number;
  /** KV propagation to other locations (their read caches' lifetime). */
  propagationMs: number;
  /** EDGELB_CACHE_TTL in seconds. */
  cacheTtlS: number;
  /** First three octets of this run's loopback addresses (its own range). */
  addressBase: string;
  nodes?: number;
  /** Time between requests of one location's traffic loop. */
  everyMs?: number;
  /** Traffic loops per location (requests in flight at once, as at a busy location); default 1. */
  concurrency?: number;
  /** Agent health probing (probe timeout: default min(150 ms, interval)). */
  health?: { intervalMs: number; fall: number; timeoutMs?: number };
  vars?: Record<string, string>;
  /** The fast path: the generations object (in its own workerd) and EDGELB_FAST_CHECK in seconds; absent: KV only. */
  fastCheckS?: number;
  /** EDGELB_FAST_HOLD in seconds (absent: the worker's default, a held check). */
  fastHoldS?: number;
  /**
   * One more location, the control: the same worker and settings, but during each scenario its path
   * to the generations object is cut, so it can learn the change only from KV. At each change every
   * location other than the one pushed to starts with a freshly filled KV cache (kv-hub
   * refreshReadTimes), so KV cannot deliver the change to anyone within the propagation delay: a
   * control still on the old node when the others have converged shows the fast path delivered it.
   */
  control?: boolean;
  /** Every log line of every location (to read a failed request's story by its x-request-id). */
  onLog?: (location: number, line: string) => void;
}

export interface Simulation {
  cluster: SimCluster;
  kv: KvHub;
  workers: PlainWorker[];
  agent: Agent;
  outcomes: Outcome[];
  /** Failed attempts per request id, from the locations' logs. */
  failedAttempts: Map<string, FailedAttempt[]>;
  /**
   * Creates a LoadBalancer Service (hostnames annotation) and places its pods (placePods), or with
   * `replicas` runs them as an apps/v1 Deployment (the lab's workloads controller schedules them);
   * waits until every location serves it.
   */
  serve(o: { name: string; host: string; local?: boolean; podsOn?: string[]; replicas?: number }): Promise<void>;
  /**
   * A real rolling update that moves a Deployment's pods off `node`: cordons it, restarts the
   * Deployment (kubectl rollout restart), and waits until the rollout is complete and no pod of it
   * is left on `node` (not even a terminating one). The node stays cordoned (uncordon() undoes it).
   * Returns when its pod on `node` began terminating (the node's healthCheckNodePort says 503 from then).
   */
  rollOutOff(name: string, node: string, timeoutMs: number): Promise<number>;
  uncordon(node: string): void;
  startTraffic(host: string): void;
  stopTraffic(): Promise<void>;
  /** Waits (polling, bounded) until `check` holds. */
  until(check: () => boolean, what: string, timeoutMs: number): Promise<void>;
  /**
   * Per location: time from `since` until the last request that tried `node`,
   * requests failed, requests that waited on a connect timeout (one of their
   * attempts timed out), requests that took ≥ `slowMs`, attempts at `node`.
   */
  report(o: { since: number; node: string; slowMs: number; changedAt?: number }): LocationReport[];
  /** True when the last `n` requests of every location (started after `since`) succeeded without trying `node`. */
  allAvoid(node: string, since: number, n: number): boolean;
  /**
   * Traffic through every location while `change` happens, until every
   * location has stopped sending to `oldNode` (bounded by `timeoutMs`).
   */
  scenario(o: { host: string; oldNode: string; change: () => Promise<number | void> | number | void; timeoutMs: number; slowMs: number }): Promise<{ report: LocationReport[]; failures: Outcome[]; windowMs: number }>;
  stop(): Promise<void>;
}

export interface LocationReport {
  location: number;
  /** ms from the change (for a rollout: its pod on the old node began terminating) until the last request that tried the old node (answered, refused or timed out; 0: none after it). */
  convergedMs: number;
  requests: number;
  failed: number;
  waitedOnConnectTimeout: number;
  /** Requests that waited only a connect hedge's delay at a slow node, then were answered by another (proxy.hedge). */
  delayedByHedge: number;
  /** The longest of those delays (ms; 0: none). */
  hedgeDelayMaxMs: number;
  /** Requests that took at least the connect timeout in all, whatever the reason (a loaded machine too). */
  slowRequests: number;
  /** Attempts at the old node after the change: answers from it plus attempts it refused or dropped. */
  attemptsAtOldNode: number;
  /** Connect timeouts at nodes other than the old one (a healthy node too slow for the connect timeout: should be 0). */
  connectTimeoutsElsewhere: number;
  /** Answers from the old node before the change: > 0, or "stopped sending to it" would say nothing. */
  servedOldBefore: number;
  /** The control location (fast path cut during the scenario): not one of the measured locations. */
  control?: boolean;
  /**
   * Where the snapshot that made it route away came from (push, fast, location, kv): the first it
   * installed of the generation location 0 served once every location avoided the old node. The
   * control: what it served at the end (its status).
   */
  source?: string;
  /** That generation (the control: the one it served at the end). */
  generation?: number;
  /** ms from the change until it installed that generation (not for the control, which does not in time). */
  learnedMs?: number;
  /** Control only: it still tried the old node after the last measured location had stopped (the fast path, not KV, delivered the change to the others). */
  stillOnOldNode?: boolean;
}

/** Reads the worker's JSON log lines for attempts it gave up on. */
export function failedAttemptOf(line: string): { requestId: string; attempt: FailedAttempt } | undefined {
  if (!line.startsWith("{")) return undefined;
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (entry.event === "proxy.hedge" && typeof entry.requestId === "string" && typeof entry.slow === "string") {
    // The slow node was tried (an attempt at it), and the request moved on after the hedge delay.
    const answered = typeof entry.answered === "string" && typeof entry.afterMs === "number";
    return { requestId: entry.requestId, attempt: { node: entry.slow, connectTimeout: false, error: "connect slower than the hedge delay", ...(answered ? { hedgedAfterMs: entry.afterMs as number } : {}) } };
  }
  if (entry.event !== "proxy.retry" && entry.event !== "proxy.failed") return undefined;
  if (typeof entry.requestId !== "string" || typeof entry.node !== "string") return undefined;
  const error = typeof entry.error === "string" ? entry.error : "";
  return { requestId: entry.requestId, attempt: { node: entry.node, connectTimeout: /no connection within \d+ ms/.test(error), error } };
}

/** A snapshot a location installed (its config.loaded log line), when the simulation read it. */
export interface Load {
  location: number;
  at: number;
  generation: number;
  source: string;
}

/** Reads the worker's config.loaded lines for the simulated cluster. */
export function loadOf(line: string): Omit<Load, "location" | "at"> | undefined {
  if (!line.startsWith("{") || !line.includes('"config.loaded"')) return undefined;
  try {
    const e = JSON.parse(line) as Record<string, unknown>;
    if (e.event !== "config.loaded" || e.cluster !== CLUSTER || typeof e.generation !== "number" || typeof e.source !== "string") return undefined;
    return { generation: e.generation, source: e.source };
  } catch {
    return undefined;
  }
}

/** One GET with a Host header (fetch() cannot set Host). */
function get(url: string, host: string, timeoutMs: number, requestId?: string): Promise<{ status: number; node?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "GET", headers: { host, ...(requestId ? { "x-request-id": requestId } : {}) }, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, ...(res.headers["x-edgelb-node"] ? { node: String(res.headers["x-edgelb-node"]) } : {}) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** The source and generation of the simulated cluster's snapshot at one location (its status endpoint). */
async function statusOf(url: string): Promise<{ source?: string; generation?: number }> {
  try {
    const res = await fetch(new URL("/__edgelb/v1/status", url), { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await res.json()) as { clusters?: { name: string; source?: string | null; generation?: number | null }[] };
    const c = body.clusters?.find((x) => x.name === CLUSTER);
    return { ...(c?.source ? { source: c.source } : {}), ...(typeof c?.generation === "number" ? { generation: c.generation } : {}) };
  } catch {
    return {};
  }
}

export async function startSimulation(o: SimulationOptions): Promise<Simulation> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    const cluster = await startCluster({ standIn: true, placedLocalDrops: true, nodes: o.nodes ?? 3, addressBase: o.addressBase, healthzPort: 0 });
    stops.push(() => cluster.stop());
    const kv = await startKvHub({ host: `${o.addressBase}.1`, propagationMs: o.propagationMs });
    stops.push(() => kv.close());
    let home: PlainWorker | undefined;
    if (o.fastCheckS !== undefined) {
      home = await startPlainWorker({ name: "generations home", entry: "worker/index.ts", host: `${o.addressBase}.9`, extraFiles: { "router.js": ROUTER_JS }, render: renderHome });
      const h = home;
      stops.push(() => h.stop());
    }
    const workers: PlainWorker[] = [];
    const failedAttempts = new Map<string, FailedAttempt[]>();
    const loads: Load[] = [];
    const controlAt = o.control ? o.locations : -1;
    const measured = (location: number) => location !== controlAt;
    for (let i = 0; i < o.locations + (o.control ? 1 : 0); i++) {
      let partial = "";
      const onStdout = (text: string) => {
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          o.onLog?.(i, line);
          const load = loadOf(line.trim());
          if (load) loads.push({ location: i, at: Date.now(), ...load });
          const f = failedAttemptOf(line.trim());
          if (!f) continue;
          const list = failedAttempts.get(f.requestId) ?? [];
          list.push(f.attempt);
          failedAttempts.set(f.requestId, list);
        }
      };
      const w = await startPlainWorker({
        onStdout,
        name: i === controlAt ? `location ${i} (control)` : `location ${i}`,
        entry: "worker/index.ts",
        kvBinding: "EDGELB_KV",
        kvModuleSource: kv.moduleFor(`loc${i}`),
        host: `${o.addressBase}.${2 + i}`,
        vars: {
          EDGELB_PUSH_TOKEN: TOKEN,
          EDGELB_CLUSTERS: CLUSTER,
          EDGELB_CACHE_TTL: String(o.cacheTtlS),
          ...(o.fastCheckS !== undefined ? { EDGELB_FAST_CHECK: String(o.fastCheckS) } : {}),
          ...(o.fastCheckS !== undefined && o.fastHoldS !== undefined ? { EDGELB_FAST_HOLD: String(o.fastHoldS) } : {}),
          ...o.vars,
        },
        ...(home ? { extraFiles: { "forwarder.js": forwarderJs(home.url, i) }, render: renderLocation } : {}),
      });
      workers.push(w);
      stops.push(() => w.stop());
    }
    const log = pino({ level: "warn" }, { write: () => {} });
    const health = o.health ?? { intervalMs: 200, fall: 2 };
    const config = defaultConfig({
      cluster: CLUSTER,
      kubeconfig: cluster.kubeconfigPath,
      sink: "worker",
      workerUrl: workers[0]!.url,
      pushToken: TOKEN,
      addressPreference: ["InternalIP"],
      allowPrivateAddresses: true,
      health: { mode: "kube-proxy", intervalMs: health.intervalMs, timeoutMs: health.timeoutMs ?? Math.min(150, health.intervalMs), rise: 2, fall: health.fall, healthzPort: cluster.healthzPort },
      coalesceMs: 50,
      maxDelayMs: 300,
      minWriteIntervalMs: 100,
      resyncMs: 0,
    });
    const agent = createAgent(config, { log });
    await agent.start();
    stops.push(() => agent.stop());

    const outcomes: Outcome[] = [];
    let sequence = 0;
    let running = false;
    /** Hostnames every location serves (serve() done). */
    const served: string[] = [];
    let loops: Promise<void>[] = [];
    const everyMs = o.everyMs ?? 50;

    const until = async (check: () => boolean, what: string, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    const sim: Simulation = {
      cluster,
      kv,
      workers,
      agent,
      outcomes,
      failedAttempts,
      async serve(s) {
        if (s.replicas !== undefined) {
          cluster.create({
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name: s.name, namespace: "default", labels: { app: s.name } },
            spec: {
              replicas: s.replicas,
              selector: { matchLabels: { app: s.name } },
              template: { metadata: { labels: { app: s.name } }, spec: { containers: [{ name: "echo", image: "edgelb/echo:1", ports: [{ name: "http", containerPort: 8080 }] }] } },
            },
          });
        }
        cluster.create({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: s.name, namespace: "default", annotations: { "edgelb.dev/hostnames": s.host } },
          spec: {
            type: "LoadBalancer",
            selector: { app: s.name },
            ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
            ...(s.local ? { externalTrafficPolicy: "Local" } : {}),
          },
        });
        if (s.replicas === undefined) await cluster.placePods(s.name, s.podsOn ?? []);
        else {
          const replicas = s.replicas;
          await until(() => (cluster.get("Deployment", s.name).status?.availableReplicas ?? 0) === replicas, `${s.name}'s ${replicas} pods to be ready`, 30_000);
        }
        // Every location serves it once KV has propagated.
        const deadline = Date.now() + 15_000 + o.propagationMs * 2;
        for (const w of workers) {
          for (;;) {
            const r = await get(w.url, s.host, 5_000).catch(() => undefined);
            if (r?.status === 200 && r.node) break;
            if (Date.now() > deadline) throw new Error(`${w.name} does not serve ${s.host}: ${r ? `${r.status} ${r.body.slice(0, 200)}` : "no answer"}`);
            // A request for a hostname the location does not know yet starts a check only when its last
            // answer is over a minute old (anyone can send those); one for a hostname it serves starts one
            // when due, as a location's other traffic would.
            if (served[0] !== undefined) await get(w.url, served[0], 5_000).catch(() => undefined);
            await new Promise((res) => setTimeout(res, 50));
          }
        }
        served.push(s.host);
      },
      startTraffic(host) {
        running = true;
        const perLocation = Array.from({ length: o.concurrency ?? 1 }, () => workers.map((w, location) => ({ w, location }))).flat();
        loops = perLocation.map(async ({ w, location }) => {
          while (running) {
            const startedAt = Date.now();
            const requestId = `sim-${location}-${++sequence}`;
            try {
              const r = await get(w.url, host, 10_000, requestId);
              const ok = r.status === 200 && r.node !== undefined;
              outcomes.push({ location, requestId, startedAt, ms: Date.now() - startedAt, status: r.status, ...(r.node ? { node: r.node } : {}), ok, ...(ok ? {} : { failure: `status ${r.status}: ${r.body.slice(0, 120)}` }) });
            } catch (err) {
              outcomes.push({ location, requestId, startedAt, ms: Date.now() - startedAt, status: 0, ok: false, failure: (err as Error).message });
            }
            const wait = everyMs - (Date.now() - startedAt);
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
        });
      },
      async stopTraffic() {
        running = false;
        await Promise.all(loops.splice(0));
      },
      until,
      async rollOutOff(name, node, timeoutMs) {
        cluster.patch("Node", node, { spec: { unschedulable: true } }, { namespace: "" });
        cluster.patch("Deployment", name, { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } });
        const replicas = Number(cluster.get("Deployment", name).spec.replicas);
        let terminatingAt: number | undefined;
        await until(
          () => {
            const mine = cluster.list("Pod", "default").filter((p) => p.metadata.labels?.app === name && p.spec?.nodeName === node);
            if (terminatingAt === undefined && mine.some((p) => p.metadata.deletionTimestamp)) terminatingAt = Date.now();
            const d = cluster.get("Deployment", name);
            const done = d.status?.observedGeneration === d.metadata.generation && d.status?.updatedReplicas === replicas && d.status?.availableReplicas === replicas && d.status?.replicas === replicas;
            return done && mine.length === 0;
          },
          `${name}'s rollout off ${node}`,
          timeoutMs,
        );
        await cluster.settled();
        return terminatingAt ?? Date.now();
      },
      uncordon(node) {
        cluster.patch("Node", node, { spec: { unschedulable: false } }, { namespace: "" });
      },
      report({ since, node, slowMs, changedAt }) {
        return workers.map((_, location) => {
          const mine = outcomes.filter((x) => x.location === location && x.startedAt >= since);
          const failedAt = (x: Outcome) => failedAttempts.get(x.requestId) ?? [];
          const atOld = (x: Outcome) => (x.node === node ? 1 : 0) + failedAt(x).filter((a) => a.node === node).length;
          const tried = mine.filter((x) => atOld(x) > 0);
          const last = tried.length ? Math.max(...tried.map((x) => x.startedAt)) : since;
          return {
            location,
            convergedMs: Math.max(0, last - (changedAt ?? since)),
            requests: mine.length,
            failed: mine.filter((x) => !x.ok).length,
            // From the worker's own logs: under load a request may be slow for other reasons.
            waitedOnConnectTimeout: mine.filter((x) => failedAt(x).some((a) => a.connectTimeout)).length,
            delayedByHedge: mine.filter((x) => !failedAt(x).some((a) => a.connectTimeout) && failedAt(x).some((a) => a.hedgedAfterMs !== undefined)).length,
            hedgeDelayMaxMs: Math.max(0, ...mine.flatMap((x) => failedAt(x).map((a) => a.hedgedAfterMs ?? 0))),
            slowRequests: mine.filter((x) => x.ms >= slowMs).length,
            attemptsAtOldNode: mine.reduce((sum, x) => sum + atOld(x), 0),
            servedOldBefore: outcomes.filter((x) => x.location === location && x.node === node && x.startedAt < since).length,
            connectTimeoutsElsewhere: mine.reduce((sum, x) => sum + failedAt(x).filter((a) => a.connectTimeout && a.node !== node).length, 0),
          };
        });
      },
      allAvoid(node, since, n) {
        return workers.every((_, location) => {
          if (!measured(location)) return true;
          const mine = outcomes.filter((x) => x.location === location && x.startedAt >= since);
          return mine.length >= n && mine.slice(-n).every((x) => x.ok && x.node !== node && !(failedAttempts.get(x.requestId) ?? []).some((a) => a.node === node));
        });
      },
      async scenario({ host, oldNode, change, timeoutMs, slowMs }) {
        outcomes.length = 0;
        sim.startTraffic(host);
        try {
          // Every location must be sending to the old node before the change, or its time to stop would be vacuous.
          await until(() => workers.every((_, location) => outcomes.some((x) => x.location === location && x.node === oldNode)), `every location to send to ${oldNode} before the change`, 15_000);
          if (o.control) {
            // KV cannot deliver the change to anyone but location 0 within the propagation delay; the control cannot ask the object.
            for (let i = 1; i < workers.length; i++) kv.refreshReadTimes(`loc${i}`);
            await cutFastPath(home!.url, controlAt, true);
          }
          const since = Date.now();
          const before = workers.map((_, location) => outcomes.filter((x) => x.location === location && x.node === oldNode && x.startedAt < since).length);
          const changedAt = (await change()) ?? since;
          await until(() => sim.allAvoid(oldNode, since, 15), `every location to stop sending to ${oldNode}`, timeoutMs);
          // Not over until every location has learned the change too: avoiding a node it merely ejected
          // (a dark node) is not convergence, and its ejection may expire before it learns (another wait).
          const target = (await statusOf(workers[0]!.url)).generation ?? 0;
          const learned = (location: number) => loads.find((l) => l.location === location && l.at >= since && l.generation >= target);
          await until(() => workers.every((_, location) => !measured(location) || learned(location) !== undefined), `every location to install generation ${target}`, timeoutMs);
          const served = await Promise.all(workers.map((w) => statusOf(w.url)));
          const convergedAt = changedAt + Math.max(0, ...sim.report({ since, node: oldNode, slowMs, changedAt }).filter((r) => measured(r.location)).map((r) => r.convergedMs));
          // The control's traffic goes on a moment past the others' last attempt at the old node: does it still try it?
          if (o.control) await until(() => outcomes.some((x) => x.location === controlAt && x.startedAt > convergedAt + 200), "the control's traffic after the others converged", 10_000);
          await sim.stopTraffic();
          const windowMs = Date.now() - since;
          const report = sim.report({ since, node: oldNode, slowMs, changedAt }).map((r) => {
            const control = !measured(r.location);
            const triedOld = (x: Outcome) => x.node === oldNode || (failedAttempts.get(x.requestId) ?? []).some((a) => a.node === oldNode);
            const l = learned(r.location);
            return {
              ...r,
              servedOldBefore: before[r.location] ?? 0,
              ...(control || !l ? (served[r.location] ?? {}) : { source: l.source, generation: l.generation, learnedMs: Math.max(0, l.at - changedAt) }),
              ...(control ? { control, stillOnOldNode: outcomes.some((x) => x.location === r.location && x.startedAt >= convergedAt && triedOld(x)) } : {}),
            };
          });
          return { report, failures: outcomes.filter((x) => !x.ok), windowMs };
        } finally {
          await sim.stopTraffic();
          if (o.control) await cutFastPath(home!.url, controlAt, false);
        }
      },
      stop: async () => {
        running = false;
        await Promise.all(loops.splice(0));
        await stopAll();
      },
    };
    return sim;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
