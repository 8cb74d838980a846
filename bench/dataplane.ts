// Section 1: the data plane on loopback, every worker row in plain workerd
// (bench/workerd: `workerd serve` with a generated capnp config, the bundle
// `wrangler deploy` would upload, one workerd process per row). Three
// simulated nodes are the origins. Rows run interleaved (round 1: a b c…,
// round 2: b c … a), a target's rows next to each other in every round, so
// machine drift hits all alike; cells are medians over the rounds, and targets
// are judged on per-round ratios against an A/A control (bench/lib/verdict). Each row's answers are verified before and after its load
// (bench/lib/verify.ts); a row with a failed check or any error under load is
// invalid, and so is every target that depends on it.
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../worker/snapshot/schema.ts";
import { track } from "./lib/cleanup.ts";
import { startBenchNodes } from "./lib/nodes.ts";
import type { LoadGenerator } from "./lib/loadgen.ts";
import { findNginx, startNginx } from "./lib/nginx.ts";
import { fmt, type Section, type TargetRow } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { perRound, runRows, type RowOutcome, type RowSpec } from "./lib/rows.ts";
import type { Placement } from "./lib/placement/index.ts";
import { describeJudgement, intervalRanks, judge, medianInterval, pairedRatios, verdictRule, type TargetRule } from "./lib/verdict/index.ts";
import { percent } from "./lib/cores/index.ts";
import { startPlainWorker, type PlainWorker, type PlainWorkerOptions } from "./workerd/index.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
/**
 * (d) − (c) in instructions of workerd's main thread per request, item by item, as bench/instructions.ts counts
 * and itemizes it (`npm run bench:instructions -- --rows c,d --repeat 3 --requests 3000`: callgrind, 2,000 warm-up
 * then 3,000 counted requests of GET /status/200, each row's run with the median count). One count, not this
 * run's: the text names its code. Items are edgelb's calls from JavaScript into workerd's API that (c) does not
 * make (inclusive, by member: the C++ behind each call and its argument conversion), garbage collection (each
 * function's self cost by its share spent for GC), and the rest; they add up to the whole gap.
 */
export const FETCH_PATH_COUNT = {
  code: "73a5876",
  /** Thousands of instructions per request: each row's median run. */
  c: 342.2,
  d: 427.6,
  /** edgelb's calls into the API beyond (c)'s, thousands of instructions per request, each with the guarantee it serves and what sets its price. */
  calls: [
    { k: 18.7, what: "fetch() converting edgelb's record of the origin's fields (the client's Host, the edge's X-Forwarded-Proto/-Host and X-Request-Id) where (c) hands over the client's Request, whose fields the runtime copies in C++: a record is converted field by field (RFC 7239 Forwarded, one field more, costs ~10 k and is sent only with EDGELB_FORWARDED=true)" },
    { k: 7.3 + 8.3, what: "eight Headers lookups (four has(), four get(), ~2 k each): the answer's Connection (and the fields it names), Proxy-Connection, Proxy-Authenticate, Proxy-Authorization and the gate's marker, none of which may reach the client (fetch() passes every hop-by-hop field of an answer on: test/worker/fetch-runtime-fields.test.ts), the body's Content-Length and Content-Type (its deadline, and whether it is piped), and the request's Host (its route)" },
    { k: 4.3 + 6.9, what: "one checked pass over the client's fields (entries() 4.3 k, then a next() per field, 2.3 k each): control characters and forged forwarding fields are refused before any node sees them" },
    { k: 6.3 + 2.1 + 1.9, what: "the deadline: setTimeout (6.3 k: workerd keeps every timer in the request's own TimeoutManager, none can be shared between requests) and the AbortController whose signal stops a fetch() that has no timeout option (4.0 k); AbortSignal.timeout(), one call in their place, cannot be cleared or extended, so it would cut a small body handed to the client at its head" },
    { k: 1.9 + 1.8 + 1.8 + 0.5 - 4.6, what: "net: the body's, the answer's and the client's fields' getters, the location's Cache API read of the snapshot (amortized) and smaller members (6.0 k) against the new URL that (c) builds and edgelb does not (4.6 k)" },
  ],
  /** Garbage collection on the main thread, (c) and (d). */
  gc: [27.8, 30.5],
  /** Everything outside those calls and GC; of it, edgelb's JavaScript: JIT code 8.8 k and V8's builtins 14.4 k against (c)'s 0.1 and 5.0 k. */
  rest: 25.5,
  javascript: 8.8 - 0.1 + (14.4 - 5.0),
  /** The optional guarantees, counted on the same code (one run each): what each adds to (d) when turned on. */
  options: "X-Request-Id back on every answer (EDGELB_ECHO_REQUEST_ID=always) adds ~35 k (a copy of each answer: fetch()'s answer fields are immutable in workerd), RFC 7239 Forwarded (EDGELB_FORWARDED=true) ~10 k; before session 13 both were always on, and node:timers' setTimeout wrapper (now no_nodejs_global_timers) cost ~5 k: (d) was 469.5 k (code 72693a1)",
};

/**
 * What row (d) pays per request beyond (c): the itemized instruction count (FETCH_PATH_COUNT), its parts set
 * against `gapUs`, this run's (d) − (c) in µs, in proportion (never a fixed total), and what keeps (d) from
 * 0.85× of (c). Pure.
 */
export function fetchPathCosts(gapUs: number, cUs = Number.NaN): string {
  const t = FETCH_PATH_COUNT;
  const k = (x: number) => `${fmt(x, 1)} k`;
  const gap = t.d - t.c;
  const calls = t.calls.reduce((a, c) => a + c.k, 0);
  const [gcC, gcD] = t.gc as [number, number];
  const gc = gcD - gcC;
  const items = t.calls.map((c) => `${c.k < 0 ? "−" : ""}${k(Math.abs(c.k))}, ${c.what}`).join("; ");
  const share = (x: number) => (Number.isFinite(gapUs) && gapUs > 0 ? ` (~${fmt((gapUs * x) / gap, 0)} µs of this run's ${fmt(gapUs, 0)} µs)` : "");
  // Throughput follows 1 ÷ CPU when workerd's CPU limits both rows: 0.85× allows (d) at most (c) ÷ 0.85 of CPU,
  // judged in µs (the run's CPU, kernel and other threads included), not in main-thread instructions (rv12b 1).
  const budgetUs = cUs / 0.85 - cUs;
  const perUs = gap / gapUs;
  const known = Number.isFinite(budgetUs) && Number.isFinite(gapUs) && gapUs > 0;
  const over = gapUs - budgetUs;
  const budget = !known
    ? "What stands between (d) and 0.85× is set against this run's CPU per request, which is not known here. "
    : over > 0
      ? `What stands between (d) and 0.85× of (c): workerd's CPU limits both rows, so 0.85× allows (d) at most (c) ÷ 0.85 of CPU, ${fmt(budgetUs, 1)} µs per request more than (c)'s ${fmt(cUs, 0)} µs; (d) spends ${fmt(gapUs, 1)} µs more, ${fmt(over, 1)} µs over (at this run's ~${fmt(perUs, 1)} k instructions of the count per µs of the gap, ~${fmt(over * perUs, 0)} k instructions). ` +
        `${(gapUs * calls) / gap <= budgetUs ? `The calls into the API alone (~${fmt((gapUs * calls) / gap, 0)} µs) fit in the allowance; with GC and the rest they do not` : `The calls into the API alone (~${fmt((gapUs * calls) / gap, 0)} µs) do not fit in the allowance`}. Each call serves a documented guarantee at the runtime's price per call, so closing the gap means cutting edgelb's own JavaScript and allocations. `
      : `What 0.85× of (c) allows: workerd's CPU limits both rows, so (d) may spend at most (c) ÷ 0.85 of CPU, ${fmt(budgetUs, 1)} µs per request more than (c)'s ${fmt(cUs, 0)} µs; this run's (d) spends ${fmt(gapUs, 1)} µs more, within it. `;
  return (
    "No body is piped or relayed in this row (GET /status/200 is a short chunked text answer, handed to the client as fetch() returned it; a native pipe per request cost ~0.4× of (c)'s CPU, code d28f171, so only bodies over 64 KiB, streams and downloads are piped). " +
    `Counted in instructions of workerd's main thread and itemized by bench/instructions.ts (npm run bench:instructions -- --rows c,d --repeat 3 --requests 3000; callgrind, load-proof; code ${t.code}): (c) ${k(t.c)} and (d) ${k(t.d)} per request, (d) − (c) = ${k(gap)}: ` +
    `edgelb's calls from JavaScript into workerd's API ${k(calls)}${share(calls)}, garbage collection ${k(gc)}${share(gc)} (${k(gcD)} against ${k(gcC)}), and the rest ${k(t.rest)}${share(t.rest)}; JIT code and V8's builtins anywhere in (d) come to ${k(t.javascript)} more than in (c) (an upper bound on edgelb's own JavaScript: builtins also run inside the calls). ` +
    `edgelb's calls, each with the guarantee it serves and what sets its price: ${items}. ` +
    `Defaults measured (the optional guarantees off): ${t.options}. ` +
    budget +
    "Measured and dropped: Headers.forEach in place of the iterator and of the lookups costs ~12 k instructions per request more (each callback is a C++ → JavaScript call dearer than a next(); session 10); a record without Host would save ~6 k (pf12, code bb4601c), but whether Cloudflare's edge honours an in-zone Host given to fetch() is not verified, so the record keeps it. No syscall is added: strace counts 8.45 per request for (c) and 8.48 for (d) (code 80c22fa)"
  );
}


export const BENCH_HOST = "bench.example.com";
/**
 * What every row of section 1 asks: a fixed answer (the node's name, a chunked text body of the same bytes whatever
 * the request's fields, as section 1g asks). GET / is the node's echo of the request's fields, so (d)'s and (e)'s
 * answers carried edgelb's forwarding fields back and were larger than (c)'s: different work for rows a target compares.
 */
export const DATAPLANE_PATH = "/status/200";
/** The rows section 1's targets of per-request cost are judged on, with their A/A control: they get `targetRounds`. */
export const TARGET_ROWS: ReadonlySet<string> = new Set(["cA", "c", "d", "c2A", "e", "c2", "f"]);
/** A CPU group at least this busy over a round limited the row's throughput (bench/lib/cores). */
export const SATURATED = 0.9;
const PUSH_TOKEN = "bench-push-token";
/** The large-body rows download this much per request. */
export const LARGE_BYTES = 20 * 2 ** 20;
const LARGE_PATH = `/stream?bytes=${LARGE_BYTES}`;

export interface DataPlaneOptions {
  loadgen: LoadGenerator;
  /** Rounds of every row. */
  rounds: number;
  /** Rounds of TARGET_ROWS (more rounds narrow the interval their verdicts are judged on); default `rounds`. */
  targetRounds?: number;
  durationS: number;
  warmupS: number;
  connections: number;
  /** Connections for the 20 MiB download rows. */
  largeConnections: number;
  threads: number;
  /** First three octets of the origins' loopback addresses. */
  addressBase: string;
  /** Probe requests before and after each row's load. */
  probes?: number;
  /** Only these rows (ids: a b c cA c2 c2A f d e Lc LcA Lc2 Lf Ld Le); default all. Workers no selected row needs are not started. */
  rows?: ReadonlySet<string>;
  /** Where workerd and the rest run (bench/lib/placement); default: not pinned. */
  placement?: Placement;
  log: (line: string) => void;
}

/**
 * Rows run next to each other in every round (bench/lib/rows.ts): a target's rows and the A/A copy of (c),
 * (c) in the middle so that it is adjacent to both its copy and (d); (c′) between (e) and (f).
 */
export const DATAPLANE_BLOCKS = [
  ["cA", "c", "d"],
  ["c2A", "e", "c2", "f"],
  ["LcA", "Lc"],
  ["Le", "Ld"],
];

/**
 * The A/A control rows a selection of rows needs (`--rows`): every target of section 1 is judged against (c) ÷ (cA),
 * the download target against (Lc) ÷ (LcA); without them no verdict could be met or missed. Pure.
 */
export function withControls(rows: ReadonlySet<string>): Set<string> {
  const out = new Set(rows);
  if (["c", "c2", "f", "d", "e"].some((id) => rows.has(id))) out.add("c").add("cA");
  // The socket targets are judged against the socket rows' own A/A control, (c′) ÷ (c2A).
  if (["c2", "f", "e"].some((id) => rows.has(id))) out.add("c2").add("c2A");
  if (["Lc", "Lc2", "Lf", "Ld", "Le"].some((id) => rows.has(id))) out.add("Lc").add("LcA");
  return out;
}

/** The snapshot edgelb serves in the bench: one Service on the given nodes. */
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
export async function pushSnapshot(worker: { url: string }, snapshot: SnapshotInput, token = PUSH_TOKEN, cluster = "default"): Promise<void> {
  const res = await fetch(`${worker.url}/__edgelb/v1/clusters/${cluster}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(snapshot),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`push endpoint answered ${res.status}: ${text.slice(0, 300)}`);
}

/** The real edge worker (worker/index.ts) in plain workerd, in-memory KV, the bench snapshot pushed. */
export async function startEdgelb(transport: "fetch" | "socket", snapshot: SnapshotInput, more?: Pick<PlainWorkerOptions, "wrapper" | "startTimeoutMs" | "onStdout" | "v8Flags">): Promise<PlainWorker> {
  const worker = await startPlainWorker({
    ...more,
    name: `edgelb (${transport})`,
    entry: path.join(ROOT, "worker/index.ts"),
    kvBinding: "EDGELB_KV",
    vars: { EDGELB_TRANSPORT: transport, EDGELB_PUSH_TOKEN: PUSH_TOKEN, EDGELB_CLUSTERS: "default", EDGELB_REQUEST_LOGS: "false" },
  });
  track(`edgelb worker (${transport})`, () => worker.stop());
  await pushSnapshot(worker, snapshot);
  return worker;
}

/** A bench worker (bench/trivial-proxy/*) that forwards to one fixed origin, or (socket rows) to `origins` in turn. */
export async function startTrivial(file: string, origin: string, origins?: readonly string[], more?: Pick<PlainWorkerOptions, "wrapper" | "startTimeoutMs" | "onStdout" | "v8Flags">): Promise<PlainWorker> {
  const vars: Record<string, string> = origins ? { BENCH_ORIGINS: origins.join(",") } : { BENCH_ORIGIN: origin };
  const worker = await startPlainWorker({ ...more, name: file, entry: path.join(HERE, "trivial-proxy", file), vars });
  track(`bench worker ${file}`, () => worker.stop());
  return worker;
}

/** A worker row's spec: load at its URL, CPU from its workerd process. */
export function workerRow(w: PlainWorker, spec: Omit<RowSpec, "url" | "cpuSeconds">): RowSpec {
  return { ...spec, url: w.url, cpuSeconds: () => w.cpuSeconds() };
}

const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b ? undefined : a / b);

/** Section 1's rows, ready to load: the simulated nodes, nginx and one plain workerd per worker started. */
export interface DataPlaneRows {
  rows: RowSpec[];
  skipped: { id: string; label: string; why: string }[];
  addresses: string[];
  nodePort: number;
}

/** Starts what section 1's rows need (only the selected rows' workers) and gives each row its rounds. */
export async function startDataPlaneRows(o: Pick<DataPlaneOptions, "addressBase" | "connections" | "largeConnections" | "rounds" | "targetRounds" | "rows" | "placement" | "log">): Promise<DataPlaneRows> {
  const { addresses, names, nodePort } = await startBenchNodes(o.addressBase);
  const origin = `http://${addresses[0]}:${nodePort}`;
  const allOrigins = addresses.map((a) => `http://${a}:${nodePort}`);
  const snapshot = benchSnapshot(addresses, nodePort);
  const one = { nodes: [names[0]!] };
  const all = { nodes: names, everyNode: true };
  const small = { path: DATAPLANE_PATH, connections: o.connections };
  // At least 3 s a round and a 30 s timeout: a 20 MiB download through a slow
  // path takes seconds on a loaded machine, and partial downloads count in MiB but not requests.
  const large = { path: LARGE_PATH, connections: o.largeConnections, durationS: 3, timeoutS: 30 };

  const wanted = (...ids: string[]) => !o.rows || ids.some((id) => o.rows!.has(id));
  const rows: RowSpec[] = [];
  const skipped: { id: string; label: string; why: string }[] = [];
  if (wanted("a")) rows.push({ id: "a", label: "(a) direct to one origin (no worker)", url: origin, expect: one, ...small });

  const nginx = wanted("b") ? findNginx() : undefined;
  if (!wanted("b")) {
    // not selected
  } else if (!nginx) skipped.push({ id: "b", label: "(b) nginx round-robin proxy", why: "skipped: nginx not installed" });
  else {
    try {
      const proxy = await startNginx(nginx, addresses.map((address) => ({ address, port: nodePort })));
      rows.push({ id: "b", label: "(b) nginx round-robin proxy (no worker)", url: proxy.url, host: BENCH_HOST, expect: all, ...small });
    } catch (err) {
      skipped.push({ id: "b", label: "(b) nginx round-robin proxy", why: `skipped: nginx did not start (${(err as Error).message.slice(0, 200)})` });
    }
  }

  o.log("data plane: bundling (wrangler deploy --dry-run) and starting one plain workerd per worker");
  // The origins live in this process: it runs beside the load generator, workerd apart (when pinned).
  o.placement?.pin(process.pid, "rest", "the bench process (origins)");
  // Started together: the bundles (one wrangler run per entry, shared by the rows of one entry) and workerd
  // startups overlap, which shortens the section's setup (and the tests that start its rows).
  const [trivialFetch, trivialCopy, trivialSocket, trivialSocketCopy, floor, edgeFetch, edgeSocket] = await Promise.all([
    wanted("c", "Lc") ? startTrivial("index.ts", origin) : undefined,
    // The A/A control: the same bundle, started the same way, in a workerd of its own.
    wanted("cA", "LcA") ? startTrivial("index.ts", origin) : undefined,
    // The socket rows take the 3 nodes in turn, as (e) does: every socket request is a new TCP connection, and one
    // destination would take all of a row's connection work alone (rv-bench s9 4).
    wanted("c2", "Lc2") ? startTrivial("socket.js", origin, allOrigins) : undefined,
    // The socket rows' A/A control: (c′) again, in a workerd of its own.
    wanted("c2A") ? startTrivial("socket.js", origin, allOrigins) : undefined,
    wanted("f", "Lf") ? startTrivial("socket-floor.js", origin, allOrigins) : undefined,
    wanted("d", "Ld") ? startEdgelb("fetch", snapshot) : undefined,
    wanted("e", "Le") ? startEdgelb("socket", snapshot) : undefined,
  ]);
  for (const w of [trivialFetch, trivialCopy, trivialSocket, trivialSocketCopy, floor, edgeFetch, edgeSocket]) if (w) o.placement?.pin(w.pid, "worker", `workerd ${w.name}`);
  const workerRows: [PlainWorker | undefined, Omit<RowSpec, "url" | "cpuSeconds">][] = [
    [trivialFetch, { id: "c", label: "(c) trivial proxy, fetch()", expect: one, ...small }],
    [trivialCopy, { id: "cA", label: "(cA) A/A control: (c) again, its own workerd", expect: one, ...small }],
    [trivialSocket, { id: "c2", label: "(c′) trivial proxy, worker/transport/socket as is", expect: all, ...small }],
    [trivialSocketCopy, { id: "c2A", label: "(c2A) A/A control for the socket targets: (c′) again, its own workerd", expect: all, ...small }],
    [floor, { id: "f", label: "(f) socket floor: connect() + fixed request + raw pipe", expect: { ...all, rawHttp: true }, ...small }],
    [edgeFetch, { id: "d", label: "(d) edgelb, fetch transport", host: BENCH_HOST, expect: all, ...small }],
    [edgeSocket, { id: "e", label: "(e) edgelb, socket transport", host: BENCH_HOST, expect: all, ...small }],
    [trivialFetch, { id: "Lc", label: "(Lc) trivial proxy, fetch()", expect: { ...one, bodyBytes: LARGE_BYTES }, ...large }],
    [trivialCopy, { id: "LcA", label: "(LcA) A/A control for downloads: (Lc) again, its own workerd", expect: { ...one, bodyBytes: LARGE_BYTES }, ...large }],
    [trivialSocket, { id: "Lc2", label: "(Lc′) trivial proxy, worker/transport/socket", expect: { ...all, bodyBytes: LARGE_BYTES }, ...large }],
    [floor, { id: "Lf", label: "(Lf) socket floor", expect: { ...all, rawHttp: true, bodyBytes: LARGE_BYTES }, ...large }],
    [edgeFetch, { id: "Ld", label: "(Ld) edgelb, fetch transport", host: BENCH_HOST, expect: { ...all, bodyBytes: LARGE_BYTES }, ...large }],
    [edgeSocket, { id: "Le", label: "(Le) edgelb, socket transport", host: BENCH_HOST, expect: { ...all, bodyBytes: LARGE_BYTES }, ...large }],
  ];
  for (const [w, spec] of workerRows) if (w && wanted(spec.id)) rows.push(workerRow(w, spec));
  const targetRounds = o.targetRounds ?? o.rounds;
  for (const row of rows) row.rounds = TARGET_ROWS.has(row.id) ? targetRounds : o.rounds;
  return { rows, skipped, addresses, nodePort };
}

export async function runDataPlane(o: DataPlaneOptions): Promise<Section[]> {
  const { rows, skipped, addresses, nodePort } = await startDataPlaneRows(o);
  const targetRounds = o.targetRounds ?? o.rounds;
  let outcomes: RowOutcome[];
  try {
    outcomes = await runRows(rows, {
      loadgen: o.loadgen,
      rounds: Math.max(o.rounds, targetRounds),
      durationS: o.durationS,
      warmupS: o.warmupS,
      threads: o.threads,
      probes: o.probes ?? 6,
      blocks: DATAPLANE_BLOCKS,
      ...(o.placement?.cpus ? { cores: o.placement.cpus } : {}),
      log: o.log,
    });
  } finally {
    o.placement?.release(process.pid);
  }
  const sections = dataPlaneSections(outcomes, skipped, o, { addresses, nodePort });
  return sections;
}

/** Targets of issue 14 from the measured rows; a target on an invalid row is invalid. Pure. */
/**
 * What the socket transport does per request that the socket floor (f) does not, from a CPU
 * profile of each (bench/profile.ts --worker trivial-socket / floor; shares of the isolate's
 * samples). Shares, not µs: the profile was
 * taken on a loaded machine, where only ratios hold.
 */
const SOCKET_OWN_COSTS =
  "In a CPU profile of (c′) (code bee43f1) against one of (f), what (c′) does beyond the floor is what an HTTP proxy over connect() needs: " +
  "getReader() and read() of the head, 4% of (c′)'s samples (the runtime has no HTTP/1.1 parser for sockets: status, fields and framing must be read and checked in JavaScript, which also keeps response smuggling out); " +
  "the Response built with the origin's fields, 4.6% against 1.7% bare; " +
  "one timer per request for the connect and response deadlines, 2.4% (workerd binds timers to their request, so none can be shared; the no_nodejs_global_timers flag showed no gain); " +
  "our own JavaScript (request head built and checked against smuggling, head parsed, control flow, the resumption after the read) 28%. " +
  "Already cut: the open is not awaited (connect, head write and first read start together; whether the node ever accepted the connection is asked only when the read fails, so a refused or silent node is still retried safely), " +
  "an answer that came whole with its head (a chunked one decoded) goes to the Response as bytes (no stream, writer or copy), and its socket is left to the runtime, which closes it with the request (no close() per request): " +
  "promise and stream jobs with no JavaScript frame fell from 19% to 5% of samples (the floor's: 11%). " +
  "connect() itself (19%) and the head write (4%) are paid by both rows";

/** What a target is judged on: its paired per-round values, the A/A control's of the same statistic, and the old figure. */
interface Judged {
  perRound: number[];
  control: number[] | undefined;
  headline: number | undefined;
}

/** An A/A control, per round: a row and its identical copy ((c) and (cA); (Lc) and (LcA)). Undefined when either is missing or invalid. */
function controlOf(byId: (id: string) => RowOutcome | undefined, metric: (r: RowOutcome) => number[], ids: [string, string] = ["c", "cA"]): number[] | undefined {
  const [c, cA] = [byId(ids[0]), byId(ids[1])];
  return c?.valid && cA?.valid ? pairedRatios(metric(c), metric(cA)) : undefined;
}

/**
 * What limited a row over its rounds (medians): the share of its CPU the row's own workerd process used, the share
 * of theirs the load generator and the origins used (the bench process and its reaped wrk), and the foreign work on
 * workerd's CPU (its /proc/stat busy share minus workerd's own: other processes on a shared machine).
 */
export interface CoreLimit {
  worker: number;
  rest: number;
  /** Busy share of workerd's CPU not used by the row's workerd (undefined when /proc/stat was not read). */
  foreign?: number;
  bound: "workerd's CPU" | "the load generator's CPU" | "both CPUs" | "neither CPU";
}

/**
 * Which side limited a row of a pinned run (every workerd on one CPU, the load generator and the origins on the
 * other): the side whose own processes used at least SATURATED of their CPU, median over the rounds. Decided on the
 * processes' own CPU, never on how busy the CPU was (other processes on a shared machine make a CPU busy without
 * limiting the row). Undefined when not measured (unpinned). Pure.
 */
export function limitingCore(r: Pick<RowOutcome, "rounds">): CoreLimit | undefined {
  const worker = median(perRound.workerdShare(r).filter(Number.isFinite));
  const rest = median(perRound.loadSideShare(r).filter(Number.isFinite));
  if (!Number.isFinite(worker) || !Number.isFinite(rest)) return undefined;
  const own = perRound.workerdShare(r);
  const foreignRounds = perRound.busy(r, "worker").map((b, i) => Math.max(0, b - (own[i] ?? NaN))).filter(Number.isFinite);
  const foreign = median(foreignRounds);
  const bound = worker >= SATURATED ? (rest >= SATURATED ? "both CPUs" : "workerd's CPU") : rest >= SATURATED ? "the load generator's CPU" : "neither CPU";
  return { worker, rest, ...(Number.isFinite(foreign) ? { foreign } : {}), bound };
}

/** "workerd used 97% of its CPU, wrk and the origins 61% of theirs: workerd's CPU limits it". Pure. */
export function describeCoreLimit(l: CoreLimit | undefined): string {
  if (!l) return "which CPU limits it was not measured (processes not pinned)";
  const what =
    l.bound === "workerd's CPU"
      ? "workerd's CPU limits it"
      : l.bound === "the load generator's CPU"
        ? "the load generator's CPU (wrk and the origins) limits it, not workerd"
        : l.bound === "both CPUs"
          ? "both sides used their CPUs fully"
          : "neither side used its CPU fully (waits, or other processes on the CPUs, limit it)";
  const foreign = l.foreign !== undefined ? `; other processes took ${percent(l.foreign)} of workerd's CPU` : "";
  return `workerd used ${percent(l.worker)} of its CPU, wrk and the origins ${percent(l.rest)} of theirs${foreign}: ${what}`;
}

/**
 * Why a target's rows were given different work: the origin's answers they got before the load differ in size
 * (the probes' bodies, the raw floor's de-framed). Undefined when all are the same or not known. Pure.
 */
export function unequalAnswers(rows: readonly Pick<RowOutcome, "spec" | "answerBytes">[]): string | undefined {
  const known = rows.filter((r) => r.answerBytes?.length);
  if (new Set(known.map((r) => r.answerBytes!.join("/"))).size <= 1) return undefined;
  return `the rows' answers differ in size (${known.map((r) => `${r.spec.id}: ${r.answerBytes!.join("/")} B`).join("; ")}): their origins were given different work`;
}

/** The A/A control row of the targets table: the run's own noise, beside the targets it decides. Pure. */
export function controlTarget(byId: (id: string) => RowOutcome | undefined, large = false, socket = false): TargetRow | undefined {
  const [c, cA] = large ? [byId("Lc"), byId("LcA")] : socket ? [byId("c2"), byId("c2A")] : [byId("c"), byId("cA")];
  const name = large
    ? "A/A control, not a target: (Lc) ÷ (LcA), two identical trivial fetch proxies in their own workerd, 20 MiB downloads: the noise the download target is judged with"
    : socket
      ? "A/A control, not a target: (c′) ÷ (c2A), two identical trivial socket proxies in their own workerd: the noise the socket targets ((e), (c′) ≤ 2× (f), the halving) are judged with"
      : "A/A control, not a target: (c) ÷ (cA), two identical trivial fetch proxies in their own workerd: the noise the fetch targets ((d)) are judged with";
  if (!c || !cA) return undefined;
  if (!c.valid || !cA.valid) return { target: name, result: "–", verdict: "invalid", limit: [c, cA].filter((r) => !r.valid).map((r) => `${r.spec.id} invalid: ${r.invalid}`).join("; ") };
  const show = (label: string, xs: number[]) => {
    const i = medianInterval(xs);
    return i ? `${label} ${fmt(i.median, 3)}× (${(i.coverage * 100).toFixed(1)}% interval ${fmt(i.lo, 3)}–${fmt(i.hi, 3)}, range ${fmt(i.min, 3)}–${fmt(i.max, 3)})` : `${label}: too few rounds`;
  };
  if (large) return { target: name, result: show("CPU per MiB", pairedRatios(perRound.cpuMsPerMiB(c), perRound.cpuMsPerMiB(cA))), verdict: "" };
  return { target: name, result: `${show("throughput", pairedRatios(perRound.rps(c), perRound.rps(cA)))}; ${show("CPU per request", pairedRatios(perRound.cpuUs(c), perRound.cpuUs(cA)))}`, verdict: "" };
}

/**
 * What a throughput ratio of two pinned rows (x over y) means, from which CPU limited each: when workerd's CPU
 * limited both, throughput follows CPU per request (ratio ≈ 1 ÷ the CPU ratio); otherwise it does not, and the
 * text says which side limited which row. Pure.
 */
export function throughputReading(ratioMeasured: number, cpuRatio: number | undefined, x: CoreLimit | undefined, y: CoreLimit | undefined, ids: [string, string] = ["d", "c"]): string {
  const [a, b] = ids.map((id) => `(${id})`) as [string, string];
  const follows = cpuRatio === undefined || !Number.isFinite(cpuRatio) ? undefined : 1 / cpuRatio;
  const byCpu = follows === undefined ? "" : ` By CPU per request alone ${a} would reach ${fmt(follows, 2)}× of ${b}'s throughput (1 ÷ ${fmt(cpuRatio, 2)}); it measured ${fmt(ratioMeasured, 2)}×.`;
  if (!x || !y) return `Which CPU limited the rows was not measured (not pinned).${byCpu}`;
  const both = `${a}: ${describeCoreLimit(x)}; ${b}: ${describeCoreLimit(y)} (medians over the rounds, /proc/stat).`;
  if (x.bound === "workerd's CPU" && y.bound === "workerd's CPU")
    return `${both} workerd's CPU limited both rows, so throughput follows CPU per request: 1 ÷ ${fmt(cpuRatio, 2)} = ${fmt(follows, 2)}× (measured ${fmt(ratioMeasured, 2)}×).`;
  return `${both} Not both workerd-bound, so the throughput ratio is not 1 ÷ the CPU ratio: it also measures the load generator's side.${byCpu}`;
}

export function dataPlaneTargets(byId: (id: string) => RowOutcome | undefined): TargetRow[] {
  const targets: TargetRow[] = [];
  const target = (
    name: string,
    ids: string[],
    rule: TargetRule,
    judged: (r: RowOutcome[]) => Judged,
    result: (v: number, r: RowOutcome[]) => string,
    limit: (v: number, r: RowOutcome[]) => string,
  ) => {
    const rs = ids.map(byId);
    const missing = ids.filter((_, i) => !rs[i]);
    if (missing.length) return targets.push({ target: name, result: "–", verdict: "not measured", limit: `row ${missing.join(", ")} not run` });
    const bad = rs.filter((r) => !r!.valid);
    if (bad.length) return targets.push({ target: name, result: "–", verdict: "invalid", limit: bad.map((r) => `${r!.spec.id} invalid: ${r!.invalid}`).join("; ") });
    const unequal = unequalAnswers(rs as RowOutcome[]);
    if (unequal) return targets.push({ target: name, result: "–", verdict: "invalid", limit: unequal });
    const j = judged(rs as RowOutcome[]);
    const v = j.headline;
    if (v === undefined || !Number.isFinite(v)) return targets.push({ target: name, result: "–", verdict: "not measured", limit: "no CPU figure" });
    const verdict = judge(rule, j.perRound, j.control, v);
    const cell = `${describeJudgement(verdict, (x) => `${fmt(x, 2)}×`)}; of the rows' medians: ${result(v, rs as RowOutcome[])}`;
    const why = verdict.verdict === "within noise" ? `within noise: ${verdict.why}. ` : "";
    targets.push({ target: name, result: cell, verdict: verdict.verdict, ...(verdict.verdict === "met" ? {} : { limit: why + limit(v, rs as RowOutcome[]) }) });
  };
  const us = (x: number | undefined) => `${fmt(x, 0)} µs`;
  const rpsControl = controlOf(byId, perRound.rps);
  const cpuControl = controlOf(byId, perRound.cpuUs);
  // Socket rows drift apart more than fetch rows: their targets take the socket rows' own A/A noise (rv-bench s9 5).
  const socketRpsControl = controlOf(byId, perRound.rps, ["c2", "c2A"]);
  const socketCpuControl = controlOf(byId, perRound.cpuUs, ["c2", "c2A"]);
  const atLeast = (threshold: number): TargetRule => ({ threshold, direction: "at least", scale: "ratio" });
  const atMost = (threshold: number): TargetRule => ({ threshold, direction: "at most", scale: "ratio" });
  target(
    "(d) edgelb fetch ≥ 0.85× the trivial fetch proxy's throughput (c)",
    ["d", "c"],
    atLeast(0.85),
    ([d, c]) => ({ perRound: pairedRatios(perRound.rps(d!), perRound.rps(c!)), control: rpsControl, headline: ratio(d!.rps, c!.rps) }),
    (v, [d, c]) => `${fmt(v, 2)}× (${fmt(d!.rps, 0)} vs ${fmt(c!.rps, 0)} req/s)`,
    (v, [d, c]) => {
      const cpu = ratio(d!.cpuUsPerRequest, c!.cpuUsPerRequest);
      const reading = ` ${throughputReading(v, cpu, limitingCore(d!), limitingCore(c!))}`;
      return `edgelb spends ${us((d!.cpuUsPerRequest ?? NaN) - (c!.cpuUsPerRequest ?? NaN))} more workerd CPU per request than (c) (${fmt(cpu, 2)}×), which hands the runtime's Request and Response through untouched.${reading} ${fetchPathCosts((d!.cpuUsPerRequest ?? NaN) - (c!.cpuUsPerRequest ?? NaN), c!.cpuUsPerRequest ?? NaN)}`;
    },
  );
  target(
    "(d) edgelb fetch ≤ 1.3× the trivial fetch proxy's CPU per request (c)",
    ["d", "c"],
    atMost(1.3),
    ([d, c]) => ({ perRound: pairedRatios(perRound.cpuUs(d!), perRound.cpuUs(c!)), control: cpuControl, headline: ratio(d!.cpuUsPerRequest, c!.cpuUsPerRequest) }),
    (v, [d, c]) => `${fmt(v, 2)}× (${us(d!.cpuUsPerRequest)} vs ${us(c!.cpuUsPerRequest)})`,
    (_, [d, c]) => `${us((d!.cpuUsPerRequest ?? NaN) - (c!.cpuUsPerRequest ?? NaN))} per request over (c), which does one fetch() with the client's own Request. ${fetchPathCosts((d!.cpuUsPerRequest ?? NaN) - (c!.cpuUsPerRequest ?? NaN), c!.cpuUsPerRequest ?? NaN)}`,
  );
  target(
    "(e) edgelb socket ≥ 0.85× the trivial socket proxy's throughput (c′)",
    ["e", "c2"],
    atLeast(0.85),
    ([e, c2]) => ({ perRound: pairedRatios(perRound.rps(e!), perRound.rps(c2!)), control: socketRpsControl, headline: ratio(e!.rps, c2!.rps) }),
    (v, [e, c2]) => `${fmt(v, 2)}× (${fmt(e!.rps, 0)} vs ${fmt(c2!.rps, 0)} req/s)`,
    (v, [e, c2]) =>
      `edgelb's request path adds ${us((e!.cpuUsPerRequest ?? NaN) - (c2!.cpuUsPerRequest ?? NaN))} of workerd CPU per request over (c′): the same proxy work as (d) on top of the transport. ${throughputReading(v, ratio(e!.cpuUsPerRequest, c2!.cpuUsPerRequest), limitingCore(e!), limitingCore(c2!), ["e", "c′"])}`,
  );
  target(
    "(c′) socket transport CPU per request ≤ 2× the socket floor's (f)",
    ["c2", "f"],
    atMost(2),
    ([c2, f]) => ({ perRound: pairedRatios(perRound.cpuUs(c2!), perRound.cpuUs(f!)), control: socketCpuControl, headline: ratio(c2!.cpuUsPerRequest, f!.cpuUsPerRequest) }),
    (v, [c2, f]) => `${fmt(v, 2)}× (${us(c2!.cpuUsPerRequest)} vs ${us(f!.cpuUsPerRequest)}; the transport's own ${us((c2!.cpuUsPerRequest ?? NaN) - (f!.cpuUsPerRequest ?? NaN))})`,
    (_, [c2, f]) => `the transport's own ${us((c2!.cpuUsPerRequest ?? NaN) - (f!.cpuUsPerRequest ?? NaN))} per request on top of connect(): the runtime has no HTTP/1.1 parser for sockets, so the response head is read, split and checked in JavaScript (status line, fields, framing), the request head is built and checked (smuggling) and encoded, and a Headers and Response are made from the parsed head; the floor writes a constant and hands socket.readable to the Response unparsed. A body that came with the head is handed over as bytes; after the head, Content-Length (64 KiB or more to come) and close-delimited bodies are piped natively from the socket; a chunked body is decoded in JavaScript`,
  );
  target(
    "(Le) 20 MiB over sockets ≤ 2× the CPU per MiB of fetch() (Ld)",
    ["Le", "Ld"],
    atMost(2),
    ([le, ld]) => ({ perRound: pairedRatios(perRound.cpuMsPerMiB(le!), perRound.cpuMsPerMiB(ld!)), control: controlOf(byId, perRound.cpuMsPerMiB, ["Lc", "LcA"]), headline: ratio(le!.cpuMsPerMiB, ld!.cpuMsPerMiB) }),
    (v, [le, ld]) => `${fmt(v, 2)}× (${fmt(le!.cpuMsPerMiB, 2)} vs ${fmt(ld!.cpuMsPerMiB, 2)} ms CPU per MiB)`,
    () => {
      const [le, lf, ld] = [byId("Le")?.cpuMsPerMiB, byId("Lf")?.cpuMsPerMiB, byId("Ld")?.cpuMsPerMiB];
      return `after the head, the socket transport pipes the Content-Length body natively from socket.readable into a FixedLengthStream (no JavaScript per chunk; the bytes read with the head are written first); what limits it is the runtime's socket path itself: the floor, which hands socket.readable to the Response with no parsing at all, already costs ${fmt(lf, 2)} ms per MiB (row Lf: ${fmt(ratio(lf, ld), 1)}× fetch()'s ${fmt(ld, 2)}), and (Le) adds ${fmt((le ?? NaN) - (lf ?? NaN), 2)} ms per MiB on top of it (the extra stream the pipe goes through, and edgelb's request path); the trivial socket proxy costs ${fmt(byId("Lc2")?.cpuMsPerMiB, 2)} ms (row Lc′)`;
    },
  );
  target(
    "(c′) − (f) the socket transport's own CPU per request ≤ 0.99× the trivial fetch proxy's (c): issue 14's halving (1.98× of (c) in session 4)",
    ["c2", "f", "c"],
    atMost(0.99),
    ([c2, f, c]) => {
      const [a, b, k] = [perRound.cpuUs(c2!), perRound.cpuUs(f!), perRound.cpuUs(c!)];
      return { perRound: pairedRatios(a.map((x, i) => x - (b[i] ?? NaN)), k), control: socketCpuControl, headline: ratio((c2!.cpuUsPerRequest ?? NaN) - (f!.cpuUsPerRequest ?? NaN), c!.cpuUsPerRequest) };
    },
    (v, [c2, f, c]) => `${fmt(v, 2)}× (${us((c2!.cpuUsPerRequest ?? NaN) - (f!.cpuUsPerRequest ?? NaN))} vs ${us(c!.cpuUsPerRequest)} of (c))`,
    (_, [c2, f]) => `the transport's own ${us((c2!.cpuUsPerRequest ?? NaN) - (f!.cpuUsPerRequest ?? NaN))} per request (${us(c2!.cpuUsPerRequest)} − ${us(f!.cpuUsPerRequest)}). ${SOCKET_OWN_COSTS}`,
  );
  return targets;
}

/** "97%* (95–99) / 61% (55–70); others 3%": the sides' own CPU shares, median and range over the rounds, "*" where saturated. Pure. */
function busyCell(r: RowOutcome): string {
  const l = limitingCore(r);
  if (!l) return "–";
  const side = (xs: number[], m: number) => {
    const f = xs.filter(Number.isFinite);
    return `${percent(m)}${m >= SATURATED ? "*" : ""} (${Math.round(Math.min(...f) * 100)}–${Math.round(Math.max(...f) * 100)})`;
  };
  return `${side(perRound.workerdShare(r), l.worker)} / ${side(perRound.loadSideShare(r), l.rest)}${l.foreign !== undefined ? `; others ${percent(l.foreign)}` : ""}`;
}

/** Which CPU limited each measured row, for the notes. Pure. */
function coreLimits(rows: readonly RowOutcome[]): string {
  const parts = rows.filter((r) => r.valid && r.rounds.length).map((r) => ({ id: r.spec.id, l: limitingCore(r) })).filter((x) => x.l);
  if (!parts.length) return "In this run: no row measured";
  return `In this run: ${parts.map((x) => `(${x.id}) ${x.l!.bound}`).join("; ")}`;
}

/** "19 B in every row" or each row's sizes. Pure. */
export function answerSizes(rows: readonly Pick<RowOutcome, "spec" | "answerBytes">[]): string {
  const known = rows.filter((r) => r.answerBytes?.length);
  if (!known.length) return "not measured";
  const sizes = new Set(known.map((r) => r.answerBytes!.join("/")));
  return sizes.size === 1 ? `${[...sizes][0]} B of body in every row` : `DIFFERENT: ${known.map((r) => `(${r.spec.id}) ${r.answerBytes!.join("/")} B`).join(", ")}`;
}

/** "16 rounds (8 for a, b: no target is judged on them)". Pure. */
function roundsText(o: Pick<DataPlaneOptions, "rounds" | "targetRounds">): string {
  const t = o.targetRounds ?? o.rounds;
  return t === o.rounds ? `${o.rounds} rounds` : `${t} rounds for the rows the targets of this section are judged on (${[...TARGET_ROWS].join(" ")}), ${o.rounds} for the others (a, b, which no target uses; section 1b's rows)`;
}

function dataPlaneSections(outcomes: RowOutcome[], skipped: { id: string; label: string; why: string }[], o: DataPlaneOptions, env: { addresses: string[]; nodePort: number }): Section[] {
  const byId = (id: string) => outcomes.find((r) => r.spec.id === id);
  const c = byId("c");
  const validity = (r: RowOutcome) => (r.valid ? "valid" : "INVALID");
  const rows: string[][] = [];
  const small = outcomes.filter((r) => !r.spec.id.startsWith("L"));
  // An invalid row's numbers are not results: the table shows none (results.json keeps them).
  const cOk = c?.valid ? c : undefined;
  for (const r of small) {
    const measured = r.rounds.length > 0 && r.valid;
    const isWorker = r.spec.cpuSeconds !== undefined;
    rows.push([
      r.spec.label,
      measured ? fmt(r.rps, 0) : "–",
      measured ? fmt(r.p50Ms, 2) : "–",
      measured ? fmt(r.p99Ms, 2) : "–",
      isWorker && measured ? fmt(r.cpuUsPerRequest, 0) : "–",
      measured && r !== c && cOk ? `${fmt(median(pairedRatios(perRound.rps(r), perRound.rps(cOk))), 2)}×` : "–",
      isWorker && measured && r !== c && cOk?.cpuUsPerRequest ? `${fmt(median(pairedRatios(perRound.cpuUs(r), perRound.cpuUs(cOk))), 2)}×` : "–",
      measured ? busyCell(r) : "–",
      String(r.errors),
      validity(r),
      r.invalid ?? "",
    ]);
  }
  for (const s of skipped) rows.push([s.label, "–", "–", "–", "–", "–", "–", "–", "–", "skipped", s.why]);

  const ld = byId("Ld")?.valid ? byId("Ld") : undefined;
  const largeRows: string[][] = outcomes
    .filter((r) => r.spec.id.startsWith("L"))
    .map((r) => {
      const measured = r.rounds.length > 0 && r.valid;
      return [
        r.spec.label,
        measured ? fmt(r.mibPerS, 0) : "–",
        measured ? fmt(r.rps, 2) : "–",
        measured ? fmt(r.cpuMsPerMiB, 2) : "–",
        measured && r !== ld && ld?.cpuMsPerMiB ? `${fmt(median(pairedRatios(perRound.cpuMsPerMiB(r), perRound.cpuMsPerMiB(ld))), 2)}×` : "–",
        String(r.errors),
        validity(r),
        r.invalid ?? "",
      ];
    });

  const all = dataPlaneTargets(byId);
  const largeControl = controlTarget(byId, true);
  const largeTargets = [...(largeControl ? [largeControl] : []), ...all.filter((t) => t.target.startsWith("(L"))];
  const control = controlTarget(byId);
  const socketControl = controlTarget(byId, false, true);
  const smallTargets = [...(control ? [control] : []), ...(socketControl ? [socketControl] : []), ...all.filter((t) => !t.target.startsWith("(L"))];
  const c2 = byId("c2");
  const f = byId("f");
  const transportOwn = c2?.valid && f?.valid && c2.cpuUsPerRequest !== undefined && f.cpuUsPerRequest !== undefined ? c2.cpuUsPerRequest - f.cpuUsPerRequest : undefined;
  const data = (rs: RowOutcome[]) =>
    Object.fromEntries(
      rs.map((r) => [
        r.spec.id,
        { label: r.spec.label, path: r.spec.path, connections: r.spec.connections, valid: r.valid, invalid: r.invalid, before: r.before, after: r.after, answerBytes: r.answerBytes, errors: r.errors, requests: r.requests, rps: r.rps, p50Ms: r.p50Ms, p99Ms: r.p99Ms, mibPerS: r.mibPerS, cpuUsPerRequest: r.cpuUsPerRequest, cpuMsPerMiB: r.cpuMsPerMiB, rounds: r.rounds },
      ]),
    );
  const method = [
    `runtime: plain workerd (node_modules/workerd, \`workerd serve\` with a generated capnp config, bench/workerd), one process per worker; each worker bundled by \`wrangler deploy --dry-run\` (the artifact a deploy uploads; wrangler.toml sets keep_names = false, so no __name wrappers), wrangler.toml's compatibility date, flags and [vars]; edgelb with an in-memory KV namespace (bench/workerd/kv-memory.js) and the snapshot pushed through its control endpoint. No Miniflare: its entry layer costs more per request than the worker under test`,
    `origins: 3 simulated nodes (${env.addresses.join(", ")}), NodePort ${env.nodePort}, in the bench's Node process. Every row asks GET ${DATAPLANE_PATH} (the floor (f) writes the same path in its fixed request): the node answers its name in a fixed chunked text body, whatever the request's fields, so every row's node does the same work and every answer has the same size (${answerSizes(small)}); the probes still prove the origin (x-edgelb-node) and the status. Not GET /: the node echoes the request's fields there, so (d) and (e) got edgelb's forwarding fields back, larger answers than (c)'s. A target whose rows' answers differ in size is invalid. /stream?bytes=N answers N bytes with a fixed head (section 1b)`,
    `load: ${o.loadgen.name}, ${o.threads} thread(s), ${o.connections} connections (${o.largeConnections} for 20 MiB downloads); ${o.warmupS}s warm-up per row, then ${roundsText(o)} × ${o.durationS}s; the cells of the table are medians over rounds (errors summed), its "vs" columns the median of the per-round ratios. In every round a target's rows run next to each other (${DATAPLANE_BLOCKS.map((b) => b.join(" ")).join("; ")}), in reverse order every other round; these groups and the other rows rotate from round to round`,
    `A/A controls: (cA), a second copy of (c), and (c2A), a second copy of (c′), each the same bundle started the same way in its own workerd; (c) ÷ (cA) per round is the noise the fetch target (d) is judged with, (c′) ÷ (c2A) the noise of the socket targets ((e), (c′) ≤ 2× (f), the halving), both shown in the targets table (for downloads, (Lc) ÷ (LcA) the same way)`,
    verdictRule([o.targetRounds ?? o.rounds]),
    o.placement?.cpus
      ? `CPU used (which side limits a row): the share of its CPU each side's own processes used over the row's rounds, median and range: workerd = the row's workerd process (utime + stime from /proc/<pid>/stat ÷ the round's wall time; every workerd is on CPU ${o.placement.cpus.worker.join(",")}); wrk + origins = the bench process serving the origins plus the wrk it ran and reaped (its utime, stime, cutime, cstime from /proc/self/stat ÷ wall time ÷ CPUs ${o.placement.cpus.rest.join(",")}); "*" marks a side at ${percent(SATURATED)} or more, the one that limits the row's throughput: a workerd-bound row's throughput follows 1 ÷ its CPU per request, a row bound by the other side measures the load generator and the origins too. "others": how much of workerd's CPU other processes took (its /proc/stat busy share minus the row's workerd), i.e. foreign work on a shared machine; it is never read as the row's own. ${coreLimits(small)}`
      : "CPU used per side: not measured (processes not pinned)",
    o.placement?.describe() ?? "processes not pinned",
    `workerd CPU = utime + stime of the row's workerd process (/proc/<pid>/stat, all threads, 10 ms ticks) over each round ÷ requests (or ÷ MiB read by the load generator) — the CPU Workers would bill plus workerd's own I/O work; the median over rounds`,
    `verified: ${o.probes ?? 6} requests before and ${o.probes ?? 6} after each row's load must be 200 from the intended origin (x-edgelb-node of the simulated node; for the floor, the origin's raw "HTTP/1.1 200" head and header inside the body), round-robin rows must reach all 3 nodes, 20 MiB rows must carry exactly 20 MiB; under load every socket error, timeout or 4xx/5xx counts (wrk does not count 3xx; the probes demand 200). A row failing any of this is INVALID and its targets say so`,
    "(c): bench/trivial-proxy/index.ts, fetch() to node-1 as is (workerd keeps its connections alive); (c′): bench/trivial-proxy/socket.js, worker/transport/socket to the 3 nodes in turn, as (e) reaches them (one TCP connection per request, as connect() sockets cannot outlive a request, so every row of a socket target spreads its connections over the same 3 destinations); (f): bench/trivial-proxy/socket-floor.js, connect() to the 3 nodes in turn, a fixed GET with Connection: close, socket.readable returned as the body; (d)/(e): worker/index.ts with EDGELB_TRANSPORT=fetch / socket, one Service round-robin over the 3 nodes",
    ...(transportOwn !== undefined ? [`the socket transport's own CPU per request, (c′) − (f): ${fmt(transportOwn, 0)} µs — the figure issue 14 wants at most halved`] : []),
  ];
  const loads = outcomes.flatMap((r) => r.rounds.map((x) => x.loadAvg ?? NaN)).filter(Number.isFinite);
  if (loads.length) method.push(`machine load (1-minute load average on ${os.cpus().length} cores) during the rounds: ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)}; above ~${os.cpus().length} other work shared the cores, which lowers req/s and raises latency for every row (interleaving spreads it evenly); CPU per request is less sensitive but not immune (less batching per event-loop turn, cache contention), so compare rows of one run, not runs`);
  return [
    {
      title: "1. Data plane (loopback, plain workerd)",
      targets: smallTargets,
      columns: ["row", "req/s", "p50 ms", "p99 ms", "workerd CPU µs/req", "req/s vs (c)", "CPU vs (c)", "CPU used: workerd / wrk + origins (range); others on workerd's CPU", "errors", "valid", "why invalid"],
      rows,
      notes: method,
      data: data(small),
    },
    {
      title: "1b. Large bodies (20 MiB downloads, plain workerd)",
      targets: largeTargets,
      columns: ["row", "MiB/s", "downloads/s", "workerd CPU ms/MiB", "CPU/MiB vs (Ld)", "errors", "valid", "why invalid"],
      rows: largeRows,
      notes: [
        `each request downloads /stream?bytes=${LARGE_BYTES} (20 MiB, Content-Length) through the same workers as section 1, ${o.largeConnections} connections, rounds of at least 3 s, 30 s timeout; CPU per MiB = workerd CPU over the round ÷ MiB the load generator read (partial downloads included); every answer has the same fixed head (Content-Length, no echo of the request's fields): ${answerSizes(outcomes.filter((r) => r.spec.id.startsWith("L")))}`,
        `${o.rounds} rounds (the download target's interval: ${intervalRanks(o.rounds)}): it passes with a wide margin, so its rows get no extra rounds`,
      ],
      data: data(outcomes.filter((r) => r.spec.id.startsWith("L"))),
    },
  ];
}
