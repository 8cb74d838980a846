// Section 2: routing cost, measured on the worker's real modules in Node
// (they are plain TypeScript on web APIs; tsx loads them, a stub stands in
// for `cloudflare:sockets`). Each size runs in its own Node process
// (bench/routing-child.ts) with a heap cap and a time limit, so one size
// that blows up is reported as such and the others still run. Not inside
// workerd: its clock does not advance during synchronous work, so
// microsecond timing is impossible there.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { killChild, track } from "./lib/cleanup.ts";
import { fmt, verdictOf, type Section, type TargetRow, type Verdict } from "./lib/report.ts";
import { syntheticSnapshot } from "./lib/snapshots.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");

interface Timing {
  cpuMs: number;
  wallMs: number;
  runs: number;
}

interface ChildResult {
  nodes: number;
  services: number;
  bytes: number;
  load: Timing;
  retainedMiB: number;
  parse: Timing;
  validate: Timing;
  index: Timing;
  decision: { cpuUs: number; wallUs: number; decisions: number };
  request: { cpuUs: number; wallUs: number; requests: number };
}

export interface RoutingOptions {
  quick: boolean;
  log: (line: string) => void;
}

const HEAP_CAP_MB = 3072;
const ISOLATE_MB = 128;

function runChild(nodes: number, services: number, timeoutS: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--expose-gc",
        `--max-old-space-size=${HEAP_CAP_MB}`,
        "--import",
        "tsx",
        "--import",
        path.join(HERE, "lib/no-sockets.ts"),
        path.join(HERE, "routing-child.ts"),
        String(nodes),
        String(services),
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    const untrack = track(`routing child ${nodes}×${services}`, () => killChild(child, 500), () => child.kill("SIGKILL"));
    let out = "";
    let err = "";
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
    const timer = setTimeout(() => {
      timedOut = true;
      void killChild(child, 500);
    }, timeoutS * 1000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      void untrack();
      const line = out.split("\n").find((l) => l.startsWith("ROUTING_JSON "));
      if (line) return resolve(JSON.parse(line.slice("ROUTING_JSON ".length)) as ChildResult);
      if (timedOut) return reject(new Error(`did not finish within ${timeoutS} s`));
      if (/heap out of memory|Allocation failed/i.test(err)) return reject(new Error(`ran out of memory (heap cap ${HEAP_CAP_MB} MB)`));
      reject(new Error(`exited with ${signal ?? code}: ${err.trim().split("\n").slice(-3).join(" ").slice(0, 300)}`));
    });
  });
}

export async function runRoutingInChild(o: RoutingOptions): Promise<Section> {
  const sizes = o.quick ? [10, 1000] : [10, 1000, 5000];
  const combos: [number, number][] = [];
  for (const n of sizes) for (const s of sizes) combos.push([n, s]);
  const largest = combos.at(-1)!;
  const rows: string[][] = [];
  const data: unknown[] = [];
  const targets: TargetRow[] = [];
  const big = (n: number) => n.toLocaleString("en-US");
  const largestLabel = `${big(largest[0])} × ${big(largest[1])}`;
  // Filled in after the loop from what was measured.
  const decisionLimit = "DECISION_LIMIT";
  const loadLimit = "LOAD_LIMIT";
  for (const [nodes, services] of combos) {
    const isLargest = nodes === largest[0] && services === largest[1];
    const label = `${nodes.toLocaleString("en-US")} nodes × ${services.toLocaleString("en-US")} services`;
    const timeoutS = nodes * services >= 10_000_000 ? 45 : 60;
    o.log(`  routing ${label}…`);
    try {
      const r = await runChild(nodes, services, timeoutS);
      const decisionVerdict: Verdict = isLargest ? verdictOf(r.decision.cpuUs < 20) : "";
      const loadVerdict: Verdict = isLargest ? verdictOf(r.load.cpuMs < 100) : "";
      rows.push([
        label,
        r.bytes.toLocaleString("en-US"),
        fmt(r.decision.cpuUs, 2),
        decisionVerdict,
        fmt(r.load.cpuMs, 1),
        `${fmt(r.parse.cpuMs, 1)} / ${fmt(r.validate.cpuMs, 1)} / ${fmt(r.index.cpuMs, 1)}`,
        loadVerdict,
        fmt(r.retainedMiB, 1),
        r.retainedMiB < ISOLATE_MB ? "yes" : "NO",
        fmt(r.request.cpuUs, 1),
      ]);
      data.push({ label, ...r, largest: isLargest, decisionVerdict: decisionVerdict || undefined, loadVerdict: loadVerdict || undefined });
      if (isLargest) {
        targets.push({ target: `routing decision < 20 µs at ${largestLabel}`, result: `${fmt(r.decision.cpuUs, 2)} µs`, verdict: decisionVerdict, ...(decisionVerdict === "missed" ? { limit: decisionLimit } : {}) });
        targets.push({ target: `snapshot load < 100 ms at ${largestLabel}`, result: `${fmt(r.load.cpuMs, 1)} ms (${big(r.bytes)} bytes)`, verdict: loadVerdict, ...(loadVerdict === "missed" ? { limit: loadLimit } : {}) });
      }
      o.log(`    decision ${fmt(r.decision.cpuUs, 2)} µs, load ${fmt(r.load.cpuMs, 1)} ms CPU, retained ${fmt(r.retainedMiB, 1)} MiB`);
    } catch (err) {
      const why = (err as Error).message;
      const bytesNote = Buffer.byteLength(JSON.stringify(syntheticSnapshot({ nodes, services }))).toLocaleString("en-US");
      rows.push([label, bytesNote, `– (${why})`, isLargest ? "missed" : "", `– (${why})`, "–", isLargest ? "missed" : "", `> ${HEAP_CAP_MB}?`, "NO", "–"]);
      data.push({ label, nodes, services, bytes: Number(bytesNote.replace(/,/g, "")), failed: why, largest: isLargest, decisionVerdict: isLargest ? "missed" : undefined, loadVerdict: isLargest ? "missed" : undefined });
      if (isLargest) {
        targets.push({ target: `routing decision < 20 µs at ${largestLabel}`, result: `not measurable: the index ${why}`, verdict: "missed", limit: decisionLimit });
        targets.push({ target: `snapshot load < 100 ms at ${largestLabel}`, result: `${why} (${bytesNote} bytes)`, verdict: "missed", limit: loadLimit });
      }
      o.log(`    ${why}`);
    }
  }
  const done = data as ({ nodes: number; services: number } & Partial<ChildResult> & { failed?: string })[];
  const measured = done.filter((d) => d.decision && d.load);
  const byNodes = [...new Set(measured.map((d) => d.nodes))]
    .map((n) => `${fmt(Math.max(...measured.filter((d) => d.nodes === n).map((d) => d.decision!.cpuUs)), 1)} µs at ${big(n)} nodes`)
    .join(", ");
  const heaviest = measured.reduce<(typeof measured)[number] | undefined>((a, d) => (!a || d.load!.cpuMs > a.load!.cpuMs ? d : a), undefined);
  const failed = done.filter((d) => d.failed).map((d) => `${big(d.nodes)} × ${big(d.services)}: ${d.failed}`);
  for (const t of targets) {
    if (t.limit === decisionLimit) {
      t.limit = `chooseOrigin (worker/balancer/route.ts) is O(1) in nodes for round-robin/random/least-request, ~O(√nodes) for client-ip affinity, O(nodes) only when failing open: ${byNodes}`;
    }
    if (t.limit === loadLimit) {
      t.limit = `load = JSON.parse + valibot validation + buildIndex (one node table per cluster, O(nodes + services))${heaviest ? ` (${big(heaviest.nodes)} × ${big(heaviest.services)}: ${fmt(heaviest.load!.cpuMs, 0)} ms, ${fmt(heaviest.retainedMiB, 0)} MiB heap)` : ""}${failed.length ? `; ${failed.join("; ")}` : ""}; a Workers isolate has 128 MB`;
    }
  }
  targets.push({
    target: "snapshot load off the request's critical path",
    result: "background refresh (waitUntil) after EDGELB_CACHE_TTL, old index keeps serving; pushes install in the push request",
    verdict: "met",
    limit: `for refreshes and pushes (by design, read in worker/config/index.ts); not for the first request of a fresh isolate, which waits for the KV read and the load; and a refresh runs on the isolate's only thread, so while it runs concurrent requests wait${heaviest ? ` (a load took ${fmt(heaviest.load!.cpuMs, 0)} ms CPU at ${big(heaviest.nodes)} × ${big(heaviest.services)})` : ""}`,
  });
  return {
    title: "2. Routing cost (the worker's modules in Node 20, one process per size)",
    targets,
    columns: [
      "config",
      "snapshot bytes",
      "decision µs (CPU)",
      "< 20 µs at largest",
      "load ms (CPU)",
      "parse / validate / index ms",
      "< 100 ms at largest",
      "config heap MiB",
      `fits ${ISOLATE_MB} MB isolate`,
      "request path µs (CPU)",
    ],
    rows,
    notes: [
      "synthetic snapshots (bench/lib/snapshots.ts): 1 in 20 nodes unhealthy; services 80% round-robin, 10% client-ip affinity, 10% Local with 1–3 weighted endpoint nodes; one hostname each (every 10th has two)",
      "decision = lookupRoute (host → route) + the proxy's first-attempt choice (chooseOrigin in worker/balancer/route.ts: the balancer's pick among healthy, not ejected origins, client-ip affinity where the Service asks), over random hosts; CPU time per decision (process.cpuUsage over ≥1,000 decisions)",
      "load = ConfigStore.refresh() on a fresh store: KV read (stub) → parseSnapshot (JSON.parse + valibot validation) → buildIndex; CPU ms per load; the parts are timed separately",
      "config heap = V8 heap retained by the loaded ConfigStore after GC (snapshot text + parsed snapshot + route index); a Workers isolate has 128 MB in all",
      "request path = createEdge().fetch() (data-plane requests skip hono's router) through proxy() with a transport stub that answers at once like the echo origin (200, x-edgelb-node, ~300 B JSON): the worker's whole per-request CPU cost without I/O, in Node's V8 (not workerd's). Every timed request must come back 200 with the stub's whole body, or the size fails; workerd's IdentityTransformStream/FixedLengthStream, which Node lacks, come from bench/lib/workerd-streams.ts (before, every request here threw inside the response relay and a 500 was timed)",
      "off the critical path: after the first load an isolate serves the index it has; when EDGELB_CACHE_TTL expires, ConfigStore.ready() starts one refresh handed to waitUntil() and the request goes on with the old index; an unchanged KV value is not re-parsed; a push installs the new index in the push request. Only the first request of a fresh isolate waits for the load — and while a refresh parses and indexes, other requests of that isolate wait for the CPU (one thread)",
      `each size runs in its own process with --max-old-space-size=${HEAP_CAP_MB} and a 45–60 s limit; a size that exceeds either is reported, not hidden`,
    ],
    data,
  };
}
