// Instructions per request of section 1's worker rows, counted under callgrind: a load-proof
// figure (the same on an idle or a busy machine, unlike CPU time), for changes of a few
// thousand instructions that a throughput run cannot see.
//
//   node --import tsx bench/instructions.ts [--rows c,d] [--warmup 2000] [--requests 1000] [--path /status/200] [--repeat 1] [--browser]
//   npm run bench:instructions -- --rows c,d
// Prints the table, then each row's gap to (c) item by item: every call from JavaScript into workerd's
// API with its calls and cost per call, GC, and the rest (bench/lib/runtime-calls.ts).
//
// Each row's workerd is started exactly as section 1 starts it (bench/dataplane.ts: the bundle of
// `wrangler deploy --dry-run`, plain `workerd serve`, the same snapshot over the same 3 simulated
// loopback nodes), but under `valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes`:
// valgrind runs workerd in its own process (same pid), uninstrumented at first. Then:
//   1. the warm-up requests (sequential, one keep-alive connection, each verified), so V8 has
//      compiled and optimized the path and the isolate's caches are filled;
//   2. `callgrind_control -i on <pid>` (instrumentation on), then `callgrind_control -z <pid>`
//      (counters zeroed); callgrind_control reaches valgrind through vgdb, which wakes a workerd
//      blocked in epoll_wait, so both take effect while no request is in flight;
//   3. the counted requests, sequential, each verified like the bench's probes (status 200 and
//      x-edgelb-node of a node the row is meant to reach; round-robin rows must reach all 3);
//   4. `callgrind_control --dump=counted <pid>`, then workerd is stopped.
// The result is the dump's Ir (instructions executed) of thread 1, workerd's event loop and
// isolate (every request's JavaScript, the runtime's C++ for it, V8's main-thread GC), ÷ the
// counted requests; all threads' Ir (V8's platform workers: concurrent marking, compilation) is
// shown beside it, and so is the main thread's garbage collection (V8's and cppgc's collections and
// incremental steps, inclusive, from the dump's call graph: bench/lib/callgrind.ts GC_ENTRIES), which
// comes in lumps of millions of instructions (a scavenge) and so moves the total by several k per
// request from run to run: the count without it is the steadier figure for a change to the path.
// With --perf-map, V8's perf map (--perf-basic-prof) names the JIT code and the JavaScript functions are
// listed by inclusive Ir, and the main thread's own instructions are split by the kind of code that ran them
// (JavaScript, V8 builtins, V8 C++, workerd/kj C++, allocator, libc, unattributed), which sum to the whole.
// Then every call from JavaScript into the runtime (jsg's method, getter and constructor entry points:
// calls per request and their inclusive Ir), the cost a worker's own code cannot see in a JS profile.
// Instructions are not time (a cache miss costs more than an add), but they are
// what a change to the request path adds or removes, without the noise of a shared machine.
// A row with any failed request is invalid and shows no number. Rows run one after another.
import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { BENCH_HOST, benchSnapshot, DATAPLANE_PATH, startEdgelb, startTrivial } from "./dataplane.ts";
import { countDump, dumpFiles, gcIr, instructionsTable, jsInclusive, jsTable, parseCallGraph, parseCallgrindTotals, parsePerfMap, selfByKind, type DumpCount, type RowCount } from "./lib/callgrind.ts";
import { cleanupAll } from "./lib/cleanup.ts";
import { gapTable, interpreted, itemize, medianRun, type Itemized } from "./lib/runtime-calls.ts";
import { startBenchNodes } from "./lib/nodes.ts";
import { BROWSER_FIELDS, judgeProbes, probe, type Expectation } from "./lib/verify.ts";
import type { PlainWorker } from "./workerd/index.ts";

const run = promisify(execFile);
const OUT_BASE = "callgrind.out";

const ROWS: Record<string, { label: string; host?: string; start: (more: RowStart, env: Env) => Promise<PlainWorker>; expect: (env: Env) => Expectation }> = {
  c: {
    label: "(c) trivial proxy, fetch()",
    start: (more, env) => startTrivial("index.ts", env.origins[0]!, undefined, more),
    expect: (env) => ({ nodes: [env.names[0]!] }),
  },
  d: {
    label: "(d) edgelb, fetch transport",
    host: BENCH_HOST,
    start: (more, env) => startEdgelb("fetch", env.snapshot, more),
    expect: (env) => ({ nodes: env.names, everyNode: true }),
  },
  e: {
    label: "(e) edgelb, socket transport",
    host: BENCH_HOST,
    start: (more, env) => startEdgelb("socket", env.snapshot, more),
    expect: (env) => ({ nodes: env.names, everyNode: true }),
  },
};

interface RowStart {
  wrapper: string[];
  v8Flags?: string[];
  startTimeoutMs: number;
  onStdout: (text: string) => void;
}

interface Env {
  origins: string[];
  names: string[];
  snapshot: ReturnType<typeof benchSnapshot>;
}

async function callgrindControl(args: string[], pid: number): Promise<void> {
  const { stdout } = await run("callgrind_control", [...args, String(pid)], { timeout: 60_000 });
  if (!/\bOK\b/.test(stdout)) throw new Error(`callgrind_control ${args.join(" ")} ${pid}: ${stdout.trim()}`);
}

/** n sequential requests, each verified; returns how many failed and the first failure's text. */
async function send(w: PlainWorker, host: string | undefined, pathAndQuery: string, expect: Expectation, n: number, fields?: Record<string, string>): Promise<{ errors: number; first?: string; nodes: Set<string> }> {
  let errors = 0;
  let first: string | undefined;
  const nodes = new Set<string>();
  for (let i = 0; i < n; i++) {
    const p = await probe(w.url, host, pathAndQuery, 10_000, fields);
    const problems = judgeProbes({ ...expect, everyNode: false }, [p]);
    if (problems.length) {
      errors++;
      first ??= problems[0];
    } else if (p.node) nodes.add(p.node);
  }
  return { errors, ...(first ? { first } : {}), nodes };
}

async function countRow(id: string, env: Env, o: { warmup: number; requests: number; path: string; keep?: string; v8Flags: string[]; perfMap: boolean; fields?: Record<string, string> }, log: (s: string) => void): Promise<{ count?: DumpCount; itemized?: Itemized; js?: string; errors: number; invalid?: string }> {
  const spec = ROWS[id]!;
  const dir = await mkdtemp(path.join(tmpdir(), "edgelb-callgrind-"));
  const wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes", `--callgrind-out-file=${path.join(dir, OUT_BASE)}.%p`];
  const expect = spec.expect(env);
  let w: PlainWorker | undefined;
  try {
    const t0 = Date.now();
    // What the worker logs (its JSON lines: proxy.failed, …), the last of it shown when a request fails.
    let output = "";
    const v8Flags = o.perfMap ? [...o.v8Flags, "--perf-basic-prof"] : o.v8Flags;
    w = await spec.start({ wrapper, ...(v8Flags.length ? { v8Flags } : {}), startTimeoutMs: 300_000, onStdout: (t) => (output = (output + t).slice(-3000)) }, env);
    const said = () => (output.trim() ? `; the worker's last output: ${output.trim().slice(-1500)}` : "");
    log(`  (${id}) workerd under callgrind, pid ${w.pid}, started in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${o.warmup} warm-up requests`);
    const warm = await send(w, spec.host, o.path, expect, o.warmup, o.fields);
    if (warm.errors) return { errors: warm.errors, invalid: `${warm.errors} of ${o.warmup} warm-up requests failed: ${warm.first}${said()}` };
    await callgrindControl(["-i", "on"], w.pid);
    await callgrindControl(["-z"], w.pid);
    const t1 = Date.now();
    const counted = await send(w, spec.host, o.path, expect, o.requests, o.fields);
    await callgrindControl(["--dump=counted"], w.pid);
    log(`  (${id}) ${o.requests} counted requests in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    if (counted.errors) return { errors: counted.errors, invalid: `${counted.errors} of ${o.requests} counted requests failed: ${counted.first}${said()}` };
    if (expect.everyNode) {
      const missing = expect.nodes.filter((n) => !counted.nodes.has(n));
      if (missing.length) return { errors: 0, invalid: `round-robin did not reach ${missing.join(", ")}` };
    }
    const names = await readdir(dir);
    const files = dumpFiles(names, OUT_BASE, w.pid, 1);
    if (files.size === 0) return { errors: 0, invalid: `no callgrind dump found in ${dir} (${names.join(", ")})` };
    const texts = new Map(await Promise.all([...files].map(async ([thread, f]) => [thread, await readFile(path.join(dir, f), "utf8")] as const)));
    if (o.keep) for (const [thread, f] of files) await copyFile(path.join(dir, f), path.join(o.keep, `callgrind.${id}.${w.pid}-${thread}`));
    const count = countDump([...texts.values()].map(parseCallgrindTotals));
    const graph = parseCallGraph(texts.get(1)!);
    let js: string | undefined;
    if (o.perfMap) {
      // V8 writes its map to /tmp/perf-<pid>.map (valgrind keeps workerd's pid); read, then removed with the run.
      const mapFile = `/tmp/perf-${w.pid}.map`;
      const map = parsePerfMap(await readFile(mapFile, "utf8"));
      js = jsTable(jsInclusive(graph, map), selfByKind(graph, map), count.mainIr, o.requests);
      if (o.keep) await copyFile(mapFile, path.join(o.keep, `perf.${id}.${w.pid}.map`));
    }
    return { count: { ...count, gcIr: gcIr(graph) }, itemized: itemize(graph, count.mainIr, o.requests), ...(js ? { js } : {}), errors: 0 };
  } finally {
    await w?.stop();
    await rm(dir, { recursive: true, force: true });
    if (w && o.perfMap) rmSync(`/tmp/perf-${w.pid}.map`, { force: true });
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ options: OPTIONS });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(USAGE);
    return;
  }
  await count(values);
}

const USAGE = `usage: npm run bench:instructions -- [--rows c,d,e] [--warmup 2000] [--requests 1000] [--path /status/200] [--repeat 1]
                                    [--browser] [--keep DIR] [--v8-flags --no-concurrent-recompilation] [--perf-map] [--address-base 127.25.50]
Counts workerd's instructions per request under callgrind for section 1's rows (c) trivial fetch proxy,
(d) edgelb over fetch(), (e) edgelb over sockets, and itemizes each row's gap to (c) by call into workerd's API
(docs/benchmarks.md). Every counted request must be 200 from the intended node, or the row is invalid.
--browser: every request carries a browser's 19 fields as Cloudflare hands them to a Worker (bench/lib/verify.ts
BROWSER_FIELDS) besides Host; without it, Host alone, as the load generator sends.`;

/** A bad command line or a missing tool: one line and exit code 2, no stack. */
class UsageError extends Error {}

const OPTIONS = {
      help: { type: "boolean", short: "h", default: false },
      rows: { type: "string", default: "c,d" },
      warmup: { type: "string", default: "2000" },
      requests: { type: "string", default: "1000" },
      path: { type: "string", default: DATAPLANE_PATH },
      repeat: { type: "string", default: "1" },
      "address-base": { type: "string", default: "127.25.50" },
      /** Copy each run's dump files here (callgrind_annotate them, or read them with bench/lib/callgrind.ts). */
      keep: { type: "string" },
      /**
       * V8 flags for workerd, comma-separated ("" for none). By default TurboFan compiles on the main
       * thread: under valgrind its background thread seldom runs, so a run's hot functions could stay in
       * V8's baseline tiers (and be left out) by chance; the warm-up pays for the compiling, not the count.
       */
      "v8-flags": { type: "string", default: "--no-concurrent-recompilation" },
      /** Name JIT code with V8's perf map (--perf-basic-prof) and list JavaScript functions by inclusive Ir. */
      "perf-map": { type: "boolean", default: false },
      browser: { type: "boolean", default: false },
} as const;

async function count(values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"]): Promise<void> {
  const ids = values.rows.split(",").map((s) => s.trim()).filter(Boolean);
  for (const id of ids) if (!ROWS[id]) throw new UsageError(`unknown row ${id} (rows: ${Object.keys(ROWS).join(", ")})`);
  const warmup = Number(values.warmup);
  const requests = Number(values.requests);
  const repeat = Number(values.repeat);
  const v8Flags = values["v8-flags"].split(",").map((f) => f.trim()).filter(Boolean);
  if (!Number.isSafeInteger(warmup) || warmup < 0 || !Number.isSafeInteger(requests) || requests < 1 || !Number.isSafeInteger(repeat) || repeat < 1) {
    throw new UsageError("--warmup, --requests and --repeat must be whole numbers (requests and repeat at least 1)");
  }
  // Without valgrind nothing can be counted: say so in one line, not as a spawn error halfway.
  try {
    await run("valgrind", ["--version"]);
    await run("callgrind_control", ["--version"]);
  } catch {
    throw new UsageError("needs valgrind with callgrind_control on the PATH (Debian/Ubuntu: apt-get install valgrind)");
  }
  const log = (s: string) => console.error(s);
  if (values.keep) await mkdir(values.keep, { recursive: true });
  const { addresses, names, nodePort } = await startBenchNodes(values["address-base"]);
  const env: Env = { origins: addresses.map((a) => `http://${a}:${nodePort}`), names, snapshot: benchSnapshot(addresses, nodePort) };
  const results: RowCount[] = ids.map((id) => ({ id, label: ROWS[id]!.label, requests, runs: [], errors: 0 }));
  // Each row's runs split by runtime call; the gap table shows the run with the median count: V8's tiering
  // differs from run to run (a run whose hot path stayed in the interpreter counts ~15% more), so one run can mislead.
  const itemized = new Map<string, Itemized[]>();
  const jsTables = new Map<string, string>();
  // Runs interleaved (c d c d …): whatever drifts (the bundle cache, the machine) drifts for every row.
  for (let r = 0; r < repeat; r++) {
    for (const row of results) {
      if (row.invalid !== undefined) continue;
      log(`run ${r + 1}/${repeat}, row (${row.id}), GET ${values.path}${values.browser ? " with a browser's fields" : ""}`);
      const out = await countRow(row.id, env, { warmup, requests, path: values.path, v8Flags, perfMap: values["perf-map"], ...(values.keep ? { keep: values.keep } : {}), ...(values.browser ? { fields: { ...BROWSER_FIELDS } } : {}) }, log);
      row.errors += out.errors;
      if (out.invalid !== undefined) row.invalid = out.invalid;
      if (out.itemized) itemized.set(row.id, [...(itemized.get(row.id) ?? []), out.itemized]);
      if (out.js) jsTables.set(row.id, out.js);
      if (out.count) {
        row.runs.push(out.count);
        log(`  (${row.id}) main thread ${(out.count.mainIr / requests / 1000).toFixed(1)} k Ir per request (GC ${((out.count.gcIr ?? NaN) / requests / 1000).toFixed(1)} k), all ${out.count.threads} threads ${(out.count.allIr / requests / 1000).toFixed(1)} k`);
      }
    }
  }
  console.log(`Instructions per request under callgrind (valgrind ${(await run("valgrind", ["--version"])).stdout.trim()}), GET ${values.path}${values.browser ? ` with a browser's ${Object.keys(BROWSER_FIELDS).length} fields through Cloudflare (--browser) besides Host` : " (Host alone)"}, ${warmup} warm-up then ${requests} counted sequential requests per run, one keep-alive connection; main thread = workerd's thread 1 (event loop and isolate, V8's main-thread GC included)`);
  console.log(instructionsTable(results));
  // A run left in V8's interpreter does not stand for its row (its count is shown in the table above all the same).
  const runsOf = (id: string) => {
    const all = itemized.get(id) ?? [];
    const kept = all.filter((x) => !interpreted(x));
    if (kept.length < all.length) console.log(`(${id}): ${all.length - kept.length} of ${all.length} runs left out of the item table: their JavaScript stayed in V8's interpreter (builtins over 10% of all instructions)`);
    return kept;
  };
  const c = medianRun(runsOf("c"));
  if (c) {
    for (const row of results) {
      const x = medianRun(runsOf(row.id));
      if (row.id === "c" || !x || row.invalid !== undefined || row.errors > 0) continue;
      console.log(`\n(${row.id}) − (c), main thread, item by item (each row's run with the median count; calls from JavaScript into workerd's API, inclusive, by member):`);
      console.log(gapTable(c, x, ["(c)", `(${row.id})`]));
    }
  }
  for (const r of results) {
    if (r.invalid !== undefined || r.errors > 0) continue;
    const t = jsTables.get(r.id);
    if (t) console.log(`\n(${r.id}): JavaScript functions by inclusive Ir per request (V8's perf map over the call graph, last run; JS:+ optimized, JS:^ baseline, JS:* interpreted):\n${t}`);
  }
}

main()
  .catch((err) => {
    if (err instanceof UsageError) {
      console.error(`bench:instructions: ${err.message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanupAll();
    process.exit();
  });
