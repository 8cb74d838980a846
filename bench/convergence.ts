// Convergence across locations (issue 19) with realistic KV propagation: the
// multi-location simulation of test/locations (one plain workerd per
// location, shared KV emulation, the agent pushing to location 0), each
// scenario's per-location time until it stopped trying the old node, failed
// requests, requests that waited on a connect timeout, and attempts at the old
// node. Nodes refuse or drop like kube-proxy: a Local Service's old node drops
// new connections (DROP) once its last local pod left; a dark node drops all.
import { startSimulation, type LocationReport } from "../test/locations/simulation.ts";
import { MAX_HOLD_MS } from "../worker/generations/api.ts";
import { DEFAULT_FAST_BUDGET } from "../worker/generations/budget.ts";
import { LOCATION_CHECK_MS } from "../worker/config/timing.ts";
import { DEFAULT_CONNECT_ATTEMPT_DELAY_MS, DEFAULT_CONNECT_TIMEOUT_MS } from "../worker/snapshot/schema.ts";
import { fmt, verdictOf, type Section } from "./lib/report.ts";

/** Durable Objects on the free plan (developers.cloudflare.com/durable-objects/platform/pricing). */
export const FREE_PLAN = { requestsPerDay: 100_000, gbSecondsPerDay: 13_000 };
/** An object is billed as 128 MB while it runs or is held in memory unable to hibernate. */
const OBJECT_GB = 0.128;

/**
 * The fast path's daily cost for `locations` busy locations (each holds one check at a time, or
 * polls when holdS is 0). Requests: one check per hold time per location when nothing changes, one
 * more per location per change (the held check answers and the next one starts; the changed
 * snapshot rides in the answer), and at most one per check interval per location however often
 * the cluster changes. Duration: the one object is busy all day while any location holds a check
 * (one object per deployment, for all clusters); polling keeps it busy only while answering.
 */
export function fastPathCost(o: { locations: number; checkS: number; holdS: number }): { quietChecks: number; maxChecks: number; perChange: number; gbSeconds: number; gbSecondsNote: string } {
  const maxChecks = Math.round((o.locations * 86_400) / o.checkS);
  const quietChecks = o.holdS > 0 ? Math.round((o.locations * 86_400) / Math.max(o.holdS, o.checkS)) : maxChecks;
  if (o.holdS > 0) return { quietChecks, maxChecks, perChange: o.locations, gbSeconds: Math.round(86_400 * OBJECT_GB), gbSecondsNote: "the object held all day (86,400 s × 128 MB)" };
  // Polling: busy only while answering; 100 ms per answer is a generous bound.
  return { quietChecks, maxChecks, perChange: o.locations, gbSeconds: Math.round(maxChecks * 0.1 * OBJECT_GB), gbSecondsNote: "busy only while answering (at most 100 ms per check)" };
}

/**
 * What the object's daily budget (EDGELB_FAST_BUDGET, default) does to a row whose ceiling is above
 * it: held checks back off (60 s to 1 h, so the day stays below 125 % of the budget); polling is counted but does not back off.
 */
export function budgetNote(maxChecks: number, held: boolean, budget = DEFAULT_FAST_BUDGET): string {
  if (maxChecks <= budget) return "";
  const n = (x: number) => x.toLocaleString("en-US");
  return held
    ? `; the ceiling is above the object's daily budget (EDGELB_FAST_BUDGET ${n(budget)}): past it the object backs every location off so that the day stays below ${n(Math.round(budget * 1.25))}`
    : `; the ceiling is above the object's daily budget (EDGELB_FAST_BUDGET ${n(budget)}), which polling does not obey: raise EDGELB_FAST_CHECK`;
}

/** The scenarios of the p95 target: every node failure (health check, dark) and the Local rollout; not the drain. */
export const ROUTES_AWAY_SCENARIOS = ["node fails its health check", "Local Service rolled out off node-3", "node goes dark (drops all)"];

export interface ConvergenceOptions {
  locations: number;
  propagationMs: number;
  cacheTtlS: number;
  addressBase: string;
  /** Extra worker vars. */
  vars?: Record<string, string>;
  /** The fast path's check interval (EDGELB_FAST_CHECK, s); absent: KV only. */
  fastCheckS?: number;
  /** EDGELB_FAST_HOLD (s); absent: the worker's default (held checks). 0: polling. */
  fastHoldS?: number;
  /** Adds a control location (same worker, fast path cut during each scenario). */
  control?: boolean;
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
  const hosts = Array.from({ length: o.locations + (o.control ? 1 : 0) }, (_, i) => `${o.addressBase}.${2 + i}`);
  const sim = await startSimulation({
    locations: o.locations,
    propagationMs: o.propagationMs,
    cacheTtlS: o.cacheTtlS,
    ...(o.fastCheckS !== undefined ? { fastCheckS: o.fastCheckS } : {}),
    ...(o.fastHoldS !== undefined ? { fastHoldS: o.fastHoldS } : {}),
    ...(o.control ? { control: true } : {}),
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

  const locationName = (l: LocationReport) => (l.control ? `${l.location} (control: fast path cut)` : l.location === 0 ? "0 (pushed to)" : String(l.location));
  const rows = results.flatMap((r) =>
    r.report.map((l) => [
      r.scenario,
      locationName(l),
      fmt(l.convergedMs / 1000),
      l.control ? (l.stillOnOldNode ? "not yet (still on the old node)" : "not yet") : l.learnedMs === undefined ? "–" : fmt(l.learnedMs / 1000),
      l.control ? `${l.source ?? "–"} (generation ${l.generation ?? "–"})` : (l.source ?? "–"),
      String(l.requests),
      String(l.failed),
      String(l.waitedOnConnectTimeout),
      l.delayedByHedge ? `${l.delayedByHedge} (≤ ${fmt(l.hedgeDelayMaxMs, 0)} ms)` : "0",
      String(l.attemptsAtOldNode),
    ]),
  );
  // The measured locations (the control never learns in time: its figures are not the product's).
  const measuredOf = (r: (typeof results)[number]) => r.report.filter((l) => !l.control);
  const routesAway = results.filter((r) => ROUTES_AWAY_SCENARIOS.includes(r.scenario)).flatMap((r) => measuredOf(r).map((l) => l.convergedMs));
  const total = results.reduce((a, r) => a + measuredOf(r).reduce((b, l) => b + l.requests, 0), 0);
  const failed = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.failed, 0), 0);
  const waited = results.reduce((a, r) => a + measuredOf(r).reduce((b, l) => b + l.waitedOnConnectTimeout, 0), 0);
  const hedged = results.reduce((a, r) => a + measuredOf(r).reduce((b, l) => b + l.delayedByHedge, 0), 0);
  const hedgeMaxMs = Math.max(0, ...results.flatMap((r) => measuredOf(r).map((l) => l.hedgeDelayMaxMs)));
  const elsewhere = results.reduce((a, r) => a + r.report.reduce((b, l) => b + l.connectTimeoutsElsewhere, 0), 0);
  const controls = results.map((r) => ({ scenario: r.scenario, control: r.report.find((l) => l.control) }));
  const fromFast = results.every((r) => measuredOf(r).every((l) => l.location === 0 || l.source === "fast" || l.source === "location"));
  const dropsSeen = results.every((r) => r.scenario === "node fails its health check" || r.scenario === "node drained and removed" || r.dropped);
  const waitedShare = total ? waited / total : 0;
  const p95s = p95(routesAway) / 1000;
  // The worker's default hold is the longest (worker/env: DEFAULT_FAST_HOLD_S).
  const holdS = o.fastHoldS ?? MAX_HOLD_MS / 1000;
  const cost = o.fastCheckS !== undefined ? fastPathCost({ locations: o.locations, checkS: o.fastCheckS, holdS }) : undefined;
  const n = (x: number) => x.toLocaleString("en-US");
  const fastText =
    o.fastCheckS === undefined
      ? "fast path off (KV only)"
      : holdS > 0
        ? `fast path on: each location keeps one check held at the generations Durable Object (real class, in its own workerd; locations reach it over loopback) for up to ${holdS} s, answered at once by a push, at most one check per ${o.fastCheckS} s per location`
        : `fast path on, polling: the generations Durable Object (real class, in its own workerd) asked at most every ${o.fastCheckS} s per location (EDGELB_FAST_HOLD 0)`;
  const limit95 =
    o.fastCheckS === undefined
      ? "bounded by KV: other locations learn the change only when their KV read cache expires and their location copy is refreshed"
      : holdS > 0
        ? "detection by the agent (2 × 1 s health interval, then its push) + a round trip to the object and back (a held check answers at the push)"
        : `detection (2 × 1 s health interval) + up to one check interval (${o.fastCheckS} s): all locations here started together and ask in phase, so one run is all lucky or all unlucky; in production they are out of phase and p95 ≈ detection + 0.95 × interval`;
  return {
    title: o.title,
    columns: ["scenario", "location", "stopped trying the old node after (s)", "learned the change after (s)", "snapshot from", "requests", "failed", "waited on a connect timeout", "delayed by a hedged connect (longest)", "attempts at the old node"],
    rows,
    notes: [
      `${o.locations} locations, each the real worker in its own plain workerd (one isolate per location: a location's other isolates would take the change from the location copy, up to ${LOCATION_CHECK_MS / 1000} s later, not simulated here); KV emulated with ${o.propagationMs / 1000} s propagation to other locations (the writing location reads its own write at once); EDGELB_CACHE_TTL ${o.cacheTtlS} s; ${fastText}${o.vars && Object.keys(o.vars).length ? `; ${Object.entries(o.vars).map(([k, v]) => `${k}=${v}`).join(", ")}` : ""}.`,
      `The agent (health every 1 s, fall 2, probe timeout 500 ms) pushes to location 0 only; traffic: ${CONCURRENCY} requests in flight per location, each loop one request every ${EVERY_MS} ms. Times are from the cluster change (detection included) to the last request a location tried the old node with (answered, refused or dropped; failed attempts read from each location's proxy.retry/proxy.failed logs).`,
      `The Local scenario is a real rolling update (the lab's workloads controller: apps/v1 Deployment, 3 replicas, one per node; cordon node-3, rollout restart): node-3's pod goes ready → terminating (still serving; its healthCheckNodePort says 503) → gone; its time is counted from the moment that pod began terminating, its traffic (and waits) over the whole rollout. Scenario windows (traffic start to every location avoiding the old node): ${results.map((r) => `${r.scenario} ${fmt(r.windowMs / 1000)} s`).join("; ")}.`,
      `Nodes behave like kube-proxy: once the Local Service's pods left node-3, its NodePort drops new connections (DROP, a blackhole: the connect waits for the connect timeout, ${CONNECT_TIMEOUT_MS} ms, the default); the dark node drops on every port; a removed node refuses (retried at once); a connection a NodePort accepted before its switch to DROP is answered under the old rules (the switch is atomic per connection, as kube-proxy's is). Blackhole in effect at the end of each dropping scenario: ${dropsSeen ? "yes" : "NO (invalid)"}. Connect timeouts at nodes that were not dropping: ${elsewhere}.`,
      "Every location was sending to the old node before each change (checked per location), so no time here is a vacuous 0. A scenario ends only when every location has also installed the generation that location 0 ended with ('learned the change after'; 'snapshot from': where that snapshot came from: push, fast = the generations object, location = the location copy, kv), so a node that is merely ejected (a dark node, for 10 s) is not taken for convergence, and waits after its ejection expires are counted.",
      ...(o.control
        ? [
            `Control: one more location, the same worker and settings, whose path to the generations object is cut during each scenario; at each change every location but 0 starts with a freshly filled KV read cache, so KV cannot deliver the change to any of them within ${o.propagationMs / 1000} s. The control was still on the old node when the others had converged in: ${controls.filter((c) => c.control?.stillOnOldNode).map((c) => c.scenario).join("; ") || "no scenario"} (a dropping node it ejects by itself). Measured locations whose snapshot came from the fast path or the location copy (not KV): ${fromFast ? "all" : "NOT all"}. The control is not in the targets.`,
          ]
        : []),
      ...(o.fastCheckS !== undefined && holdS > 0
        ? ["Held checks make the locations' phase irrelevant: a push answers every held check at the same moment, whenever each location last asked (a location between two checks, e.g. right after a change, asks at once with the version it knows and is answered at once)."]
        : []),
      "A wait is a request one of whose attempts hit the connect timeout (the location's own proxy.retry log says so): the requests in flight at a dropping node before the location's isolate ejected it (at its first connect timeout) or learned the change.",
      `Connect hedging (RFC 8305's Connection Attempt Delay across a Service's nodes, default ${DEFAULT_CONNECT_ATTEMPT_DELAY_MS} ms, raised per node from its measured connect times): a connect not opened after the delay races another node's and the request goes over the first to open, so a request at a dropping node is "delayed by a hedged connect" (its proxy.hedge log line; the delay shown is from its first connect to the answering one) instead of waiting the whole connect timeout; the slow connect still runs to its timeout and ejects the node, and a node with such a connect pending is skipped by new requests. A wait is left only where no hedge could run (no other usable node, the retry budget spent, hedging off).`,
    ],
    targets: [
      { target: "p95 time until every location routes away (health failure, dark node, Local rollout) < 5 s", result: `${fmt(p95s)} s`, verdict: verdictOf(p95s < 5), limit: limit95 },
      ...(cost
        ? [
            {
              target: `daily requests to the fast path's store, ${o.locations} busy locations, inside the free plan (${n(FREE_PLAN.requestsPerDay)}/day)`,
              result: holdS > 0 ? `${n(cost.quietChecks)} held checks + ${cost.perChange} per change + 1 per push; at most ${n(cost.maxChecks)} checks however often it changes` : `${n(cost.maxChecks)} checks + 1 per push`,
              verdict: verdictOf(cost.maxChecks < FREE_PLAN.requestsPerDay),
              limit: (holdS > 0
                ? `${o.locations} × 86,400 / EDGELB_FAST_HOLD (${holdS} s) while nothing changes; EDGELB_FAST_CHECK (${o.fastCheckS} s) caps it at ${o.locations} × 86,400 / ${o.fastCheckS}, leaving ${n(Math.max(0, FREE_PLAN.requestsPerDay - cost.maxChecks))} for pushes and heartbeats even then`
                : `${o.locations} × 86,400 / EDGELB_FAST_CHECK (${o.fastCheckS} s); leaves ${n(Math.max(0, FREE_PLAN.requestsPerDay - cost.maxChecks))} for pushes and heartbeats`) + budgetNote(cost.maxChecks, holdS > 0),
            },
            {
              target: `daily duration of the fast path's store inside the free plan (${n(FREE_PLAN.gbSecondsPerDay)} GB-s/day)`,
              result: `${n(cost.gbSeconds)} GB-s`,
              verdict: verdictOf(cost.gbSeconds < FREE_PLAN.gbSecondsPerDay),
              limit: `${cost.gbSecondsNote}; one object per deployment for all clusters (a second object held all day would double it, over the free plan)`,
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
    data: { options: { ...o, log: undefined, fastHoldS: o.fastCheckS !== undefined ? holdS : undefined, concurrency: CONCURRENCY, everyMs: EVERY_MS, connectTimeoutMs: CONNECT_TIMEOUT_MS }, cost, results },
  };
}
