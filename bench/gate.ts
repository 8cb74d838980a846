// Section 1g: what the node gate costs (issue 15). The same edgelb worker
// (socket transport, plain workerd) serves the same three simulated nodes
// twice in one run: (e) directly at nodeIP:NodePort, (g) through a node gate
// on each node (signed requests, the gate verifies and forwards over
// keep-alive). Rows are interleaved like section 1; the gates run in a child
// process of their own, so their CPU per request is measured apart.
//   npm run bench -- --only gate
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { benchSnapshot, BENCH_HOST, pushSnapshot, workerRow } from "./dataplane.ts";
import { track, trackChild } from "./lib/cleanup.ts";
import { startBenchNodes } from "./lib/nodes.ts";
import type { LoadGenerator } from "./lib/loadgen.ts";
import { fmt, verdictOf, type Section, type TargetRow } from "./lib/report.ts";
import { runRows, type RowOutcome } from "./lib/rows.ts";
import { processCpuSeconds } from "./workerd/cpu.ts";
import { startPlainWorker } from "./workerd/index.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const PUSH_TOKEN = "bench-push-token";

export interface GateBenchOptions {
  loadgen: LoadGenerator;
  rounds: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  /** First three octets of the nodes' loopback addresses. */
  addressBase: string;
  probes?: number;
  log: (line: string) => void;
}

async function startGates(nodes: { name: string; address: string }[], secret: string): Promise<{ port: number; pid: number }> {
  // EDGELB_BENCH_GATE_CPU_PROF=<dir>: the gates write a V8 CPU profile there when the bench stops them.
  const prof = process.env.EDGELB_BENCH_GATE_CPU_PROF;
  const child = spawn(process.execPath, [...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []), "--import", "tsx", path.join(HERE, "gate-child.ts"), ...nodes.map((n) => `${n.name}=${n.address}`)], {
    cwd: ROOT,
    env: { ...process.env, EDGELB_BENCH_GATE_SECRET: secret, EDGELB_BENCH_GATE_CLUSTER: "default" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  trackChild("node gates", child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.once("exit", (code) => reject(new Error(`the gates exited (${code}) before listening`)));
  });
  return { port: (JSON.parse(line) as { port: number }).port, pid: child.pid! };
}

export async function runGateBench(o: GateBenchOptions): Promise<Section> {
  const { addresses, names, nodes, nodePort } = await startBenchNodes(o.addressBase);
  const secret = randomBytes(32).toString("base64url");
  const gates = await startGates(nodes, secret);

  o.log("gate: starting edgelb twice in plain workerd (direct, and through the node gates)");
  const vars = { EDGELB_TRANSPORT: "socket", EDGELB_PUSH_TOKEN: PUSH_TOKEN, EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false", EDGELB_GATE_KEY: `bench:${secret}` };
  const direct = await startPlainWorker({ name: "edgelb (direct)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (direct)", () => direct.stop());
  const gated = await startPlainWorker({ name: "edgelb (gate)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (gate)", () => gated.stop());
  await pushSnapshot(direct, benchSnapshot(addresses, nodePort), PUSH_TOKEN);
  await pushSnapshot(gated, { ...benchSnapshot(addresses, nodePort), origins: { mode: "gate", port: gates.port } }, PUSH_TOKEN);

  // The gates' CPU, read around each round of row (g) alongside its workerd's (rows.ts reads cpuSeconds before and after a round).
  const gateSamples: number[] = [];
  const all = { nodes: names, everyNode: true };
  const small = { path: "/", connections: o.connections, host: BENCH_HOST, expect: all };
  const rowE = workerRow(direct, { id: "e", label: "(e) edgelb → NodePort (direct)", ...small });
  const rowG = workerRow(gated, { id: "g", label: "(g) edgelb → node gate → NodePort", ...small });
  const workerdCpu = rowG.cpuSeconds!;
  rowG.cpuSeconds = () => {
    gateSamples.push(processCpuSeconds(gates.pid));
    return workerdCpu();
  };
  const outcomes = await runRows([rowE, rowG], { loadgen: o.loadgen, rounds: o.rounds, durationS: o.durationS, warmupS: o.warmupS, threads: o.threads, probes: o.probes ?? 6, log: o.log });
  const e = outcomes.find((r) => r.spec.id === "e")!;
  const g = outcomes.find((r) => r.spec.id === "g")!;
  const gateUs = gateCpuPerRequest(gateSamples, g);
  return gateSection(e, g, gateUs, o, { addresses, nodePort, gatePort: gates.port });
}

/** The gates' CPU per request over (g)'s rounds: samples come in before/after pairs, one pair per round. Pure. */
export function gateCpuPerRequest(samples: number[], g: Pick<RowOutcome, "rounds">): number | undefined {
  const perRound: number[] = [];
  for (let i = 0; i + 1 < samples.length && i / 2 < g.rounds.length; i += 2) {
    const requests = g.rounds[i / 2]!.requests;
    if (requests > 0) perRound.push(((samples[i + 1]! - samples[i]!) * 1e6) / requests);
  }
  if (perRound.length === 0) return undefined;
  perRound.sort((a, b) => a - b);
  return perRound[Math.floor(perRound.length / 2)];
}

/** Targets of issue 15 from the two rows. Pure. */
export function gateTargets(e: RowOutcome, g: RowOutcome): TargetRow[] {
  const invalid = [e, g].filter((r) => !r.valid);
  if (invalid.length) {
    const limit = invalid.map((r) => `${r.spec.id} invalid: ${r.invalid}`).join("; ");
    return [
      { target: "(g) ≥ 0.85× the throughput of (e)", result: "–", verdict: "invalid", limit },
      { target: "(g) adds < 0.3 ms at p50 over (e)", result: "–", verdict: "invalid", limit },
    ];
  }
  const ratio = g.rps / e.rps;
  const added = g.p50Ms - e.p50Ms;
  const why = `the gate is a second HTTP hop in Node (parse, HMAC-SHA-256 verify, forward over keep-alive, relay); on loopback with ${e.spec.connections} connections the cores are shared by the load generator, workerd, the gates and the nodes`;
  return [
    { target: "(g) ≥ 0.85× the throughput of (e)", result: `${fmt(ratio, 2)}× (${fmt(g.rps, 0)} vs ${fmt(e.rps, 0)} req/s)`, verdict: verdictOf(ratio >= 0.85), ...(ratio >= 0.85 ? {} : { limit: why }) },
    { target: "(g) adds < 0.3 ms at p50 over (e)", result: `${fmt(added, 2)} ms (${fmt(g.p50Ms, 2)} vs ${fmt(e.p50Ms, 2)} ms)`, verdict: verdictOf(added < 0.3), ...(added < 0.3 ? {} : { limit: why }) },
  ];
}

function gateSection(e: RowOutcome, g: RowOutcome, gateUs: number | undefined, o: GateBenchOptions, env: { addresses: string[]; nodePort: number; gatePort: number }): Section {
  const row = (r: RowOutcome, gateCpu: number | undefined) => {
    const ok = r.rounds.length > 0 && r.valid;
    return [r.spec.label, ok ? fmt(r.rps, 0) : "–", ok ? fmt(r.p50Ms, 2) : "–", ok ? fmt(r.p99Ms, 2) : "–", ok ? fmt(r.cpuUsPerRequest, 0) : "–", ok && gateCpu !== undefined ? fmt(gateCpu, 0) : "–", String(r.errors), r.valid ? "valid" : "INVALID", r.invalid ?? ""];
  };
  const signUs = e.valid && g.valid && e.cpuUsPerRequest !== undefined && g.cpuUsPerRequest !== undefined ? g.cpuUsPerRequest - e.cpuUsPerRequest : undefined;
  return {
    title: "1g. Node gate (loopback, plain workerd + edgelb-node-gate)",
    targets: gateTargets(e, g),
    columns: ["row", "req/s", "p50 ms", "p99 ms", "workerd CPU µs/req", "gate CPU µs/req", "errors", "valid", "why invalid"],
    rows: [row(e, undefined), row(g, gateUs)],
    notes: [
      `the same worker bundle (worker/index.ts, EDGELB_TRANSPORT=socket, one Service round-robin over 3 simulated nodes ${env.addresses.join(", ")}, NodePort ${env.nodePort}) in two plain workerd processes: (e) snapshot in direct mode; (g) snapshot with origins {mode: "gate", port: ${env.gatePort}} and EDGELB_GATE_KEY, so every request is signed (HMAC-SHA-256, Web Crypto, key imported once per isolate) and sent to the node's gate`,
      `gates: edgelb-node-gate (sync-agent/gate) on each node address, all three in one Node ${process.version} child process (bench/gate-child.ts), --connect node, keep-alive towards the NodePort; gate CPU = utime + stime of that process over each round of (g) ÷ requests, median over rounds`,
      `load: ${o.loadgen.name}, ${o.threads} thread(s), ${o.connections} connections, ${o.warmupS}s warm-up, ${o.rounds} interleaved rounds × ${o.durationS}s; medians over rounds; answers verified as in section 1 (each row must reach all 3 nodes with 200s)`,
      loadNote([e, g]),
      ...(signUs !== undefined ? [`workerd CPU of (g) − (e): ${fmt(signUs, 0)} µs per request — signing (nonce, canonical string, one HMAC) and the gate's extra response headers; noise of a few µs between runs`] : []),
    ],
    data: Object.fromEntries(
      [e, g].map((r) => [r.spec.id, { label: r.spec.label, valid: r.valid, invalid: r.invalid, errors: r.errors, requests: r.requests, rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, cpuUsPerRequest: r.cpuUsPerRequest, rounds: r.rounds, ...(r === g ? { gateCpuUsPerRequest: gateUs } : {}) }]),
    ),
  };
}

/** The machine's 1-minute load average during the rounds: a target missed at load 15 on 2 cores is not evidence. Pure. */
export function loadNote(rows: readonly Pick<RowOutcome, "rounds">[], cores = os.cpus().length): string {
  const loads = rows.flatMap((r) => r.rounds.map((x) => x.loadAvg ?? NaN)).filter(Number.isFinite);
  if (!loads.length) return "machine load during the rounds: not recorded";
  const max = Math.max(...loads);
  return `machine load (1-minute load average on ${cores} cores) during the rounds: ${fmt(Math.min(...loads), 1)}–${fmt(max, 1)}${max > cores ? `; above ${cores} other work shared the cores, which lowers req/s and raises latency of both rows: the ratio and the added p50 are not evidence for or against the targets` : ""}`;
}

