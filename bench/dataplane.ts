// Section 1: the data plane on loopback. Three simulated nodes are the
// origins; every row is driven by the same load generator with the same
// connection count, runs interleaved (round 1: a b c d e, round 2: …) so
// machine drift hits all rows alike, and reports medians over the rounds.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../worker/snapshot/schema.ts";
import { requestWithHost, startEdgeWorker, type EdgeWorker } from "../test/edge/start-worker.ts";
import { SimNode } from "../test/cluster/sim-node.ts";
import { track } from "./lib/cleanup.ts";
import type { LoadGenerator, LoadResult } from "./lib/loadgen.ts";
import { findNginx, startNginx } from "./lib/nginx.ts";
import { fmt, verdictOf, type Section, type TargetRow, type Verdict } from "./lib/report.ts";
import { median } from "./lib/stats.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BENCH_HOST = "bench.example.com";
const PUSH_TOKEN = "bench-push-token";

export interface DataPlaneOptions {
  loadgen: LoadGenerator;
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  /** First three octets of the origins' loopback addresses. */
  addressBase: string;
  log: (line: string) => void;
}

interface Target {
  id: string;
  label: string;
  url?: string;
  host?: string;
  /** Why this row is not measured (skipped / not measured). */
  skip?: { verdict: Verdict; why: string };
  results: LoadResult[];
}

/** The snapshot edgelb serves in the bench: one Service on three nodes. */
export function benchSnapshot(addresses: string[], nodePort: number, generation = 1): SnapshotInput {
  return {
    schema: SNAPSHOT_SCHEMA,
    cluster: "default",
    generation,
    publishedAt: new Date().toISOString(),
    nodes: addresses.map((address, i) => ({ name: `node-${i + 1}`, address, healthy: true })),
    services: [
      {
        namespace: "default",
        name: "bench",
        hostnames: [BENCH_HOST],
        nodePort,
        policy: { algorithm: "round-robin" },
      },
    ],
  };
}

/** PUTs a snapshot to a worker's push endpoint; throws with the worker's answer on failure. */
export async function pushSnapshot(worker: EdgeWorker, snapshot: SnapshotInput, token = PUSH_TOKEN, cluster = "default"): Promise<void> {
  const res = await fetch(`${worker.url}/__edgelb/v1/clusters/${cluster}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(snapshot),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`push endpoint answered ${res.status}: ${text.slice(0, 300)}`);
}

/** Starts the real edge worker with a transport and serves the bench snapshot. */
export async function startEdgelb(transport: "fetch" | "socket", snapshot: SnapshotInput): Promise<EdgeWorker> {
  const worker = await startEdgeWorker({
    vars: { EDGELB_TRANSPORT: transport, EDGELB_PUSH_TOKEN: PUSH_TOKEN, EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false" },
  });
  track(`edgelb worker (${transport})`, () => worker.stop());
  await pushSnapshot(worker, snapshot);
  return worker;
}

/** A request through the row's URL must answer 200 from a simulated node. */
async function sanity(url: string, host: string | undefined, times: number): Promise<Set<string>> {
  const u = new URL(url);
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) {
    const res = await requestWithHost(u.hostname, Number(u.port), host ?? u.host, "/");
    const body = await res.text();
    const node = res.headers.get("x-edgelb-node");
    if (res.status !== 200 || !node) throw new Error(`sanity request answered ${res.status} without x-edgelb-node: ${body.slice(0, 200)}`);
    seen.add(node);
  }
  return seen;
}

export async function runDataPlane(o: DataPlaneOptions): Promise<Section> {
  const addresses = [11, 12, 13].map((h) => `${o.addressBase}.${h}`);
  const nodes: SimNode[] = [];
  for (const [i, address] of addresses.entries()) {
    const node = await SimNode.start({ name: `node-${i + 1}`, address, healthzPort: 0 });
    track(`simulated node ${address}`, () => node.stop());
    nodes.push(node);
  }
  // One NodePort, the same on every node, as kube-proxy does.
  const nodePort = await nodes[0]!.servePort(0);
  for (const n of nodes.slice(1)) await n.servePort(nodePort);
  const origin = `http://${addresses[0]}:${nodePort}`;
  const snapshot = benchSnapshot(addresses, nodePort);

  const targets: Target[] = [
    { id: "a", label: "(a) direct to one origin", url: origin, results: [] },
    { id: "b", label: "(b) nginx round-robin proxy", results: [] },
    { id: "c", label: "(c) trivial proxy worker (fetch)", results: [] },
    { id: "c2", label: "(c′) trivial proxy, socket transport", results: [] },
    { id: "d", label: "(d) edgelb, fetch() transport", host: BENCH_HOST, results: [] },
    { id: "e", label: "(e) edgelb, socket transport", host: BENCH_HOST, results: [] },
  ];
  const byId = (id: string) => targets.find((t) => t.id === id)!;

  const nginx = findNginx();
  if (!nginx) byId("b").skip = { verdict: "skipped", why: "skipped: nginx not installed" };
  else {
    try {
      const proxy = await startNginx(nginx, addresses.map((address) => ({ address, port: nodePort })));
      byId("b").url = proxy.url;
      byId("b").host = BENCH_HOST;
    } catch (err) {
      byId("b").skip = { verdict: "skipped", why: `skipped: nginx did not start (${(err as Error).message.slice(0, 200)})` };
    }
  }

  const trivial = await startEdgeWorker({ entry: path.join(HERE, "trivial-proxy/index.ts"), vars: { BENCH_ORIGIN: origin } });
  track("trivial proxy worker", () => trivial.stop());
  byId("c").url = trivial.url;
  try {
    const trivialSocket = await startEdgeWorker({ entry: path.join(HERE, "trivial-proxy/socket.js"), vars: { BENCH_ORIGIN: origin } });
    track("trivial socket proxy worker", () => trivialSocket.stop());
    byId("c2").url = trivialSocket.url;
  } catch (err) {
    byId("c2").skip = { verdict: "not measured", why: `not measured: ${(err as Error).message.slice(0, 200)}` };
  }

  for (const [id, transport] of [["d", "fetch"], ["e", "socket"]] as const) {
    try {
      const w = await startEdgelb(transport, snapshot);
      byId(id).url = w.url;
    } catch (err) {
      byId(id).skip = { verdict: "not measured", why: `not measured: the edge worker is not ready (${(err as Error).message.slice(0, 200)})` };
    }
  }

  for (const t of targets) {
    if (t.skip || !t.url) continue;
    try {
      const seen = await sanity(t.url, t.host, 6);
      if ((t.id === "b" || t.id === "d" || t.id === "e") && seen.size !== 3) {
        throw new Error(`expected round-robin over 3 nodes, saw ${[...seen].join(", ")}`);
      }
    } catch (err) {
      t.skip = { verdict: "not measured", why: `not measured: sanity check failed (${(err as Error).message.slice(0, 200)})` };
    }
  }

  const live = targets.filter((t) => !t.skip && t.url);
  const run = (t: Target, durationS: number) =>
    o.loadgen.run({ url: `${t.url}/`, ...(t.host ? { host: t.host } : {}), connections: o.connections, threads: o.threads, durationS });
  o.log(`data plane: warm-up ${o.warmupS}s per row (${live.map((t) => t.id).join(" ")})`);
  for (const t of live) await run(t, o.warmupS);
  for (let round = 1; round <= o.rounds; round++) {
    // Rotate the order each round so no row always runs right after another.
    const order = live.map((_, i) => live[(i + round - 1) % live.length]!);
    for (const t of order) {
      const r = await run(t, o.durationS);
      t.results.push(r);
      o.log(`  round ${round}/${o.rounds} ${t.id}: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms${r.errors ? `, ${r.errors} errors` : ""}`);
    }
  }

  const med = (t: Target) => ({
    rps: median(t.results.map((r) => r.rps)),
    p50Ms: median(t.results.map((r) => r.p50Ms)),
    p99Ms: median(t.results.map((r) => r.p99Ms)),
    errors: t.results.reduce((a, r) => a + r.errors, 0),
    requests: t.results.reduce((a, r) => a + r.requests, 0),
  });
  const c = byId("c").results.length ? med(byId("c")) : undefined;
  const c2 = byId("c2").results.length ? med(byId("c2")) : undefined;

  const rows: string[][] = [];
  const targetRows: TargetRow[] = [];
  const data: Record<string, unknown> = {};
  for (const t of targets) {
    if (t.skip || t.results.length === 0) {
      rows.push([t.label, "–", "–", "–", "–", "–", "–", t.skip?.verdict ?? "not measured", t.skip?.why ?? "no result"]);
      if (t.id === "d" || t.id === "e") {
        targetRows.push({ target: `${t.label}: cost < 10% vs (c)`, result: "–", verdict: t.skip?.verdict ?? "not measured", limit: t.skip?.why ?? "no result" });
      }
      data[t.id] = { label: t.label, skipped: t.skip?.why ?? "no result" };
      continue;
    }
    const m = med(t);
    let vsC = "–";
    let target = "";
    let verdict: Verdict = "";
    let note = m.errors ? `${m.errors} errors in ${m.requests} requests` : "";
    let costPct: number | undefined;
    let ratio: number | undefined;
    if (c && t.id !== "c") {
      ratio = m.rps / c.rps;
      vsC = `${fmt(ratio, 2)}×`;
    }
    if (c && (t.id === "d" || t.id === "e")) {
      // Cost of edgelb's logic: throughput lost against the trivial proxy.
      costPct = (1 - m.rps / c.rps) * 100;
      target = "cost < 10% vs (c)";
      verdict = m.errors ? "missed" : verdictOf(costPct < 10);
      const floor = t.id === "e" && c2 ? `; vs (c′) the same transport without edgelb: ${fmt((1 - m.rps / c2.rps) * 100, 1)}% cost` : "";
      // workerd runs a worker on one thread and is the bottleneck here, so the
      // difference of 1/throughput is the time edgelb adds per request.
      const addedUs = (1 / m.rps - 1 / c.rps) * 1e6;
      note = [`cost ${fmt(costPct, 1)}% of (c) throughput (≈ +${fmt(addedUs, 0)} µs of worker time per request); p50 +${fmt(m.p50Ms - c.p50Ms, 2)} ms vs (c)${floor}`, note].filter(Boolean).join("; ");
    }
    rows.push([t.label, fmt(m.rps, 0), fmt(m.p50Ms, 2), fmt(m.p99Ms, 2), String(m.errors), vsC, target, verdict, note]);
    if (c && (t.id === "d" || t.id === "e")) {
      const addedUs = (1 / m.rps - 1 / c.rps) * 1e6;
      targetRows.push({
        target: `${t.label}: cost < 10% vs (c) trivial proxy`,
        result: `${fmt(costPct, 1)}% (${fmt(m.rps, 0)} vs ${fmt(c.rps, 0)} req/s)`,
        verdict,
        ...(verdict === "missed"
          ? {
              limit:
                t.id === "d"
                  ? `≈ +${fmt(addedUs, 0)} µs of worker CPU per request on workerd's single thread, spent on what (c) skips: hono routing, route lookup and pick, rebuilt origin Request and headers, the response body re-piped through a TransformStream (in-flight counting), the fetch transport's timer + AbortController`
                  : `the same per-request work as (d) plus the socket transport's JS HTTP/1.1 parser and a new TCP connection per request; (c′) shows the transport alone already costs ${c2 ? fmt((1 - c2.rps / c.rps) * 100, 0) : "?"}% vs (c)`,
            }
          : {}),
      });
    }
    data[t.id] = { label: t.label, median: m, ratioVsTrivial: ratio, costPct, ratioVsTrivialSocket: t.id === "e" && c2 ? m.rps / c2.rps : undefined, runs: t.results, target: target || undefined, verdict: verdict || undefined };
  }

  return {
    title: "1. Data plane (loopback, plain workerd via the Miniflare API)",
    targets: targetRows,
    columns: ["row", "req/s", "p50 ms", "p99 ms", "errors", "vs (c)", "target", "verdict", "note"],
    rows,
    notes: [
      `origins: 3 simulated nodes (${addresses.join(", ")}), NodePort ${nodePort}, echo app answering GET / with a small JSON body (~300 B), all in the bench's Node process`,
      `load: ${o.loadgen.name}, ${o.connections} connections, ${o.threads} thread(s); ${o.warmupS}s warm-up per row, then ${o.rounds} interleaved rounds × ${o.durationS}s; medians over rounds (errors summed)`,
      "(b) nginx: 1 worker process, upstream keepalive 64, round-robin over the 3 nodes; (c): bench/trivial-proxy, fetch() to node-1; (d)/(e): the real worker (worker/index.ts) with EDGELB_TRANSPORT=fetch / socket, one Service, round-robin over the 3 nodes",
      "(c′): bench/trivial-proxy/socket.js, worker/transport/socket as is to node-1 — the floor of the socket path, informational (no target)",
      "(d)/(c) and (e)/(c) are throughput ratios; cost = 1 − ratio. The socket transport opens a TCP connection per request (connect() sockets cannot outlive a request), while fetch() reuses workerd's pooled connections",
    ],
    data,
  };
}
