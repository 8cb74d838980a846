// Convergence across locations (issue 19) with realistic KV propagation: the
// multi-location simulation of test/locations (one plain workerd per
// location, shared KV emulation, the agent pushing to location 0), each
// scenario's per-location time until it stopped trying the old node, failed
// requests, requests that waited on a connect timeout, and attempts at the old
// node. Nodes refuse or drop like kube-proxy: a Local Service's old node drops
// new connections (DROP) once its last local pod left; a dark node drops all.
import { startSimulation, type LocationReport } from "../test/locations/simulation.ts";
import { DEFAULT_CONNECT_ATTEMPT_DELAY_MS, DEFAULT_CONNECT_TIMEOUT_MS } from "../worker/snapshot/schema.ts";
import { fmt, verdictOf, type Section } from "./lib/report.ts";

export interface ConvergenceOptions {
  locations: number;
  propagationMs: number;
  cacheTtlS: number;
  addressBase: string;
  /** Extra worker vars. */
  vars?: Record<string, string>;
  /** The fast path's check interval (EDGELB_FAST_CHECK, s); absent: KV only. */
  fastCheckS?: number;
  title: string;
  log: (line: string) => void;
}

const CONNECT_TIMEOUT_MS = DEFAULT_CONNECT_TIMEOUT_MS;
/** Requests in flight per location (a busy location), one every EVERY_MS per loop. */
const CONCURRENCY = 3;
const EVERY_MS = 100;

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)] ?? NaN;
}

export async function runConvergence(o: ConvergenceOptions): Promise<Section> {
  const hosts = Array.from({ length: o.locations }, (_, i) => `${o.addressBase}.${2 + i}`);
  const sim = await startSimulation({
    locations: o.locations,
    propagationMs: o.propagationMs,
    cacheTtlS: o.cacheTtlS,
    ...(o.fastCheckS !== undefined ? { fastCheckS: o.fastCheckS } : {}),
    addressBase: o.addressBase,
    nodes: 3,
    // Probe timeout 500 ms (the agent's default is 2 s): 150 ms made healthy nodes miss probes on a loaded machine.
    health: { intervalMs: 1_000, fall: 2, timeoutMs: 500 },
    everyMs: EVERY_MS,
    concurrency: CONCURRENCY,
    vars: { EDGELB_CONTROL_HOSTS: hosts.join(","), ...o.vars },
  });
  const timeoutMs = o.propagationMs * 2 + o.cacheTtlS * 1000 + 30_000;
  const results: { scenario: string; report: LocationReport[]; failures: number; dropped: boolean; windowMs: number; failureDetails: string[] }[] = [];
  try {
    await sim.serve({ name: "web", host: "web.example.com", podsOn: ["node-1", "node-2", "node-3"] });
    // A Deployment (the lab's workloads controller), one pod per node: the rollout moves node-3's off.
    await sim.serve({ name: "local", host: "local.example.com", local: true, replicas: 3 });
    const localPort = Number(sim.cluster.get("Service", "local").spec.ports[0].nodePort);
    const webPort = Number(sim.cluster.get("Service", "web").spec.ports[0].nodePort);
    const run = async (scenario: string, host: string, oldNode: string, change: () => Promise<number | void> | void, dropping?: () => boolean) => {
      o.log(`convergence: ${scenario}`);
      const r = await sim.scenario({ host, oldNode, change, timeoutMs, slowMs: CONNECT_TIMEOUT_MS });
      results.push({ scenario, report: r.report, failures: r.failures.length, dropped: dropping?.() ?? false, windowMs: r.windowMs, failureDetails: r.failures.slice(0, 5).map((f) => `${f.location} ${f.requestId}: ${f.failure ?? ""}`) });
    };
    await run("node fails its health check", "web.example.com", "node-2", () => sim.cluster.node("node-2").setHealthy(false));
    sim.cluster.node("node-2").setHealthy(true);
    await run("Local Service rolled out off node-3", "local.example.com", "node-3", () => sim.rollOutOff("local", "node-3", 60_000), () => sim.cluster.node("node-3").drops(localPort));
    sim.uncordon("node-3");
    await run(
      "node goes dark (drops all)",
      "web.example.com",
      "node-1",
      async () => {
        // Health fails as dropping starts (setting up the blackholes takes a while on a loaded machine).
        sim.cluster.node("node-1").setHealthy(false);
        await sim.cluster.node("node-1").setBehavior({ mode: "drop" });
      },
      () => sim.cluster.node("node-1").drops(webPort),
    );
    await sim.cluster.node("node-1").setBehavior({ mode: "ok" });
    sim.cluster.node("node-1").setHealthy(true);
    await run("node drained and removed", "web.example.com", "node-3", async () => {
      await sim.cluster.placePods("web", ["node-1", "node-2"]);
      await sim.cluster.removeNode("node-3");
    });
  } finally {
    await sim.stop();
  }

  const rows = results.flatMap((r) =>
    r.report.map((l) => [r.scenario, l.location === 0 ? "0 (pushed to)" : String(l.location), fmt(l.convergedMs / 1000), String(l.requests), String(l.failed), String(l.waitedOnConnectTimeout), l.delayedByHedge ? `${l.delayedByHedge} (≤ ${fmt(l.hedgeDelayMaxMs, 0)} ms)` : "0", String(l.attemptsAtOldNode)]),
  );
  // The issue's targets: after a node failure (health check, or dark) or a Local rollout.
  const routesAway = results.filter((r) => r.scenario !== "node drained and removed").flatMap((r) => r.report.map((l) => l.convergedMs));
  const total = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.requests, 0), 0);
  const failed = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.failed, 0), 0);
  const waited = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.waitedOnConnectTimeout, 0), 0);
  const hedged = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.delayedByHedge, 0), 0);
  const hedgeMaxMs = Math.max(0, ...results.flatMap((r) => r.report.map((l) => l.hedgeDelayMaxMs)));
  const elsewhere = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.connectTimeoutsElsewhere, 0), 0);
  const dropsSeen = results.every((r) => r.scenario === "node fails its health check" || r.scenario === "node drained and removed" || r.dropped);
  const waitedShare = total ? waited / total : 0;
  const p95s = p95(routesAway) / 1000;
  // The fast path's cost (docs/worker.md, "Cost: fast path requests"): each busy location asks once per
  // interval; pushes and snapshot fetches add one request per change (per location for fetches).
  const checksPerDay = o.fastCheckS !== undefined ? Math.round((o.locations * 86_400) / o.fastCheckS) : 0;
  const FREE_PLAN_REQUESTS = 100_000;
  return {
    title: o.title,
    columns: ["scenario", "location", "stopped trying the old node after (s)", "requests", "failed", "waited on a connect timeout", "delayed by a hedged connect (longest)", "attempts at the old node"],
    rows,
    notes: [
      `${o.locations} locations, each the real worker in its own plain workerd; KV emulated with ${o.propagationMs / 1000} s propagation to other locations (the writing location reads its own write at once); EDGELB_CACHE_TTL ${o.cacheTtlS} s; ${o.fastCheckS !== undefined ? `fast path on: the generations Durable Object (real class, in its own workerd; locations reach it over loopback) asked at most every ${o.fastCheckS} s per location` : "fast path off (KV only)"}${o.vars && Object.keys(o.vars).length ? `; ${Object.entries(o.vars).map(([k, v]) => `${k}=${v}`).join(", ")}` : ""}.`,
      `The agent (health every 1 s, fall 2, probe timeout 500 ms) pushes to location 0 only; traffic: ${CONCURRENCY} requests in flight per location, each loop one request every ${EVERY_MS} ms. Times are from the cluster change (detection included) to the last request a location tried the old node with (answered, refused or dropped; failed attempts read from each location's proxy.retry/proxy.failed logs).`,
      `The Local scenario is a real rolling update (the lab's workloads controller: apps/v1 Deployment, 3 replicas, one per node; cordon node-3, rollout restart): node-3's pod goes ready → terminating (still serving; its healthCheckNodePort says 503) → gone; its time is counted from the moment that pod began terminating, its traffic (and waits) over the whole rollout. Scenario windows (traffic start to every location avoiding the old node): ${results.map((r) => `${r.scenario} ${fmt(r.windowMs / 1000)} s`).join("; ")}.`,
      `Nodes behave like kube-proxy: once the Local Service's pods left node-3, its NodePort drops new connections (DROP, a blackhole: the connect waits for the connect timeout, ${CONNECT_TIMEOUT_MS} ms, the default); the dark node drops on every port; a removed node refuses (retried at once); a connection a NodePort accepted before its switch to DROP is answered under the old rules (the switch is atomic per connection, as kube-proxy's is). Blackhole in effect at the end of each dropping scenario: ${dropsSeen ? "yes" : "NO (invalid)"}. Connect timeouts at nodes that were not dropping: ${elsewhere}.`,
      "Every location was sending to the old node before each change (checked per location), so no time here is a vacuous 0.",
      "A wait is a request one of whose attempts hit the connect timeout (the location's own proxy.retry log says so): the requests in flight at a dropping node before the location's isolate ejected it (at its first connect timeout) or learned the change.",
      `Connect hedging (RFC 8305's Connection Attempt Delay across a Service's nodes, default ${DEFAULT_CONNECT_ATTEMPT_DELAY_MS} ms, raised per node from its measured connect times): a connect not opened after the delay races another node's and the request goes over the first to open, so a request at a dropping node is "delayed by a hedged connect" (its proxy.hedge log line; the delay shown is from its first connect to the answering one) instead of waiting the whole connect timeout; the slow connect still runs to its timeout and ejects the node, and a node with such a connect pending is skipped by new requests. A wait is left only where no hedge could run (no other usable node, the retry budget spent, hedging off).`,
    ],
    targets: [
      { target: "p95 time until every location routes away (health failure, Local rollout) < 5 s", result: `${fmt(p95s)} s`, verdict: verdictOf(p95s < 5), ...(p95s < 5 ? {} : { limit: o.fastCheckS === undefined ? "bounded by KV: other locations learn the change only when their KV read cache expires and their location copy is refreshed" : `detection (2 × 1 s health interval) + the fast path's check interval (${o.fastCheckS} s) + the isolate's 2 s look at its location's copy` }) },
      ...(o.fastCheckS !== undefined
        ? [
            {
              target: `daily requests to the fast path's store, ${o.locations} busy locations, inside the free plan (100,000/day)`,
              result: `${checksPerDay.toLocaleString("en-US")} checks + 1 per push + ${o.locations} per change`,
              verdict: verdictOf(checksPerDay < FREE_PLAN_REQUESTS),
              limit: `${o.locations} × 86,400 / EDGELB_FAST_CHECK (${o.fastCheckS} s); leaves ${Math.max(0, FREE_PLAN_REQUESTS - checksPerDay).toLocaleString("en-US")} for pushes and fetches (the agent pushes on change, plus any heartbeat pushes)`,
            },
          ]
        : []),
      { target: "zero failed requests through any location", result: String(failed), verdict: dropsSeen ? verdictOf(failed === 0) : "invalid" },
      {
        target: "requests that waited on a connect timeout < 1% of traffic",
        result: `${waited} of ${total} (${fmt(waitedShare * 100, 2)}%); ${hedged} more delayed by a hedged connect (≤ ${fmt(hedgeMaxMs, 0)} ms)`,
        verdict: dropsSeen ? verdictOf(waitedShare < 0.01) : "invalid",
        ...(waitedShare < 0.01 ? {} : { limit: `${waited} requests waited a whole connect timeout (${CONNECT_TIMEOUT_MS} ms) at a dropping node although connect hedging was on: their hedge could not run (no other usable node, the Service's retry budget spent) or its node failed too; the rest of the requests in flight there (${hedged}) waited only the hedge delay` }),
      },
    ],
    data: { options: { ...o, log: undefined, concurrency: CONCURRENCY, everyMs: EVERY_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS }, results },
  };
}
