// Section 1g: what the node gate costs (issue 15). The same edgelb worker
// (socket transport, plain workerd) serves the same three simulated nodes
// twice in one run: (e) directly at nodeIP:NodePort, (g) through a node gate
// on each node (signed requests, the gate verifies and forwards over
// keep-alive). Rows are interleaved like section 1; the gates run in a child
// process of their own, so their CPU per request is measured apart.
// Throughput at 32 connections (e, g); the hop's own latency at 1 connection
// (e1, g1), where p50 is not queueing behind other requests. Row (s) signs
// every request as (g) does but its snapshot names the NodePort as the gate
// port, so it goes straight to the node (which ignores the header): (s) − (e)
// is signing plus the difference between two workerd processes, (g) − (s)
// what the hop itself costs workerd.
//   npm run bench -- --only gate
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { benchSnapshot, BENCH_HOST, pushSnapshot, workerRow } from "./dataplane.ts";
import { track, trackChild } from "./lib/cleanup.ts";
import { startBenchNodes } from "./lib/nodes.ts";
import type { LoadGenerator } from "./lib/loadgen.ts";
import { fmt, type Section, type TargetRow } from "./lib/report.ts";
import { perRound, runRows, type RowOutcome } from "./lib/rows.ts";
import { describeJudgement, judge, medianInterval, pairedDifferences, pairedRatios, verdictRule } from "./lib/verdict/index.ts";
import { processCpuSeconds } from "./workerd/cpu.ts";
import { describeBreakdown, profileBreakdown, type CpuProfile } from "./lib/cpu-profile.ts";
import { startPlainWorker } from "./workerd/index.ts";
import { imageNodeHere, type ImageNode } from "./lib/image-node/index.ts";
import type { EdgePath } from "../sync-agent/gate/edge-socket/index.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const PUSH_TOKEN = "bench-push-token";

export interface GateBenchOptions {
  loadgen: LoadGenerator;
  /** Rounds of every row. */
  rounds: number;
  /**
   * Rounds of every 1g row (default `rounds`): all of them, since the texts compare target rows with (s), (n) and
   * (n1) medians, which must come from the same rounds.
   */
  targetRounds?: number;
  durationS: number;
  warmupS: number;
  connections: number;
  threads: number;
  /** First three octets of the nodes' loopback addresses. */
  addressBase: string;
  probes?: number;
  log: (line: string) => void;
}

/**
 * What every 1g row asks for: a fixed answer (the node's name, chunked like section 1's echo of GET /). Not the
 * echo: it carries the request's fields back, so row (s), whose node gets the signature the gate would have
 * stripped, had bigger answers (446 vs 301 bytes) and more work on its node than (e) and (g).
 */
export const GATE_PATH = "/status/200";

/**
 * Section 1g is not pinned (section 1 is): pinned, every workerd would have a CPU to itself and the gates would
 * share the other with the load generator and the origins, where their CPU costs no throughput until that CPU
 * runs out. The target (the gate costs at most 15% of throughput) was set with the gate competing for the cores.
 */
const UNPINNED =
  "processes not pinned in this section (section 1 pins every workerd apart): pinned, the gates would run on a CPU workerd does not use and their CPU would stop costing throughput, while the target was set with the gate competing for the same cores; the paired rounds and the A/A control (eA, eA1) account for the noise instead";

/**
 * Rows run next to each other in every round (bench/lib/rows.ts), in alternating order: (e) between its A/A
 * copy and (g), (s) beside (g); the same at 1 connection, with the floor (n1) beside (g1).
 */
export const GATE_BLOCKS = [
  ["eA", "e", "g", "s"],
  ["eA1", "e1", "g1", "n1"],
];

interface Gates {
  port: number;
  pid: number;
  /** How the gates handle connections from the edge (their /healthz's `edge`); undefined for the floor. */
  edge?: EdgePath | undefined;
  /** Requests the gates forwarded so far. */
  forwarded(): Promise<number>;
  /** Stops the gates (SIGTERM: a --cpu-prof profile is written). */
  stop(): Promise<void>;
}

/** The gate DaemonSet's NODE_OPTIONS (deploy/gate/daemonset.yaml: heap and young-generation caps), so the gates run as on a node. Pure. */
export function daemonSetNodeOptions(yaml: string): string | undefined {
  return /- name: NODE_OPTIONS\n\s+value: "?([^"\n]+?)"?\s*$/m.exec(yaml)?.[1];
}

function gateNodeOptions(): Record<string, string> {
  const v = daemonSetNodeOptions(readFileSync(path.join(ROOT, "deploy/gate/daemonset.yaml"), "utf8"));
  return v ? { NODE_OPTIONS: v } : {};
}

async function startGates(node: ImageNode, nodes: { name: string; address: string }[], secret: string): Promise<Gates> {
  // EDGELB_BENCH_GATE_CPU_PROF=<dir>: the gates write a V8 CPU profile there when the bench stops them.
  const prof = process.env.EDGELB_BENCH_GATE_CPU_PROF;
  return startChild(node, "node gates", [...(prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : []), "--import", "tsx", path.join(HERE, "gate-child.ts"), ...nodes.map((n) => `${n.name}=${n.address}`)], {
    EDGELB_BENCH_GATE_SECRET: secret,
    EDGELB_BENCH_GATE_CLUSTER: "default",
    ...gateNodeOptions(),
  });
}

/** The floor: a bare Node net proxy on the same addresses (bench/gate-floor.ts), run like the gates. */
function startFloor(node: ImageNode, addresses: string[]): Promise<Gates> {
  return startChild(node, "bare node proxy (floor)", ["--import", "tsx", path.join(HERE, "gate-floor.ts"), ...addresses], gateNodeOptions());
}

async function startChild(node: ImageNode, label: string, args: string[], env: Record<string, string>): Promise<Gates> {
  const child = spawn(node.path, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "inherit"] });
  const stop = trackChild(label, child);
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (let nl = out.indexOf("\n"); nl !== -1; nl = out.indexOf("\n")) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const next = waiting.shift();
      if (next) next(line);
      else lines.push(line);
    }
  });
  const nextLine = () => new Promise<string>((resolve, reject) => {
    const queued = lines.shift();
    if (queued !== undefined) return resolve(queued);
    waiting.push(resolve);
    child.once("exit", (code) => reject(new Error(`the gates exited (${code})`)));
  });
  const first = JSON.parse(await nextLine()) as { port: number; edge?: EdgePath };
  return {
    port: first.port,
    edge: first.edge,
    pid: child.pid!,
    async forwarded() {
      child.stdin!.write("forwarded\n");
      return (JSON.parse(await nextLine()) as { forwarded: number }).forwarded;
    },
    stop,
  };
}

/** The gates' main-thread profile written in `dir` since `since` (the busiest one: tsx's loader thread writes one too). */
function gateProfile(dir: string, since: number): string | undefined {
  const fresh = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile") && statSync(path.join(dir, f)).mtimeMs >= since)
    .map((f) => profileBreakdown(JSON.parse(readFileSync(path.join(dir, f), "utf8")) as CpuProfile))
    .sort((a, b) => b.busyMs - a.busyMs);
  return fresh[0] && fresh[0].busyMs > 0 ? describeBreakdown(fresh[0].shares) : undefined;
}

export async function runGateBench(o: GateBenchOptions): Promise<Section> {
  const { addresses, names, nodes, nodePort } = await startBenchNodes(o.addressBase);
  const secret = randomBytes(32).toString("base64url");
  // The gates and the floor run on the Node the image ships (bench/lib/image-node), not necessarily the bench's.
  const node = imageNodeHere(ROOT);
  o.log(`gate: the gates and the floor run on Node ${node.version}: ${node.source}`);
  const gates = await startGates(node, nodes, secret);
  const floor = await startFloor(node, addresses);

  o.log("gate: starting edgelb five times in plain workerd (direct, its A/A copy, signing without a gate, through the node gates, through the floor proxy)");
  const vars = { EDGELB_TRANSPORT: "socket", EDGELB_PUSH_TOKEN: PUSH_TOKEN, EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false", EDGELB_GATE_KEY: `bench:${secret}` };
  const direct = await startPlainWorker({ name: "edgelb (direct)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (direct)", () => direct.stop());
  // The A/A control: the same bundle and snapshot as (e), started the same way, in a workerd of its own.
  const directCopy = await startPlainWorker({ name: "edgelb (direct, A/A copy)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (direct, A/A copy)", () => directCopy.stop());
  const gated = await startPlainWorker({ name: "edgelb (gate)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (gate)", () => gated.stop());
  const signing = await startPlainWorker({ name: "edgelb (signing, no gate)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (signing, no gate)", () => signing.stop());
  // The same signing worker in front of the floor proxy (which ignores the signature): the same workerd work as (g).
  const floored = await startPlainWorker({ name: "edgelb (floor)", entry: path.join(ROOT, "worker/index.ts"), kvBinding: "EDGELB_KV", vars });
  track("edgelb worker (floor)", () => floored.stop());
  await pushSnapshot(direct, benchSnapshot(addresses, nodePort), PUSH_TOKEN);
  await pushSnapshot(directCopy, benchSnapshot(addresses, nodePort), PUSH_TOKEN);
  await pushSnapshot(gated, { ...benchSnapshot(addresses, nodePort), origins: { mode: "gate", port: gates.port } }, PUSH_TOKEN);
  // Gate mode with the NodePort as the gate port: signed exactly as (g), sent straight to the node.
  await pushSnapshot(signing, { ...benchSnapshot(addresses, nodePort), origins: { mode: "gate", port: nodePort } }, PUSH_TOKEN);
  await pushSnapshot(floored, { ...benchSnapshot(addresses, nodePort), origins: { mode: "gate", port: floor.port } }, PUSH_TOKEN);

  // The gates' CPU, read around each round of a gate row alongside its workerd's (rows.ts reads cpuSeconds before and after a round).
  const gateSamples = new Map<string, number[]>();
  const all = { nodes: names, everyNode: true };
  const small = { path: GATE_PATH, host: BENCH_HOST, expect: all };
  const gateRow = (id: string, label: string, connections: number, worker = gated, proxy = gates) => {
    const row = workerRow(worker, { id, label, connections, ...small });
    const workerdCpu = row.cpuSeconds!;
    const samples: number[] = [];
    gateSamples.set(id, samples);
    row.cpuSeconds = () => {
      samples.push(processCpuSeconds(proxy.pid));
      return workerdCpu();
    };
    return row;
  };
  const rows = [
    workerRow(direct, { id: "e", label: `(e) edgelb → NodePort (direct), ${o.connections} connections`, connections: o.connections, ...small }),
    workerRow(directCopy, { id: "eA", label: `(eA) A/A control: (e) again, its own workerd, ${o.connections} connections`, connections: o.connections, ...small }),
    workerRow(signing, { id: "s", label: `(s) edgelb signing as (g) does, straight to the NodePort (no gate), ${o.connections} connections`, connections: o.connections, ...small }),
    gateRow("g", `(g) edgelb → node gate → NodePort, ${o.connections} connections`, o.connections),
    gateRow("n", `(n) edgelb → bare Node proxy → NodePort (the floor: no checks), ${o.connections} connections`, o.connections, floored, floor),
    workerRow(direct, { id: "e1", label: "(e1) edgelb → NodePort (direct), 1 connection", connections: 1, ...small }),
    workerRow(directCopy, { id: "eA1", label: "(eA1) A/A control: (e1) again, its own workerd, 1 connection", connections: 1, ...small }),
    gateRow("g1", "(g1) edgelb → node gate → NodePort, 1 connection", 1),
    gateRow("n1", "(n1) edgelb → bare Node proxy → NodePort (the floor), 1 connection", 1, floored, floor),
    // What the load generator and a node take by themselves at 1 connection: the part of every 1-connection p50 that is not edgelb's.
    { id: "o1", label: "(o1) the load generator straight to one node's NodePort (no worker), 1 connection", url: `http://${addresses[0]}:${nodePort}`, path: GATE_PATH, expect: { nodes: [names[0]!] }, connections: 1 },
  ];
  const before = await gates.forwarded();
  const floorBefore = await floor.forwarded();
  const outcomes = await runRows(rows, { loadgen: o.loadgen, rounds: o.targetRounds ?? o.rounds, durationS: o.durationS, warmupS: o.warmupS, threads: o.threads, probes: o.probes ?? 6, blocks: GATE_BLOCKS, log: o.log });
  const forwarded = (await gates.forwarded()) - before;
  const floorForwarded = (await floor.forwarded()) - floorBefore;
  const profDir = process.env.EDGELB_BENCH_GATE_CPU_PROF;
  let profile: string | undefined;
  if (profDir) {
    const since = Date.now() - 1;
    await gates.stop();
    profile = gateProfile(profDir, since);
  }
  const [e, s, g, f, e1, g1, f1, eA, eA1, o1] = ["e", "s", "g", "n", "e1", "g1", "n1", "eA", "eA1", "o1"].map((id) => outcomes.find((r) => r.spec.id === id)!) as [RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome, RowOutcome];
  throughTheGates(forwarded, [g, g1]);
  throughTheGates(floorForwarded, [f, f1], "the floor proxy");
  const us = (id: string, r: RowOutcome) => (r.valid ? gateCpuPerRequest(gateSamples.get(id)!, r) : undefined);
  const rounds = (id: string, r: RowOutcome) => (r.valid ? gateCpuPerRound(gateSamples.get(id)!, r) : undefined);
  const gateUs = { g: us("g", g), g1: us("g1", g1), f: us("n", f), f1: us("n1", f1), perRound: { g: rounds("g", g), f: rounds("n", f) } };
  return gateSection({ e, s, g, e1, g1, f, f1, eA, eA1, o1 }, gateUs, forwarded, o, { addresses, nodePort, gatePort: gates.port }, profile, gates.edge, node);
}

/**
 * A gate row is valid only if its requests went through the gates: the node answers the same whether
 * the gate or the worker itself sent the request, so a worker that ignored the snapshot's origins (or
 * fell back to direct) would look valid and fast. The gates' forwarded count over the run must cover
 * every request the rows' rounds counted (warm-ups and probes add more). Marks the rows invalid
 * otherwise. Pure apart from the rows it marks.
 */
export function throughTheGates(forwarded: number, gateRows: RowOutcome[], who = "the gates"): void {
  const counted = gateRows.reduce((n, r) => n + r.rounds.reduce((m, x) => m + x.requests, 0), 0);
  if (forwarded >= counted) return;
  for (const r of gateRows) {
    if (!r.valid) continue;
    r.valid = false;
    r.invalid = `${who} forwarded ${forwarded} requests, fewer than the ${counted} the rows' rounds counted: the requests did not go through ${who}`;
  }
}

/**
 * The gates' CPU per request in each of (g)'s rounds, in round order: samples come in before/after pairs,
 * one per load (warm-up, then each round). Rounds without requests are NaN. Pure.
 */
export function gateCpuPerRound(samples: number[], g: Pick<RowOutcome, "rounds">): number[] {
  const perRound: number[] = [];
  // The warm-up load is sampled too (before round 1): the last pairs are the rounds'. Counting from the first
  // paired the warm-up's CPU with round 1's requests, round 1's with round 2's, and so on.
  const first = Math.max(0, samples.length - 2 * g.rounds.length);
  for (let i = first; i + 1 < samples.length; i += 2) {
    const requests = g.rounds[(i - first) / 2]!.requests;
    perRound.push(requests > 0 ? ((samples[i + 1]! - samples[i]!) * 1e6) / requests : NaN);
  }
  return perRound;
}

/** The gates' CPU per request over (g)'s rounds: the median of gateCpuPerRound. Pure. */
export function gateCpuPerRequest(samples: number[], g: Pick<RowOutcome, "rounds">): number | undefined {
  const perRound = gateCpuPerRound(samples, g).filter(Number.isFinite);
  if (perRound.length === 0) return undefined;
  perRound.sort((a, b) => a - b);
  return perRound[Math.floor(perRound.length / 2)];
}

/** Median of finite values, or undefined. Pure. */
function median(xs: readonly number[]): number | undefined {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : undefined;
}

export interface GateRows {
  e: RowOutcome;
  /** Signing as (g) does, straight to the NodePort: splits workerd's extra CPU of (g) into signing and the hop. */
  s?: RowOutcome;
  g: RowOutcome;
  e1: RowOutcome;
  g1: RowOutcome;
  /** The floor: the same hop through a bare Node net proxy (bench/gate-floor.ts), 32 and 1 connection(s). */
  f?: RowOutcome;
  f1?: RowOutcome;
  /** The A/A control: (e) and (e1) again, the same bundle and snapshot in a workerd of its own: the run's own noise. */
  eA?: RowOutcome;
  eA1?: RowOutcome;
  /** The load generator straight to a node at 1 connection: wrk's and the origin's own share of a 1-connection p50. */
  o1?: RowOutcome;
}

/** CPU per request of the gates (rows g, g1) and of the floor proxy (rows n, n1, kept as f, f1), µs. */
export interface ProxyCpu {
  g?: number | undefined;
  g1?: number | undefined;
  f?: number | undefined;
  f1?: number | undefined;
  /**
   * The same per round (gateCpuPerRound), when known: the floor's rows may run fewer rounds than the
   * gate's, so the gate-minus-floor split is paired over the rounds both ran, never two medians of
   * different rounds (rv-bench 3).
   */
  perRound?: { g?: number[] | undefined; f?: number[] | undefined };
}

/**
 * What the floor (a bare Node proxy on this hop, rows n/n1) was made of when counted in instructions
 * under callgrind (valgrind --tool=callgrind, toggled on after 12,000 warm-up requests, 2,000 requests at
 * 1 connection: independent of the machine's load; user space only) for bench/gate-floor.ts and a scratch
 * minimal relay in plain JavaScript, which agreed within 7% (gt9, session 9). Shares of the floor's
 * instructions per request. One session's count, not this run's: the text names the Node version, the
 * code and bench/gate-floor.ts's git blob it was counted on, and says so when either differs.
 */
export const FLOOR_ANATOMY = {
  node: "v20.20.2",
  code: "8c134ba",
  /** `git hash-object bench/gate-floor.ts` when counted. */
  floorBlob: "cb27cbb1e9efd766ae5ea2558ff97ecc2c11a253",
  /** User-space instructions per request (thousands): the minimal relay, bench/gate-floor.ts. */
  kInstructions: [134, 143],
  /** Accepting the connection: onconnection → TCPWrap, new net.Socket (its Readable and Writable state), listeners. */
  accept: 0.58,
  /** Of all the instructions: V8's runtime inline-cache miss handlers (LoadIC_Miss, StoreIC_Miss, KeyedStoreIC_Slow). */
  icMisses: 0.45,
  /** Of the ~30 runtime IC misses per connection in `node --log-ic`, those on the Socket constructor's `{ ...options }` copy. */
  icMissesOnOptions: 28,
  /** The two reads (edge head, NodePort answer) with their 'data'/onread callbacks and the writes they make. */
  reads: 0.27,
  /** uv_close and the 'close' callback. */
  close: 0.05,
  /** Garbage collection (the scavenges and their helper threads). */
  gc: 0.06,
  /** The kernel's share of the gate's CPU samples: perf record -e cpu-clock, 1 connection, code 8c134ba, load ~10, 30,885 samples. */
  kernelShareOfGateSamples: 0.31,
  /**
   * The same count (gt10, session 10, Node v20.20.2; JIT compilation and GC apart, at 1 and 32 connections)
   * without net.Socket on the edge side: a scratch relay doing bench/gate-floor.ts's work on the accepted
   * TCP handle (tcp_wrap) against bench/gate-floor.ts in the same session, and the gate on --edge wrap
   * (code 99ad7e5) against the gate on net.Socket (code 392f73f).
   */
  wrap: { code: "99ad7e5", netCode: "392f73f", relay: [64, 53], floor: [151, 135], gate: [168, 165], gateOnNet: [269, 263] },
};

/** `git hash-object` of a file's bytes (a blob's SHA-1), without git. Pure. */
export function gitBlobHash(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

/**
 * The floor's make-up for the limit texts, as shares of its user-space instructions (not scaled to this
 * run's µs: the kernel's part of its CPU is not in them). `floorBlob`: this run's bench/gate-floor.ts. Pure.
 */
export function floorAnatomy(nodeVersion = process.version, floorBlob: string = FLOOR_ANATOMY.floorBlob): string {
  const a = FLOOR_ANATOMY;
  const stale = [
    ...(nodeVersion === a.node ? [] : [`this run used Node ${nodeVersion}`]),
    ...(floorBlob === a.floorBlob ? [] : ["bench/gate-floor.ts has changed since"]),
  ];
  const counted = `counted on Node ${a.node}, code ${a.code}${stale.length ? `; ${stale.join(" and ")}, so the shares may not hold` : ""}`;
  return (
    `what that floor was made of, in instructions (callgrind at 1 connection, user space, ${counted}: ${a.kInstructions.join("k and ")}k per request for a scratch minimal relay and for bench/gate-floor.ts): ` +
    `accepting the connection ${fmt(a.accept * 100, 0)}% (Node's onconnection builds a net.Socket: a TCPWrap, an async id, a Readable and a Writable state); ` +
    `V8's runtime inline-cache miss handlers ${fmt(a.icMisses * 100, 0)}% of all the floor's instructions, and node --log-ic shows ${a.icMissesOnOptions} of the ~30 misses per connection on one object, the Socket constructor's copy of its options ({ ...options }), read and written by the Socket, Duplex, Readable and Writable constructors, with a hidden-class address not seen before at every connection; ` +
    `the two reads and their callbacks ${fmt(a.reads * 100, 0)}%; closing the connection ${fmt(a.close * 100, 0)}% and garbage collection ${fmt(a.gc * 100, 0)}%. ` +
    `None of it can be avoided with Node's documented API: an accepted socket is always built by that constructor (no onread for accepted sockets; the worker opens a new connection per request, as a connect() socket cannot outlive its request). ` +
    `The gate avoids it through Node's internal bindings instead (--edge wrap, docs/gate.md#costs-and-limits): counted the same way (code ${a.wrap.code}, thousands of instructions per request at 1 and 32 connections, JIT compilation and GC apart), the floor's work done on the accepted TCP handle takes ${a.wrap.relay.join(" and ")} against bench/gate-floor.ts's ${a.wrap.floor.join(" and ")}, and the gate ${a.wrap.gate.join(" and ")} against ${a.wrap.gateOnNet.join(" and ")} on net.Socket (code ${a.wrap.netCode}). ` +
    `Besides these instructions, the kernel: accept, one read and one write each way, close and the epoll calls, where each loopback write also runs the receiving side's TCP stack (${fmt(a.kernelShareOfGateSamples * 100, 0)}% of the gate's CPU samples in a perf profile at 1 connection, code ${a.code}, load ~10)`
  );
}

/** This checkout's bench/gate-floor.ts as a git blob hash, for floorAnatomy's staleness check. */
function floorBlobHash(): string | undefined {
  try {
    return gitBlobHash(readFileSync(path.join(HERE, "gate-floor.ts")));
  } catch {
    return undefined;
  }
}

const THROUGHPUT = "(g) ≥ 0.85× the throughput of (e)";
const HOP = "(g1) adds < 0.3 ms at p50 over (e1): the hop itself, 1 connection";
/**
 * Where the hop's time goes at 1 connection, traced (perf record -a -e sched:sched_switch,sched:sched_wakeup and
 * the syscall tracepoints, 0.3 s of wrk -c1 through (g), code a5649d2, session 12, Node v20.20.2). The hop ran on one
 * core (perf, or a callgrind run, held the other): the figures are wall time between syscalls with the worker, the
 * gate and the node taking turns on that core, one session's trace, not this run's; the text names its code.
 */
export const HOP_TIMELINE = {
  code: "a5649d2",
  /** The gate's sleeps per accepted connection: it usually finds the request's bytes already there at accept. */
  runsPerRequest: 1.66,
  /** The gate's read of the request to its write to the NodePort (parse, signature check, replay cache, head rewrite), µs: median, p10, p90. */
  forwardUs: [90, 59, 148],
  /** The gate's read of the NodePort's answer to its write to the worker, µs, median. */
  relayUs: 19,
  /** What gate mode adds to workerd per request, counted under callgrind (thousands of instructions): Web Crypto's sign() 25.6 of them. */
  workerdKInstructions: 26.1,
  /** Linux's TCP_DEFER_ACCEPT set on the running gate's sockets (pidfd_getfd + setsockopt): no difference that this machine's noise let show. */
  deferAccept: "tried, no measurable difference",
};

/** The traced anatomy of the hop (HOP_TIMELINE) as the (g1) text cites it. Pure. */
export function hopTimeline(): string {
  const t = HOP_TIMELINE;
  return (
    `traced at 1 connection on one core (perf's scheduler and syscall tracepoints, code ${t.code}; wall time between syscalls): the gate runs ${t.runsPerRequest} times per request (it mostly finds the request's bytes there when it accepts the connection), ` +
    `takes ${t.forwardUs[0]} µs from reading a request to forwarding it (p10 ${t.forwardUs[1]}, p90 ${t.forwardUs[2]}: parse, signature check, replay cache, head rewrite) and ${t.relayUs} µs to relay the answer; ` +
    `the rest of what it adds is the wake-ups and the loopback writes of one more process; gate mode adds ${t.workerdKInstructions} k instructions per request to workerd (Web Crypto's sign(), awaited before connect())`
  );
}

/**
 * Targets of issue 15: throughput from the 32-connection rows, the hop's latency from the 1-connection
 * rows (at 32 connections p50 is mostly queueing). What limits a missed one is computed from the
 * figures: the gates' own CPU per request against what the gate row lost or added. Pure.
 */
export function gateTargets(r: GateRows, gateUs: ProxyCpu = {}, profile?: string, edge?: EdgePath, nodeVersion: string = process.version): TargetRow[] {
  // The gates' CPU profile of this run (EDGELB_BENCH_GATE_CPU_PROF), when taken: where their CPU went.
  const prof = profile ? ` (the gates' CPU profile of this run: ${profile})` : "";
  const invalidOf = (...rows: RowOutcome[]) => rows.filter((x) => !x.valid).map((x) => `${x.spec.id} invalid: ${x.invalid}`).join("; ");
  const out: TargetRow[] = [];
  const bad = invalidOf(r.e, r.g);
  if (bad) out.push({ target: THROUGHPUT, result: "–", verdict: "invalid", limit: bad });
  else {
    const ratio = r.g.rps / r.e.rps;
    const j = judge({ threshold: 0.85, direction: "at least", scale: "ratio" }, pairedRatios(perRound.rps(r.g), perRound.rps(r.e)), r.eA?.valid ? pairedRatios(perRound.rps(r.e), perRound.rps(r.eA)) : undefined, ratio);
    const cpu = gateUs.g;
    // At saturation on 2 shared cores every process competes: the gate's CPU per request is time the cores could not spend on the worker.
    // What the gated path costs more per request than the direct one, split between the gate and workerd's own extra (signing).
    const workerdExtra = r.g.cpuUsPerRequest !== undefined && r.e.cpuUsPerRequest !== undefined ? r.g.cpuUsPerRequest - r.e.cpuUsPerRequest : undefined;
    const split =
      cpu !== undefined && workerdExtra !== undefined && cpu + workerdExtra > 0
        ? `; the gated path costs ${fmt(cpu + workerdExtra, 0)} µs more CPU per request than the direct one, ${fmt((cpu / (cpu + workerdExtra)) * 100, 0)}% of it in the gate and ${fmt((workerdExtra / (cpu + workerdExtra)) * 100, 0)}% in workerd itself (${workerdShare(r, workerdExtra)})`
        : "";
    const why =
      `the gate is a second HTTP hop in Node on the same 2 cores: ${cpu === undefined ? "its CPU per request was not measured" : `${fmt(cpu, 0)} µs of gate CPU per request (row g)${prof}`} on top of workerd's ${fmt(r.g.cpuUsPerRequest ?? NaN, 0)} µs ` +
      `(direct: ${fmt(r.e.cpuUsPerRequest ?? NaN, 0)} µs)${split}${floorSplit(r.f, r.e, cpu, gateUs.f, "n", { gate: gateUs.perRound?.g, floor: gateUs.perRound?.f }, edge)}; with ${r.e.spec.connections} connections the load generator, workerd, the gates and the nodes share the cores, so every µs of the gate is throughput lost`;
    const noise = j.verdict === "within noise" ? `within noise: ${j.why}. ` : "";
    out.push({
      target: THROUGHPUT,
      result: `${describeJudgement(j, (x) => `${fmt(x, 2)}×`)}; of the rows' medians: ${fmt(ratio, 2)}× (${fmt(r.g.rps, 0)} vs ${fmt(r.e.rps, 0)} req/s)`,
      verdict: j.verdict,
      ...(j.verdict === "met" ? {} : { limit: noise + why }),
    });
  }
  const bad1 = invalidOf(r.e1, r.g1);
  if (bad1) out.push({ target: HOP, result: "–", verdict: "invalid", limit: bad1 });
  else {
    const added = r.g1.p50Ms - r.e1.p50Ms;
    const j = judge({ threshold: 0.3, direction: "below", scale: "difference" }, pairedDifferences(perRound.p50Ms(r.g1), perRound.p50Ms(r.e1)), r.eA1?.valid ? pairedDifferences(perRound.p50Ms(r.e1), perRound.p50Ms(r.eA1)) : undefined, added);
    const cpu = gateUs.g1;
    const io = "the hop's I/O: a new TCP connection from the worker to the gate for every request (a connect() socket cannot outlive its request), the forward over a kept-alive connection to the NodePort, and a wake-up of one more process on the shared cores";
    const why =
      cpu === undefined
        ? `the gate's CPU per request was not measured; the hop adds ${io}`
        : cpu / 1000 >= added
          ? `the gate's own CPU per request, ${fmt(cpu / 1000, 2)} ms (row g1)${prof}, is more than the ${fmt(added, 2)} ms added (part of it runs while the worker is busy too): its CPU is what to cut; besides it, ${io}`
          : `the gate's own CPU is ${fmt(cpu / 1000, 2)} ms per request (row g1)${prof}, ${fmt((cpu / 1000 / added) * 100, 0)}% of the ${fmt(added, 2)} ms added; the rest is ${io}`;
    // Paired over the rounds both ran ((n1) may run fewer rounds than (e1)).
    const floorAdds = r.f1?.valid ? (median(pairedDifferences(perRound.p50Ms(r.f1), perRound.p50Ms(r.e1))) ?? r.f1.p50Ms - r.e1.p50Ms) : 0;
    // How much of the 0.3 ms budget a proxy with no checks at all already takes: how far the gate can get by cutting its own work.
    const budget =
      floorAdds > 0
        ? `, ${fmt((floorAdds / 0.3) * 100, 0)}% of the 0.3 ms budget before any check (${edge === "wrap" ? "a proxy on node:net's documented sockets; the gate's edge connections skip them (--edge wrap), so it can go below this floor" : "the gate can get no lower by cutting its own work"})`
        : "";
    // workerd's own CPU per request at 1 connection is on the request's path too (rv12b 5): paired per round, with the A/A.
    const wd = median(pairedDifferences(perRound.cpuUs(r.g1), perRound.cpuUs(r.e1)));
    const wdA = r.eA1?.valid ? median(pairedDifferences(perRound.cpuUs(r.e1), perRound.cpuUs(r.eA1))) : undefined;
    const workerd1 = wd !== undefined && Number.isFinite(wd) ? `; workerd's own CPU per request, (g1) − (e1) paired: ${fmt(wd, 0)} µs${wdA !== undefined && Number.isFinite(wdA) ? ` (its A/A, (e1) − (eA1): ${fmt(wdA, 0)} µs)` : ""}, on the same path` : "";
    const traced = `${workerd1}; ${hopTimeline()}`;
    const floor1 = r.f1?.valid ? `; a bare Node proxy on the same hop (row n1, no checks) adds ${fmt(floorAdds, 2)} ms (paired over the rounds both ran)${budget}${gateUs.f1 !== undefined ? ` at ${fmt(gateUs.f1 / 1000, 2)} ms of CPU per request` : ""}; ${floorAnatomy(nodeVersion, floorBlobHash())}` : "";
    const noise = j.verdict === "within noise" ? `within noise: ${j.why}. ` : "";
    out.push({
      target: HOP,
      result: `${describeJudgement(j, (x) => `${fmt(x, 2)} ms`)}; of the rows' medians: ${fmt(added, 2)} ms (${fmt(r.g1.p50Ms, 2)} vs ${fmt(r.e1.p50Ms, 2)} ms)`,
      verdict: j.verdict,
      ...(j.verdict === "met" ? {} : { limit: noise + why + traced + floor1 }),
    });
  }
  return out;
}

/** What workerd's extra CPU of (g) over (e) is: split by row (s) when it is valid. Pure. */
function workerdShare(r: GateRows, workerdExtra: number): string {
  const signUs = r.s?.valid && r.s.cpuUsPerRequest !== undefined && r.e.cpuUsPerRequest !== undefined ? r.s.cpuUsPerRequest - r.e.cpuUsPerRequest : undefined;
  if (signUs === undefined) return "signing and the hop's effect on workerd, not split: row (s) is missing or invalid";
  return `${fmt(signUs, 0)} µs (s) − (e), signing plus whatever two workerd processes running the same code differ by (each row is its own process: compare (e) − (eA) in the paired figures; signing alone, counted in instructions in one process, is ~26 k instructions per request (Web Crypto's sign() 25.6 k of them)), and ${fmt(workerdExtra - signUs, 0)} µs the hop itself costs workerd, (g) − (s): the same requests and signatures, a longer wait between a request's write and its answer`;
}

/**
 * What the floor row says about the gate's CPU: how much of it any Node proxy on this hop costs, and how
 * much is the gate's own work. Empty when the floor row is invalid or its CPU was not measured. Pure.
 */
export function floorSplit(
  f: RowOutcome | undefined,
  e: RowOutcome,
  gateCpu: number | undefined,
  floorCpu: number | undefined,
  id: string,
  cpuRounds?: { gate?: number[] | undefined; floor?: number[] | undefined },
  edge?: EdgePath,
): string {
  if (!f?.valid || floorCpu === undefined) return "";
  const reach = `a bare Node proxy on the same hop (row ${id}, no checks) reaches ${fmt(median(pairedRatios(perRound.rps(f), perRound.rps(e))) ?? f.rps / e.rps, 2)}× of (e) (paired over the rounds both ran) at ${fmt(floorCpu, 0)} µs of CPU per request`;
  if (gateCpu === undefined) return `; ${reach}`;
  // Paired over the rounds the floor ran (it may run fewer than the gate), else the two medians.
  const pairedOwn = cpuRounds?.gate && cpuRounds.floor ? median(pairedDifferences(cpuRounds.gate, cpuRounds.floor)) : undefined;
  const own = pairedOwn ?? gateCpu - floorCpu;
  const how = pairedOwn !== undefined ? " (median of the per-round differences over the rounds both ran)" : "";
  if (edge === "wrap") {
    // The gate no longer pays what the floor pays to accept a connection: gate − floor is its checks less that saving.
    const checks = "strict parse, signature check, replay cache, head rewrites, metrics";
    return `; ${reach}: the gate reads and writes its edge connections on Node's TCP handle (--edge wrap) and builds no net.Socket per connection as the floor does, so the difference is its own work (${checks}) less that saving: ${own > 0 ? `${fmt(own, 0)} µs (${fmt((own / gateCpu) * 100, 0)}%)${how} more than the floor` : `${fmt(-own, 0)} µs${how} less than the floor: what it saves on accepting is more than its checks cost`}`;
  }
  return `; ${reach}: ${own > 0 ? `${fmt(own, 0)} µs (${fmt((own / gateCpu) * 100, 0)}%)${how} of the gate's CPU is its own work (strict parse, signature check, replay cache, head rewrites, metrics), the rest is what Node's net and the kernel cost for a new connection per request` : "the gate costs no more than the floor (noise): its CPU is what Node's net and the kernel cost for a new connection per request"}`;
}

/** The A/A control row of the targets table: (e) against its identical copy, at 32 and at 1 connection. Pure. */
export function gateControlTarget(r: GateRows): TargetRow | undefined {
  if (!r.eA || !r.eA1) return undefined;
  const name = "A/A control, not a target: (e) ÷ (eA) and (e1) − (eA1), the same worker and snapshot twice, each in its own workerd: the run's own noise, which the verdicts of section 1g take into account";
  const bad = [r.e, r.eA, r.e1, r.eA1].filter((x) => !x.valid);
  if (bad.length) return { target: name, result: "–", verdict: "invalid", limit: bad.map((x) => `${x.spec.id} invalid: ${x.invalid}`).join("; ") };
  const show = (label: string, xs: number[], unit: (x: number) => string) => {
    const i = medianInterval(xs);
    return i ? `${label} ${unit(i.median)} (${(i.coverage * 100).toFixed(1)}% interval ${unit(i.lo)}–${unit(i.hi)}, range ${unit(i.min)}–${unit(i.max)})` : `${label}: too few rounds`;
  };
  return {
    target: name,
    result: `${show("throughput", pairedRatios(perRound.rps(r.e), perRound.rps(r.eA)), (x) => `${fmt(x, 3)}×`)}; ${show("p50 at 1 connection", pairedDifferences(perRound.p50Ms(r.e1), perRound.p50Ms(r.eA1)), (x) => `${x >= 0 ? "+" : ""}${fmt(x, 3)} ms`)}`,
    verdict: "",
  };
}

/** Paired per-round medians of workerd's CPU per request between rows, for the (s) split: "(s) − (e) 12 µs (range −3–40)". Pure. */
export function pairedCpuNote(a: RowOutcome | undefined, b: RowOutcome | undefined): string | undefined {
  if (!a?.valid || !b?.valid) return undefined;
  const xa = perRound.cpuUs(a);
  const xb = perRound.cpuUs(b);
  const d = xa.map((x, i) => x - (xb[i] ?? NaN)).filter(Number.isFinite);
  const i = medianInterval(d);
  if (!d.length) return undefined;
  return `(${a.spec.id}) − (${b.spec.id}) ${fmt(i?.median ?? d[0], 0)} µs (${i ? `${(i.coverage * 100).toFixed(1)}% interval ${fmt(i.lo, 0)}–${fmt(i.hi, 0)}, ` : ""}range ${fmt(Math.min(...d), 0)}–${fmt(Math.max(...d), 0)})`;
}

function gateSection(rows: GateRows, gateUs: ProxyCpu, forwarded: number, o: GateBenchOptions, env: { addresses: string[]; nodePort: number; gatePort: number }, profile?: string, edge?: EdgePath, node?: ImageNode): Section {
  const { e, s, g, e1, g1, f, f1, eA, eA1, o1 } = rows;
  const row = (r: RowOutcome, gateCpu: number | undefined) => {
    const ok = r.rounds.length > 0 && r.valid;
    return [r.spec.label, ok ? fmt(r.rps, 0) : "–", ok ? fmt(r.p50Ms, 2) : "–", ok ? fmt(r.p99Ms, 2) : "–", ok ? fmt(r.cpuUsPerRequest, 0) : "–", ok && gateCpu !== undefined ? fmt(gateCpu, 0) : "–", String(r.errors), r.valid ? "valid" : "INVALID", r.invalid ?? ""];
  };
  const extraUs = e.valid && g.valid && e.cpuUsPerRequest !== undefined && g.cpuUsPerRequest !== undefined ? g.cpuUsPerRequest - e.cpuUsPerRequest : undefined;
  return {
    title: "1g. Node gate (loopback, plain workerd + edgelb-node-gate)",
    targets: [...(gateControlTarget(rows) ? [gateControlTarget(rows)!] : []), ...gateTargets(rows, gateUs, profile, edge, node?.version)],
    columns: ["row", "req/s", "p50 ms", "p99 ms", "workerd CPU µs/req", "gate (n: floor proxy) CPU µs/req", "errors", "valid", "why invalid"],
    rows: [row(e, undefined), ...(eA ? [row(eA, undefined)] : []), ...(s ? [row(s, undefined)] : []), row(g, gateUs.g), ...(f ? [row(f, gateUs.f)] : []), row(e1, undefined), ...(eA1 ? [row(eA1, undefined)] : []), row(g1, gateUs.g1), ...(f1 ? [row(f1, gateUs.f1)] : []), ...(o1 ? [row(o1, undefined)] : [])],
    notes: [
      `the same worker bundle (worker/index.ts, EDGELB_TRANSPORT=socket, one Service round-robin over 3 simulated nodes ${env.addresses.join(", ")}, NodePort ${env.nodePort}) in ${s ? "five" : "four"} plain workerd processes: (e) snapshot in direct mode; (eA) the A/A control, (e)'s bundle and snapshot again in a workerd of its own (rows eA, eA1); (g) snapshot with origins {mode: "gate", port: ${env.gatePort}} and EDGELB_GATE_KEY, so every request is signed (HMAC-SHA-256, Web Crypto, key imported once per isolate) and sent to the node's gate; (n) the same as (g), sent to the floor proxy instead${s ? `; (s) snapshot with origins {mode: "gate", port: ${env.nodePort}}: signed as (g), but the "gate port" is the NodePort, so it goes straight to the node, which ignores the header` : ""}`,
      `every request is GET ${GATE_PATH}: the node answers its name, a fixed chunked body, whatever the request's fields, so every row's node does the same work and every answer is the same bytes (the echo of GET / carries the fields back: (s)'s node would get and echo the signature that the gate strips before (g)'s)`,
      `gates: edgelb-node-gate (sync-agent/gate: a forwarder on raw TCP, strict head parse, pooled keep-alive connections to the NodePort; its connections from the edge on ${edge === "wrap" ? "Node's TCP handle, no net.Socket per connection (--edge wrap)" : edge === "net" ? "net.Socket (--edge net)" : "an edge path it did not report"}) on each node address, all three in one Node ${node?.version ?? process.version} child process (bench/gate-child.ts; ${node?.source ?? "the bench's own Node"}; NODE_OPTIONS as deploy/gate/daemonset.yaml sets them, ${gateNodeOptions().NODE_OPTIONS ?? "(none)"}; the floor on the same Node and options), --connect node; gate CPU = utime + stime of that process over each round of (g) ÷ requests, median over rounds`,
      `the floor (rows n, n1): a bare Node net proxy on each node address (bench/gate-floor.ts, one child process, CPU measured the same way) behind a third workerd with the gate-mode snapshot: it forwards each head over a pooled keep-alive connection and relays the answer by its Content-Length, with no parse, no signature check, no metrics: what a Node proxy on node:net's documented sockets costs on this hop (a new connection from the worker per request)${edge === "wrap" ? "; the gate does not build the net.Socket per connection that the floor does, so it can cost less than the floor" : "; the gate's CPU above it is its own work"}`,
      `load: ${o.loadgen.name}, ${o.threads} thread(s), ${o.connections} connections (e, eA, ${s ? "s, " : ""}g, n: throughput) and 1 connection (e1, eA1, g1, n1: the hop's own latency, no queueing), ${o.warmupS}s warm-up per row, ${o.targetRounds ?? o.rounds} rounds (every row: the texts compare the target rows with (s), (n) and (n1)) × ${o.durationS}s; the table's cells are medians over rounds; in every round these rows run next to each other, in reverse order every other round: ${GATE_BLOCKS.map((b) => b.join(" ")).join("; ")} (the groups and (n) rotate from round to round), so each target's ratio or difference is taken per round between rows measured seconds apart; answers verified as in section 1 (each row must reach all 3 nodes with 200s), and the gates must have forwarded at least every request the gate rows counted (they forwarded ${forwarded})`,
      loadNote([e, ...(s ? [s] : []), g, e1, g1, ...(f ? [f] : []), ...(f1 ? [f1] : [])]),
      verdictRule([o.targetRounds ?? o.rounds]),
      UNPINNED,
      ...(o1?.valid
        ? [`the load generator straight to a node at 1 connection (row o1): p50 ${fmt(o1.p50Ms, 2)} ms, the part of every 1-connection p50 that is wrk's and the origin's own, the same in (e1) and (g1), so it cancels in their difference; each 1-connection row had the same 1 s warm-up, and (e1), its copy and (g1) ran next to each other in alternating order`]
        : []),
      ...(() => {
        const pairs = [pairedCpuNote(s, e), pairedCpuNote(g, s), pairedCpuNote(g, e), pairedCpuNote(e, eA), pairedCpuNote(g1, e1), pairedCpuNote(e1, eA1)].filter((x): x is string => x !== undefined);
        return pairs.length ? [`workerd CPU per request, paired per round (the rows ran next to each other): ${pairs.join("; ")}`] : [];
      })(),
      profile
        ? `the gates' CPU profile over the whole run (node --cpu-prof, EDGELB_BENCH_GATE_CPU_PROF; idle and start-up left out; the profiler itself costs a few %): ${profile}. On loopback a socket write runs the receiving side's TCP stack in the writer's syscall, so the writes are the hop's I/O: each request is a new connection from the worker (a connect() socket cannot outlive its request), one parse and one answer at the gate, and one forward to the NodePort`
        : "the gates' CPU profile: not taken this run (set EDGELB_BENCH_GATE_CPU_PROF=<dir> to take it and have it cited here)",
      ...(extraUs !== undefined ? [`workerd CPU of (g) − (e): ${fmt(extraUs, 0)} µs per request — ${workerdShare(rows, extraUs)}; noise of a few µs between runs`] : []),
    ],
    data: Object.fromEntries(
      [e, ...(eA ? [eA] : []), ...(s ? [s] : []), g, ...(f ? [f] : []), e1, ...(eA1 ? [eA1] : []), g1, ...(f1 ? [f1] : []), ...(o1 ? [o1] : [])].map((r) => [r.spec.id, { label: r.spec.label, valid: r.valid, invalid: r.invalid, errors: r.errors, requests: r.requests, rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, cpuUsPerRequest: r.cpuUsPerRequest, rounds: r.rounds, ...(r === g ? { gateCpuUsPerRequest: gateUs.g } : r === g1 ? { gateCpuUsPerRequest: gateUs.g1 } : r === f ? { proxyCpuUsPerRequest: gateUs.f } : r === f1 ? { proxyCpuUsPerRequest: gateUs.f1 } : {}) }]),
    ),
  };
}

/** The machine's 1-minute load average during the rounds: a target missed at load 15 on 2 cores is not evidence. Pure. */
export function loadNote(rows: readonly Pick<RowOutcome, "rounds">[], cores = os.cpus().length): string {
  const loads = rows.flatMap((r) => r.rounds.map((x) => x.loadAvg ?? NaN)).filter(Number.isFinite);
  if (!loads.length) return "machine load during the rounds: not recorded";
  const max = Math.max(...loads);
  return `machine load (1-minute load average on ${cores} cores) during the rounds: ${fmt(Math.min(...loads), 1)}–${fmt(max, 1)}${max > cores ? `; above ${cores} more was runnable than the cores (this section's own 32-connection rows, with wrk, workerd, the gates and the nodes all busy, raise the 1-minute average too; other work would lower req/s and raise latency of both rows): the paired verdicts and their A/A widening are what to read, not a single figure` : ""}`;
}

