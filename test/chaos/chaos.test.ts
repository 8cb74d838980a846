// Chaos: a steady stream of users (GETs and small POSTs) through the real
// worker in workerd while, one after another, a node is killed, a node answers
// 503, a node hangs, the API server crashes (watches reset, history
// compacted), the agent is SIGKILLed, the push sink answers 500 then 429, and
// the stored snapshot is replaced by garbage. During each fault the cluster
// changes; after each fault the edge must serve exactly what the cluster says.
//
// Both origin modes at once, on the same simulated nodes (issue 15: "the failover and chaos suites
// pass with the gate mode on"): edgelb cluster "chaos" reaches the NodePorts directly, edgelb cluster
// "chaosg" through a node gate on every node (signed requests; agent --origins gate). Each has its own
// agent (its own loadBalancerClass, Lease and Service), its own hostname and its own users; every fault
// hits both, and both must pass. One run instead of two: npm test has no time to spare.
//
//   npx vitest run --project node test/chaos      (~80 s; prints counts per fault and side, and a summary)
//   CHAOS_DEBUG=/tmp/chaos.json ...               (also writes a timeline of faults, failures, worker, agent and gate events)
//   CHAOS_SIDES=gate ...                          (one side alone: direct or gate; default both)
//
// What "failed" means here is what a user sees: anything but a 200 carrying the
// node's echo of their request (a 5xx, a reset, a timeout, a wrong body).
// Counted apart and printed:
// - PASSED_THROUGH: a 503 that node-2 sent while kube-proxy's /healthz said it
//   was fine. Must be zero: the worker retries a node's 502/503/504 on another
//   node (GETs, and these POSTs since the app opts in with
//   edgelb.dev/retry-non-idempotent) and ejects a node that keeps answering them.
// - DROPPED_BEFORE_EDGELB (tolerated, not hidden): the local workerd resetting connections it had not
//   yet handed to edgelb's handler, seen only on starved cores.
// The hung node here comes back within seconds, dropping the requests it held,
// which the worker then retries elsewhere; a node that stays hung holds them for
// the policy's responseTimeoutMs (30 s, which the agent cannot set), then GETs
// are retried and POSTs get a 504.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSnapshot, type Snapshot } from "../../worker/snapshot/schema.ts";
import type { Obj } from "../../lab/cluster/api/selectors.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { startEdgeWorker, type EdgeWorker } from "../../lab/edge/start-worker.ts";
import { spawnAgent, type AgentLine, type AgentProcess } from "./agent-process.ts";
import { startFaultProxy, type FaultProxy } from "./fault-proxy.ts";
import { startGateProcess, type GateProcess } from "./gate-process.ts";
import { watchGenerations, type GenerationWatch } from "./generations.ts";
import { countPhase, Traffic, type Outcome } from "./traffic.ts";

const BASE = "127.0.60";
const TOKEN = randomBytes(12).toString("hex");
const NODES = ["node-1", "node-2", "node-3"];
const ZONE = "topology.kubernetes.io/zone";
// Generous probe timeout: on 2 busy cores a loopback probe can take a while, and a
// flap would push (and repair the garbage) before the worker has read it.
const PROBE = { intervalMs: 500, timeoutMs: 450, rise: 2, fall: 2 };
/** Worker snapshot cache TTL (s): how soon the isolate re-reads KV and meets the garbage. */
const CACHE_TTL_S = 1;
/** Requests that must succeed while a fault is on before it is lifted. */
const DURING = 30;
/**
 * How long an agent PROCESS may take to start (node + tsx compiling the agent) before it logs its
 * first line. Harness cost, not edgelb's: on a starved machine (load 10-25) it took over 45 s. Every
 * ceiling on edgelb's behaviour after a start counts from that first line, not from the spawn.
 */
const AGENT_START_MS = 150_000;
/** From the agent's first line to the first snapshot with every node healthy: API lists, rise × probe, push. */
const FIRST_SNAPSHOT_MS = 45_000;

const PHASES = {
  nodeKilled: "node-1 killed",
  node503: "node-2 answers 503",
  nodeHung: "node-3 hangs",
  apiRestart: "API server restart",
  agentKilled: "agent SIGKILLed",
  sinkFailing: "sink answers 500 then 429",
  garbage: "stored snapshot is garbage",
} as const;

/** Counted, printed and a failure: a 503 that node-2 itself sent, during its 503 phase, reaching the user. */
const PASSED_THROUGH = (o: Outcome) => o.phase === PHASES.node503 && o.originStatus === true && o.status === 503 && o.node === "node-2";

/** "host GET /path" of every request the worker's handler finished (its request log). */
const handled = new Set<string>();

/**
 * One edgelb cluster over the simulated nodes: its agent (loadBalancerClass, Lease), its Services and
 * hostnames, its users. Both sides share the nodes, the API server, the worker and the push sink.
 */
interface Side {
  mode: "direct" | "gate";
  cluster: string;
  lbClass: string;
  /** The Service the users reach, and its hostname. */
  web: string;
  /** Appended to Service names made during faults (Service names are one namespace's). */
  suffix: string;
  agents: AgentProcess[];
  lines: AgentLine[];
  traffic: Traffic;
  gens: GenerationWatch;
  /** Hostnames the cluster holds for this side now; the edge must end up serving exactly these. */
  hostnames: Set<string>;
}

const SIDES: Side[] = [
  { mode: "direct", cluster: "chaos", lbClass: "edgelb.dev/worker", web: "web.chaos.test", suffix: "" },
  { mode: "gate", cluster: "chaosg", lbClass: "edgelb.dev/gated", web: "web.gated.chaos.test", suffix: "-g" },
]
  // CHAOS_SIDES=direct or gate runs one side alone (to tell a side's fault from the other's, or on a starved machine).
  .filter((s) => (process.env.CHAOS_SIDES ?? "direct,gate").split(",").includes(s.mode))
  .map((s) => ({ ...s, mode: s.mode as Side["mode"], agents: [], lines: [], traffic: undefined as unknown as Traffic, gens: undefined as unknown as GenerationWatch, hostnames: new Set([s.web]) }));
const forEachSide = <T>(fn: (side: Side) => Promise<T>): Promise<T[]> => Promise.all(SIDES.map(fn));
/**
 * Tolerated, counted and printed: a connection that the local workerd reset
 * before edgelb's handler logged the request at all. Seen only when the 2 cores
 * are starved (other suites running): after a stall of the isolate, requests
 * still queued in workerd are dropped together. Anything the worker did answer
 * (a 5xx, a wrong body) or that failed after it logged the request stays a failure.
 */
const droppedBeforeEdgelb = (side: Side) => (o: Outcome) => o.status === 0 && !handled.has(`${side.web} ${o.method} ${o.path}`);

let cluster: SimCluster;
/** The gated side's node gates (one process, a gate on every node's address). */
let gates: GateProcess | undefined;
let edge: EdgeWorker;
let proxy: FaultProxy;
const workerEvents: { event: string; [k: string]: unknown }[] = [];
const faults: string[] = [];
/** What the cluster holds now (both sides); the edge must end up serving exactly this. */
const expected = { zones: new Map<string, string>() };

// ---- the cluster side ----

function lbService(side: Side, name: string, hostname: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    // The users' POSTs are echoes, safe to run twice, so the app opts in to having them retried
    // like GETs. Without it a POST that reached a node is never sent to another (retry-rules tests).
    metadata: { name: `${name}${side.suffix}`, namespace: "default", annotations: { "edgelb.dev/hostnames": hostname, "edgelb.dev/retry-non-idempotent": "true" } },
    spec: { type: "LoadBalancer", loadBalancerClass: side.lbClass, selector: { app: name }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }] },
  };
}

/** A Service on each side: `<label>.chaos.test` and `<label>.gated.chaos.test`. */
function addService(name: string, label: string): void {
  for (const side of SIDES) {
    const hostname = side.web.replace(/^web\./, `${label}.`);
    cluster.create(lbService(side, name, hostname));
    side.hostnames.add(hostname);
  }
}

function deleteService(name: string, label: string): void {
  for (const side of SIDES) {
    cluster.delete("Service", `${name}${side.suffix}`);
    side.hostnames.delete(side.web.replace(/^web\./, `${label}.`));
  }
}

function setZone(node: string, zone: string): void {
  cluster.patch("Node", node, { metadata: { labels: { [ZONE]: zone } } }, { namespace: "" });
  expected.zones.set(node, zone);
}

function startAgent(side: Side): AgentProcess {
  // prettier-ignore
  const args = [
    "--cluster", side.cluster, "--kubeconfig", cluster.kubeconfigPath,
    "--load-balancer-class", side.lbClass, "--only-class", "--leader-elect-lease-name", `edgelb-sync-agent-${side.cluster}`,
    "--sink", "worker", "--worker-url", proxy.url,
    "--node-address-preference", "InternalIP", "--allow-private-addresses", "--healthz-port", String(cluster.healthzPort),
    "--health-check-interval", `${PROBE.intervalMs}ms`, "--health-check-timeout", `${PROBE.timeoutMs}ms`,
    "--rise", String(PROBE.rise), "--fall", String(PROBE.fall),
    "--coalesce", "50ms", "--max-delay", "300ms", "--min-write-interval", "100ms", "--resync-period", "0",
    "--metrics-address", "", "--log-format", "json",
    // A third of the shipped lease (15 s / 10 s), so a SIGKILLed leader is replaced soon; not tighter: the fake
    // API server shares the test's process, and at load 17 it answered renewals after > 2 s, so a 3 s / 2 s
    // lease flapped leadership and no push went out for 25 s (a hung node's held requests then hit 30 s).
    "--leader-elect-lease-duration", "5s", "--leader-elect-renew-deadline", "4s", "--leader-elect-retry-period", "500ms",
    ...(side.mode === "gate" ? ["--origins", "gate", "--gate-port", String(gates!.port)] : []),
  ];
  const run = side.agents.length + 1;
  const a = spawnAgent(args, { EDGELB_PUSH_TOKEN: TOKEN, POD_NAME: `edgelb-sync-agent-${side.cluster}-${run}`, POD_NAMESPACE: "edgelb" }, side.lines, run);
  side.agents.push(a);
  return a;
}

/** Waits for a started agent process's first log line (it is up: harness cost, see AGENT_START_MS); fails when it exits first. */
async function agentUp(side: Side, a: AgentProcess): Promise<void> {
  let exited = false;
  void a.exited.then(() => (exited = true));
  await until(
    `agent process ${a.run} to start (${side.mode})`,
    () => {
      if (side.lines.some((l) => l.run === a.run && !l.msg.startsWith("stderr:"))) return true;
      if (exited) throw new Error(`agent process ${a.run} exited before logging: ${side.lines.filter((l) => l.run === a.run).map((l) => l.msg).join("\n")}`);
      return "no log line yet";
    },
    AGENT_START_MS,
    { rethrow: true },
  );
}

// ---- the edge side, as seen from outside ----

const auth = { authorization: `Bearer ${TOKEN}` };

interface ServedCluster {
  generation: number | null;
  lastError: string | null;
  /** Each node once per cluster; edge state per origin (node + NodePort). */
  nodes: { name: string; healthy: boolean; origins: { port: number; ejected: boolean }[] }[];
  services: { name: string; hostnames: string[]; nodePort: number; endpoints?: { node: string; healthy: boolean }[] }[];
}

/**
 * The harness's own GETs of the worker's control endpoints. Retried (3 attempts) only when no answer
 * came at all: undici reusing a keep-alive socket the local workerd has just closed ("other side
 * closed"), or workerd resetting it on starved cores. An answer, whatever its status, is returned.
 */
async function harnessFetch(url: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, { headers: auth });
    } catch (err) {
      if (attempt >= 3) throw err;
      mark(`harness GET ${url} got no answer (${String((err as Error).cause ?? err)}): retried`);
    }
  }
}

/** What the worker's isolate serves now for a side's cluster (its status endpoint). */
async function served(side: Side): Promise<ServedCluster> {
  const status = (await (await harnessFetch(`${edge.url}/__edgelb/v1/status`)).json()) as { clusters: (ServedCluster & { name: string })[] };
  const c = status.clusters.find((x) => x.name === side.cluster);
  if (!c) throw new Error(`worker status has no cluster ${side.cluster}`);
  return c;
}

/** The valid snapshot stored in KV for a side's cluster, or null (nothing, or not a valid snapshot). */
async function stored(side: Side): Promise<Snapshot | null> {
  const res = await harnessFetch(`${edge.url}/__edgelb/v1/clusters/${side.cluster}`);
  const text = await res.text();
  if (res.status !== 200) return null;
  const parsed = parseSnapshot(text);
  return parsed.ok ? parsed.snapshot : null;
}

/** The web Service's nodes: its endpoints (Local) or every node (Cluster), joined with the cluster's node list. */
function webNodes(c: ServedCluster, side: Side): { node: string; healthy: boolean; ejected: boolean }[] {
  const svc = c.services.find((s) => s.hostnames.includes(side.web));
  if (!svc) return [];
  const byName = new Map(c.nodes.map((n) => [n.name, n]));
  const members = svc.endpoints ? svc.endpoints.map((e) => ({ name: e.node, healthy: e.healthy })) : c.nodes.map((n) => ({ name: n.name, healthy: n.healthy }));
  return members.flatMap((m) => {
    const n = byName.get(m.name);
    return n ? [{ node: m.name, healthy: m.healthy, ejected: n.origins.some((o) => o.port === svc.nodePort && o.ejected) }] : [];
  });
}

/** Polls until check() returns true; the error names the last thing it said was wrong. */
async function until(what: string, check: () => Promise<true | string> | true | string, timeoutMs = 30_000, opts: { rethrow?: boolean } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const r = await check();
      if (r === true) return;
      last = r;
    } catch (e) {
      if (opts.rethrow) throw e;
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const okSince = (side: Side, t: number) => side.traffic.outcomes.filter((o) => o.ok && o.startedAt >= t).length;

/** Keeps a fault on until users of both sides have been served around it for a while. */
async function serveThrough(what: string, from = Date.now()): Promise<void> {
  await forEachSide((side) =>
    until(`${DURING} requests served ${what} (${side.mode})`, () => {
      if (okSince(side, from) >= DURING) return true;
      const bad = side.traffic.outcomes.filter((o) => !o.ok && o.startedAt >= from);
      return `${okSince(side, from)} so far, ${bad.length} failed${bad.length ? ` (last: ${bad.at(-1)!.method} ${bad.at(-1)!.failure})` : ""}, ${side.traffic.inFlight()} in flight`;
    }),
  );
}

/** Waits until both sides' agents have published node `name` as `healthy` (or not) and the worker serves that. */
async function nodeServedAs(name: string, healthy: boolean, what: string): Promise<void> {
  await forEachSide((side) =>
    until(`${what} (${side.mode})`, async () => webNodes(await served(side), side).find((n) => n.node === name)?.healthy === healthy || `${name} still ${healthy ? "out" : "healthy"}`),
  );
}

/**
 * The edge serves exactly what the cluster holds: KV has it, the isolate serves
 * that generation, every node is healthy and routed (not ejected), every
 * hostname answers, and users reach every node again.
 */
async function converge(what: string): Promise<void> {
  mark(`converge ${what}`);
  await forEachSide((side) => convergeSide(side, what));
}

async function convergeSide(side: Side, what: string): Promise<void> {
  await until(`${what}: the edge to converge (${side.mode})`, async () => {
    const s = await stored(side);
    const v = await served(side);
    const problems: string[] = [];
    if (!s) return "no valid snapshot stored";
    if (v.generation !== s.generation) problems.push(`worker serves generation ${v.generation}, KV holds ${s.generation}`);
    const hosts = s.services.flatMap((x) => x.hostnames).sort();
    const want = [...side.hostnames].sort();
    if (hosts.join() !== want.join()) problems.push(`hostnames [${hosts}], cluster has [${want}]`);
    if (s.nodes.map((n) => n.name).sort().join() !== NODES.join()) problems.push(`nodes [${s.nodes.map((n) => n.name)}]`);
    // A Service created while the API server was down gets its (stand-in) EndpointSlice a moment after it:
    // until the agent has seen it, the Service is published with no ready endpoint (503 at the edge).
    for (const x of s.services) if (x.endpoints?.length === 0) problems.push(`${x.namespace}/${x.name} published with no ready endpoint`);
    for (const n of s.nodes) {
      if (!n.healthy) problems.push(`${n.name} unhealthy`);
      if (n.zone !== expected.zones.get(n.name)) problems.push(`${n.name} zone ${n.zone}, cluster has ${expected.zones.get(n.name)}`);
    }
    const routed = webNodes(v, side).filter((n) => n.healthy && !n.ejected).map((n) => n.node).sort();
    if (routed.join() !== NODES.join()) problems.push(`worker routes ${side.web} to [${routed}]`);
    const mode = s.origins?.mode ?? "direct";
    if (mode !== side.mode) problems.push(`snapshot origins ${mode}, want ${side.mode}`);
    if (v.lastError) problems.push(`worker lastError: ${v.lastError}`);
    return problems.length ? problems.join("; ") : true;
  });
  for (const host of side.hostnames) {
    const res = await harnessRequest(host, "/converged");
    const body = await res.text();
    expect(res.status, `${host} after ${what}: ${body}`).toBe(200);
    expect(res.headers.get("x-edgelb-node")).toMatch(/^node-\d$/);
  }
  const t = Date.now();
  await until(`${what}: users reach every node (${side.mode})`, () => {
    const seen = new Set(side.traffic.outcomes.filter((o) => o.ok && o.startedAt >= t).map((o) => o.node));
    return NODES.every((n) => seen.has(n)) || `answered by [${[...seen]}]`;
  });
}

let harnessRequests = 0;
/** Harness requests retried as reset before edgelb's handler: printed in the summary, at most 2 per request. */
const harnessRetries: string[] = [];
/**
 * One GET of the harness's own (not the users'), retried only when the local workerd reset the
 * connection before edgelb's handler saw the request (its request log never names that request's
 * unique path): the starved-core drop the users' traffic tolerates as DROPPED_BEFORE_EDGELB. Anything
 * edgelb answered, or failed after it saw the request, is returned or thrown as it is.
 */
async function harnessRequest(host: string, path: string): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const unique = `${path}/${++harnessRequests}`;
    try {
      return await edge.request(host, unique);
    } catch (err) {
      const key = `${host} GET ${unique}`;
      // The log line is written when edgelb answers, before its connection could break; it reaches us
      // through workerd's stdout, which a starved machine delays: wait for it before calling it a drop.
      const seen = await until(`the request log to name ${unique}`, () => handled.has(key) || "not logged", 10_000).then(() => true, () => false);
      if (seen || attempt >= 3) throw err;
      harnessRetries.push(`${host} ${unique}: ${String((err as Error).cause ?? err)}`);
      mark(`harness request ${unique} reset before edgelb's handler: retried`);
    }
  }
}

/** Every request started in the phase has its answer, and none failed (beyond DROPPED_BEFORE_EDGELB), on both sides. */
async function expectNoFailures(phase: string): Promise<void> {
  // Requests started from now on still join this phase (it stays current): only those already sent are awaited.
  const sent = Date.now();
  await forEachSide((side) =>
    until(
      `answers to every request of "${phase}" sent so far (${side.mode})`,
      () =>
        side.traffic.inFlight(phase, sent) === 0 ||
        `${side.traffic.inFlight(phase, sent)} in flight (the oldest for ${side.traffic.oldestInFlightMs(phase)} ms; ${side.traffic.inFlight(phase)} counting those sent since)`,
      50_000,
    ),
  );
  for (const side of SIDES) {
    const outcomes = side.traffic.of(phase);
    const dropped = droppedBeforeEdgelb(side);
    const failed = outcomes.filter((o) => !o.ok && !dropped(o));
    if (process.env.CHAOS_DEBUG) for (const o of failed) console.log(`[failed ${side.mode}] ${new Date(o.startedAt).toISOString()} +${o.ms}ms ${o.method} ${o.failure}`);
    const c = countPhase(phase, outcomes);
    console.log(
      `[chaos] ${phase} (${side.mode}): ${c.get} GET (${c.failedGet} failed), ${c.post} POST (${c.failedPost} failed), ${c.passedThrough} node 5xx passed through, ${outcomes.filter(dropped).length} reset by workerd before edgelb saw them, slowest ${c.maxMs} ms, answered by ${JSON.stringify(c.nodes)}`,
    );
    expect(failed.map((o) => `${o.method} ${o.failure}`).slice(0, 10), `${failed.length} failed requests during "${phase}" (${side.mode})`).toEqual([]);
    expect(c.get).toBeGreaterThan(DURING / 2);
    expect(c.post).toBeGreaterThan(DURING / 4);
  }
}

const marks: { at: string; what: string }[] = [];
function mark(what: string): void {
  marks.push({ at: new Date().toISOString(), what });
}

function begin(phase: string): number {
  mark(`begin ${phase}`);
  for (const side of SIDES) side.traffic.phase = phase;
  return Date.now();
}

beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 3, addressBase: BASE, healthzPort: 0, apiHost: `${BASE}.1` });
  for (const side of SIDES) cluster.create(lbService(side, "web", side.web));
  if (SIDES.some((s) => s.mode === "gate")) gates = await startGateProcess("chaosg", cluster.nodes);
  // workerd listens on 127.0.0.1 (port 0) whatever host Miniflare is given.
  edge = await startEdgeWorker({
    vars: {
      EDGELB_PUSH_TOKEN: TOKEN,
      EDGELB_CLUSTERS: SIDES.map((s) => s.cluster).join(","),
      EDGELB_CACHE_TTL: String(CACHE_TTL_S),
      // One line per request: proof of which requests reached edgelb's handler.
      EDGELB_REQUEST_LOGS: "true",
      // The gated side's key; the direct side signs nothing.
      ...(gates ? { EDGELB_GATE_KEY: gates.workerKey } : {}),
    },
    onLog: (line) => {
      try {
        const j = JSON.parse(line) as { event?: string; method?: string; path?: string; host?: string };
        if (j.event === "request") handled.add(`${j.host} ${j.method} ${j.path}`);
        else if (j.event) workerEvents.push(j as { event: string });
      } catch {
        if (process.env.CHAOS_DEBUG) console.log(`[workerd ${new Date().toISOString()}] ${line}`);
      }
    },
  });
  proxy = await startFaultProxy(edge.url, `${BASE}.3`);
  await forEachSide(async (side) => {
    const first = startAgent(side);
    await agentUp(side, first);
    let started = false;
    await Promise.race([
      until(`the first snapshot with every node healthy (${side.mode})`, async () => webNodes(await served(side), side).filter((n) => n.healthy).length === 3 || JSON.stringify(await served(side)), FIRST_SNAPSHOT_MS),
      first.exited.then(() => {
        if (!started) throw new Error(`the agent exited: ${side.lines.map((l) => l.msg).join("\n")}`);
      }),
    ]);
    started = true;
  });
  for (const side of SIDES) {
    side.gens = watchGenerations(edge.url, side.cluster, TOKEN, 150);
    side.traffic = new Traffic({
      send: (host, path, init) => edge.request(host, path, init),
      host: side.web,
      // Two sides' users together: less than one side had alone (5 loops every 50 ms).
      getLoops: 2,
      postLoops: 1,
      everyMs: 75,
      maxInFlight: 40,
      // Longer than the worker's 30 s response timeout: its own answer must come first.
      requestTimeoutMs: 45_000,
    });
    side.traffic.start();
  }
  await serveThrough("before any fault");
}, 90_000 + AGENT_START_MS);

afterAll(async () => {
  if (process.env.CHAOS_DEBUG) {
    const { writeFileSync } = await import("node:fs");
    const sides = SIDES.map((side) => ({ mode: side.mode, cluster: side.cluster, failed: side.traffic?.outcomes.filter((o) => !o.ok), agentLines: side.lines }));
    writeFileSync(process.env.CHAOS_DEBUG, JSON.stringify({ marks, workerEvents, sides, gateLines: gates?.lines }, null, 1));
  }
  await forEachSide(async (side) => {
    await side.traffic?.stop();
    await side.gens?.stop();
    for (const a of side.agents) a.kill("SIGKILL");
    await Promise.all(side.agents.map((a) => a.exited));
  });
  await proxy?.stop();
  await edge?.stop();
  await gates?.stop();
  await cluster?.stop();
}, 90_000);

describe("chaos: users keep being served and nothing the cluster does is lost", () => {
  it(`${PHASES.nodeKilled} (connections refused, healthz failing) and restarted`, async () => {
    const t = begin(PHASES.nodeKilled);
    const node = cluster.node("node-1");
    faults.push("node-1 killed");
    await node.setBehavior({ mode: "refuse" });
    // A dead machine fails kube-proxy's probe too (SimNode answers 503 there instead of refusing).
    node.setHealthy(false);
    addService("during-node-kill", "kill");
    await nodeServedAs("node-1", false, "the agent to take node-1 out");
    await serveThrough("around the dead node", t);
    mark("restore node");
    await node.setBehavior({ mode: "ok" });
    node.setHealthy(true);
    await converge("node-1 restarted");
    await expectNoFailures(PHASES.nodeKilled);
  }, 90_000);

  it(`${PHASES.node503} while its healthz says healthy`, async () => {
    const t = begin(PHASES.node503);
    const node = cluster.node("node-2");
    faults.push("node-2 answers 503");
    await node.setBehavior({ mode: "error", status: 503 });
    setZone("node-3", "zone-a");
    await forEachSide((side) => until(`the zone change to reach KV (${side.mode})`, async () => (await stored(side))?.nodes.find((n) => n.name === "node-3")?.zone === "zone-a" || "not yet"));
    await serveThrough("while node-2 answers 503", t);
    mark("restore node");
    await node.setBehavior({ mode: "ok" });
    await converge("node-2 answering again");
    await expectNoFailures(PHASES.node503);
  }, 90_000);

  it(`${PHASES.nodeHung} (accepts, never answers; healthz failing) and comes back`, async () => {
    const t = begin(PHASES.nodeHung);
    const node = cluster.node("node-3");
    faults.push("node-3 hangs");
    await node.setBehavior({ mode: "hang" });
    node.setHealthy(false);
    addService("during-hang", "hang");
    await nodeServedAs("node-3", false, "the agent to take node-3 out");
    const out = Date.now();
    await serveThrough("around the hung node", out);
    const held = SIDES.map((side) => `${side.traffic.inFlight(PHASES.nodeHung)} (${side.mode}; the oldest for ${side.traffic.oldestInFlightMs(PHASES.nodeHung)} ms)`).join(", ");
    // Coming back drops the held connections: the worker must retry those requests elsewhere.
    mark("restore node");
    await node.setBehavior({ mode: "ok" });
    node.setHealthy(true);
    console.log(`[chaos] ${PHASES.nodeHung}: ${held} requests were in flight when node-3 came back (${Date.now() - t} ms after the hang began)`);
    await converge("node-3 back");
    await expectNoFailures(PHASES.nodeHung);
  }, 90_000);

  it(`${PHASES.apiRestart}: crash, compaction, watches reset`, async () => {
    const t = begin(PHASES.apiRestart);
    const before = SIDES.map((side) => side.lines.length);
    faults.push("API server crash", "API history compacted", "watches reset");
    await cluster.api.stop();
    addService("during-api", "api");
    setZone("node-3", "zone-b");
    await forEachSide((side) =>
      until(`the agent to notice the outage (${side.mode})`, () => side.lines.slice(before[SIDES.indexOf(side)]).some((l) => /re-listing at/.test(l.msg)) || "no watch failure logged"),
    );
    await serveThrough("while the API server is down", t);
    cluster.api.compact();
    mark("api listen");
    await cluster.api.listen();
    await until("the agent's watches to come back", () => cluster.api.watchCount > 0 || "no watches");
    expect(cluster.api.resetWatches()).toBeGreaterThan(0);
    await converge("API server back");
    await expectNoFailures(PHASES.apiRestart);
  }, 90_000);

  it(`${PHASES.agentKilled} right after a change, then restarted`, async () => {
    const t = begin(PHASES.agentKilled);
    const old = SIDES.map((side) => side.agents.at(-1)!);
    deleteService("during-node-kill", "kill");
    addService("during-agent-kill", "agent");
    faults.push("agent SIGKILL");
    mark("agent kill");
    for (const a of old) a.kill("SIGKILL");
    for (const a of old) expect((await a.exited).signal).toBe("SIGKILL");
    setZone("node-1", "zone-c");
    await serveThrough("with no agent running", t);
    mark("agent start");
    const next = SIDES.map((side) => startAgent(side));
    await Promise.all(SIDES.map((side, i) => agentUp(side, next[i]!)));
    mark("agent up");
    await converge("agent restarted");
    for (const [i, side] of SIDES.entries()) expect(side.lines.some((l) => l.run === next[i]!.run && l.msg.startsWith("became leader"))).toBe(true);
    await expectNoFailures(PHASES.agentKilled);
  }, 90_000 + AGENT_START_MS);

  it(`${PHASES.sinkFailing}, then recovers`, async () => {
    const t = begin(PHASES.sinkFailing);
    const puts = (status: number) => proxy.injected.filter((r) => r.method === "PUT" && r.status === status).length;
    faults.push("sink 500");
    proxy.setFault({ status: 500 });
    addService("during-sink", "sink");
    setZone("node-2", "zone-d");
    await until("two pushes refused with 500", () => puts(500) >= 2 || `${puts(500)} so far`);
    faults.push("sink 429");
    proxy.setFault({ status: 429, retryAfterSeconds: 1 });
    await until("two pushes refused with 429", () => puts(429) >= 2 || `${puts(429)} so far`, 20_000);
    await serveThrough("while the sink fails", t);
    // Nothing got through meanwhile: the edge still serves the snapshot from before the fault.
    for (const side of SIDES) expect((await stored(side))?.services.some((s) => s.hostnames.some((h) => h.startsWith("sink.")))).toBe(false);
    mark("sink ok");
    proxy.setFault(null);
    await converge("sink recovered");
    await expectNoFailures(PHASES.sinkFailing);
  }, 90_000);

  it(`${PHASES.garbage}: the worker keeps the last good one and the next push repairs it`, async () => {
    const t = begin(PHASES.garbage);
    // The direct side's stored value (the worker's config handling does not depend on the origin mode).
    const side = SIDES[0]!;
    let good = await served(side);
    faults.push("KV garbage");
    const kv = await edge.mf.getKVNamespace("EDGELB_KV");
    // A push in between (a health flap) would repair KV before the worker reads it: then write it again.
    for (let attempt = 1; ; attempt++) {
      good = await served(side);
      const before = good.generation;
      await kv.put(`cluster/${side.cluster}`, '{"schema": "edgelb.dev/snapshot/v1", "generation": ');
      let rejected = false;
      await until("the worker to read the garbage, or a push to replace it", async () => {
        const v = await served(side);
        rejected = /not valid JSON/.test(v.lastError ?? "");
        return rejected || v.generation !== before || "neither yet";
      }, 15_000);
      if (rejected) break;
      expect(attempt, "garbage replaced by a push before the worker read it, three times").toBeLessThan(3);
    }
    await serveThrough("from the last good snapshot", t);
    const during = await served(side);
    expect(during.lastError).toMatch(/not valid JSON/);
    expect(during.generation).toBe(good.generation);
    expect(webNodes(during, side).map((n) => n.node).sort()).toEqual(NODES);
    addService("after-garbage", "garbage");
    await converge("garbage replaced by the next push");
    expect((await stored(side))!.generation).toBeGreaterThan(good.generation!);
    await expectNoFailures(PHASES.garbage);
  }, 90_000);

  it("never went backwards, lost nothing, and says what it did (both sides)", async () => {
    for (const side of SIDES) {
      await side.traffic.stop();
      await side.gens.stop();
    }
    const count = (e: string, cluster: string) => workerEvents.filter((x) => x.event === e && (x.cluster === cluster || String(x.origin ?? "").startsWith(`${cluster}/`))).length;
    for (const side of SIDES) {
      const all = side.traffic.outcomes;
      const dropped = all.filter(droppedBeforeEdgelb(side));
      const failed = all.filter((o) => !o.ok && !droppedBeforeEdgelb(side)(o));
      const passed = all.filter(PASSED_THROUGH);
      const pushes = side.lines.flatMap((l) => {
        const m = /^pushed generation (\d+)/.exec(l.msg);
        return m ? [{ run: l.run, generation: Number(m[1]) }] : [];
      });
      const pushed = pushes.map((p) => p.generation);
      const servedGens = side.gens.samples.map((s) => s.served).filter((g): g is number => g !== null);
      const summary = {
        side: `${side.mode} (cluster ${side.cluster}, ${side.web})`,
        requests: { sent: all.length, get: all.filter((o) => o.method === "GET").length, post: all.filter((o) => o.method === "POST").length },
        failed: { get: failed.filter((o) => o.method === "GET").length, post: failed.filter((o) => o.method === "POST").length },
        node503PassedThrough: passed.length,
        resetByLocalWorkerdBeforeEdgelb: dropped.length,
        worker: { retried: count("proxy.retry", side.cluster), ejections: count("node.ejected", side.cluster), rejectedStoredValue: count("config.rejected", side.cluster), pushesAccepted: count("push.accepted", side.cluster) },
        faultsInjected: faults.length,
        faults,
        sink: { refused: proxy.injected.length, forwarded: proxy.forwarded.length },
        agent: { processes: side.agents.length, pushes: pushed.length, generations: `${pushed[0]} .. ${pushed.at(-1)}` },
        servedGenerations: `${servedGens[0]} .. ${servedGens.at(-1)} over ${side.gens.samples.length} samples`,
        probe: `${PROBE.intervalMs} ms interval, ${PROBE.timeoutMs} ms timeout, rise ${PROBE.rise}, fall ${PROBE.fall}`,
        harnessRequestsRetried: harnessRetries,
      };
      console.log(`[chaos] summary\n${JSON.stringify(summary, null, 2)}`);
      // A node's own 503 is retried on another node, never handed to the user.
      expect(passed.length, `node-2's 503s passed through to users (${side.mode})`).toBe(0);
      if (dropped.length) {
        console.log(`[chaos] ENVIRONMENT (${side.mode}): ${dropped.length} connections were reset by the local workerd before edgelb's handler saw the request (CPU starvation); not counted as edgelb failures`);
      }
      expect(failed.map((o) => `${side.mode} ${o.phase}: ${o.method} ${o.failure}`).slice(0, 10)).toEqual([]);
      expect(side.gens.backwards()).toEqual([]);
      // The watch had something to compare: enough samples and several generations served while it ran.
      // (More than 100 samples failed at load ~20: 93; quiet runs take 107–272. A cap on the gap between
      // samples failed quiet: a status read during the agents' restarts can take over 5 s.)
      expect(side.gens.samples.length, `generation samples (${side.mode})`).toBeGreaterThan(40);
      expect(new Set(servedGens).size, `generations the watch saw served (${side.mode})`).toBeGreaterThanOrEqual(3);
      // Every push the agents made, across the SIGKILL, carried a newer generation.
      expect(new Set(pushes.map((p) => p.run)).size).toBe(side.agents.length);
      for (let i = 1; i < pushed.length; i++) expect(pushed[i], `push ${i} (${side.mode})`).toBeGreaterThan(pushed[i - 1]!);
    }
    // No gate ever refused the edge's signature (the gated side's snapshot says origins mode gate: convergeSide).
    if (gates) expect(count("proxy.gate_refused", "chaosg")).toBe(0);
    expect(workerEvents.some((e) => e.event === "config.rejected")).toBe(true);
    // The sink faults were real: the agents hit both and got through afterwards.
    expect(proxy.injected.some((r) => r.status === 500) && proxy.injected.some((r) => r.status === 429)).toBe(true);
    expect(proxy.forwarded.every((r) => r.status < 500)).toBe(true);
  }, 90_000);
});
