// `npm run bench`: the numbers behind edgelb's claims, measured side by side
// in one run on this machine. Prints a table per section and writes
// bench/results.md and bench/results.json.
//
//   npm run bench                       # everything (~6–8 minutes on 2 cores)
//   npm run bench -- --only dataplane   # dataplane, routing, steering, failover, scale, flaps, churn, gate, gateway, convergence (comma-separated)
//   npm run bench -- --only dataplane --rows c,d   # only these data-plane rows (print only unless --write)
//   npm run bench -- --quick            # short smoke run; results files are not written unless --write
//   npm run bench -- --no-write         # full run, print only
//   npm run bench -- --render           # regenerate results.md from results.json, measure nothing
// A partial run (--only) replaces its own sections in results.json and keeps
// every other one exactly; results.md is generated from results.json alone
// (bench/lib/results-file.ts), so nothing in it is edited by hand.
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cleanupAll } from "./lib/cleanup.ts";
import { pickLoadGenerator } from "./lib/loadgen.ts";
import { choosePlacement } from "./lib/placement/index.ts";
import { mergeResults, renderResults, type ResultsFile, type RunMeta } from "./lib/results-file.ts";
import { renderText, summarySection, type Section } from "./lib/report.ts";
import { runDataPlane, withControls } from "./dataplane.ts";
import { runControlPlane } from "./control-plane.ts";
import { runRoutingInChild } from "./routing.ts";
import { runSteering } from "./steering.ts";
import { runConvergence } from "./convergence.ts";
import { runGateBench } from "./gate.ts";
import { runGateway } from "./gateway.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_JSON = path.join(HERE, "results.json");
const RESULTS_MD = path.join(HERE, "results.md");
const ALL = ["dataplane", "routing", "steering", "failover", "scale", "flaps", "churn", "gate", "gateway", "convergence"];

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    rows: { type: "string" },
    quick: { type: "boolean", default: false },
    write: { type: "boolean" },
    "no-write": { type: "boolean", default: false },
    render: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.render) {
  // Regenerates results.md from results.json (after a change to the generator), measuring nothing.
  const file = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as ResultsFile;
  await writeFile(RESULTS_MD, renderResults(file));
  process.stderr.write("bench: wrote bench/results.md from bench/results.json\n");
  process.exit(0);
}
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--only ${ALL.join(",")}] [--rows a,c,cA,c2,c2A,f,d,e,Lc,LcA,Lc2,Lf,Ld,Le] [--quick] [--write | --no-write] [--render]\n`);
  process.exit(0);
}
const only = new Set((values.only ?? ALL.join(",")).split(",").map((s) => s.trim()).filter(Boolean));
for (const s of only) {
  if (!ALL.includes(s)) {
    process.stderr.write(`bench: unknown section "${s}" (have ${ALL.join(", ")})\n`);
    process.exit(2);
  }
}
const quick = values.quick;
// A selection of rows brings the A/A control rows its targets are judged with.
const rowIds = values.rows ? withControls(new Set(values.rows.split(",").map((s) => s.trim()).filter(Boolean))) : undefined;
// A subset of rows is a look, not a result: written only when asked.
const write = !values["no-write"] && (values.write ?? (!quick && !rowIds));
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** The code measured: commit, and whether the work tree differed from it. */
function codeVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: HERE, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = git("status", "--porcelain", "--", "worker", "bench", "sync-agent", "package-lock.json") !== "";
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " + uncommitted changes" : ""}`;
  } catch {
    return "unknown (not a git work tree)";
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = os.loadavg()[0]!;
  const sections: Section[] = [];
  // Section 1: workerd on one CPU, the load generator and the rest on the other (EDGELB_BENCH_PIN=0: unpinned). Not 1g.
  const placement = choosePlacement();
  const loadgen = pickLoadGenerator(placement);
  log(`edgelb bench: ${[...only].join(", ")}${quick ? " (quick)" : ""}; load generator ${loadgen.name}; ${os.cpus().length} CPUs; ${placement.describe()}`);
  // Rounds of sections 1, 1b and 1g: 8 short rounds for every row (a 93% interval of a median: 2nd to 7th of 8).
  // The rows the per-request targets of 1 and 1g are judged on (and their A/A copies) run 16: the interval is
  // then the 5th to 12th of 16 (92.3%), about a third narrower than 8 rounds' under the same noise (12 rounds,
  // 3rd to 10th, narrow it by under a tenth), for ~3.5 more minutes of `--only dataplane,gate` (docs/benchmarks.md).
  const rounds = quick ? 2 : 8;
  const targetRounds = quick ? 3 : 16;
  // Section 1g's rows share both cores unpinned (workerd, the gates, the origins, wrk), and its A/A noise ran
  // 2-4x section 1's (throughput ±10-37%, the 1-connection p50 ±0.02-0.08 ms in session 14's runs). 28 rounds
  // (10th to 19th of 28, 91.3%) make its intervals, the targets' and the A/A's, about 28% narrower than 16
  // rounds' (0.82σ against 1.14σ under normal noise; 24 rounds give 0.97σ, 32 give 0.88σ: the rank pairs jump),
  // for ~4.5 more minutes.
  const gateRounds = quick ? 3 : 28;
  const durationS = quick ? 1 : 2;

  if (only.has("routing")) {
    log("routing cost: worker modules in a separate Node process");
    sections.push(await runRoutingInChild({ quick, log }));
  }
  if (only.has("steering")) sections.push(await runSteering({ quick, log }));
  if (only.has("gateway")) {
    log("gateway routing cost: worker modules in this process");
    sections.push(await runGateway({ quick, log }));
  }
  if (only.has("dataplane")) {
    sections.push(
      ...(await runDataPlane({
        loadgen,
        rounds,
        targetRounds,
        durationS,
        warmupS: 1,
        connections: 32,
        largeConnections: 2,
        threads: 1,
        // EDGELB_BENCH_ADDRESSES=127.121: another range (two benches on one machine must not share addresses).
        addressBase: `${process.env.EDGELB_BENCH_ADDRESSES ?? "127.18"}.50`,
        placement,
        log,
        ...(rowIds ? { rows: rowIds } : {}),
      })),
    );
    await cleanupAll(); // origins, nginx and workers from this section
  }
  if (only.has("gate")) {
    // Not pinned: a gate on a CPU of its own would stop costing throughput (bench/gate.ts UNPINNED).
    sections.push(await runGateBench({ loadgen: pickLoadGenerator(), rounds, targetRounds: gateRounds, durationS, warmupS: 1, connections: 32, threads: 1, addressBase: process.env.EDGELB_BENCH_ADDRESSES ? `${process.env.EDGELB_BENCH_ADDRESSES}.51` : "127.23.50", log }));
    await cleanupAll();
  }
  const cp = new Set(["failover", "scale", "flaps", "churn"].filter((s) => only.has(s)));
  if (cp.size) {
    sections.push(
      await runControlPlane(
        {
          failover: { trials: quick ? 3 : 20, intervalMs: 1000, timeoutMs: 500, fall: 2, rise: 2, coalesceMs: 250 },
          scale: quick ? { nodes: [Number(process.env.BENCH_SCALE ?? 500)], services: Number(process.env.BENCH_SCALE ?? 500) } : { nodes: [1000, 5000], services: 5000 },
          churn: quick
            ? { nodes: Number(process.env.BENCH_SCALE ?? 500), services: Number(process.env.BENCH_SCALE ?? 500), heartbeatsPerSec: 100, slicesPerSec: 10, seconds: 10, pairs: 2, windowSeconds: 5 }
            : { nodes: 5000, services: 5000, heartbeatsPerSec: 100, slicesPerSec: 10, seconds: 60, pairs: 7, windowSeconds: 10 },
          flaps: { count: quick ? 20 : 100, nodes: 10, intervalMs: 500, downMs: 1500, meanGapMs: 400, coalesceMs: 250, maxDelayMs: 2000, minWriteIntervalMs: 1000 },
          log,
        },
        cp,
      ),
    );
  }
  if (only.has("convergence")) {
    // Realistic KV propagation (60 s) and refresh interval; --quick shortens both to see it work.
    const base = { locations: 5, propagationMs: quick ? 5_000 : 60_000, cacheTtlS: quick ? 5 : 60, log };
    sections.push(await runConvergence({ ...base, fastCheckS: 5, control: true, addressBase: "127.22.41", title: "4a. Convergence across locations, fast path on (defaults: held checks)" }));
    await cleanupAll();
    sections.push(await runConvergence({ ...base, fastCheckS: 5, fastHoldS: 0, addressBase: "127.22.42", title: "4b. Convergence across locations, fast path polling every 5 s (EDGELB_FAST_HOLD 0)" }));
    await cleanupAll();
    sections.push(await runConvergence({ ...base, addressBase: "127.22.43", title: "4c. Convergence across locations, KV only (no generations object)" }));
  }
  await cleanupAll();

  const elapsed = (Date.now() - started) / 1000;
  const meta: RunMeta = {
    startedAt: new Date(started).toISOString(),
    elapsedS: elapsed,
    loadAverage: { start: loadAtStart, end: os.loadavg()[0]! },
    quick,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30), os: `${os.platform()} ${os.release()}` },
    loadGenerator: loadgen.name,
    code: codeVersion(),
  };
  sections.sort((a, b) => a.title.localeCompare(b.title));
  process.stdout.write("\n" + [summarySection(sections), ...sections].map(renderText).join("\n\n") + "\n");
  log(`done in ${elapsed.toFixed(0)} s`);
  if (write) {
    let previous: ResultsFile | undefined;
    try {
      previous = JSON.parse(await readFile(RESULTS_JSON, "utf8")) as ResultsFile;
    } catch {
      previous = undefined; // first run, or an unreadable file: nothing to keep
    }
    // Only this run's sections change; results.md is generated from results.json alone.
    const file = mergeResults(sections, meta, previous);
    await writeFile(RESULTS_JSON, JSON.stringify(file, null, 2) + "\n");
    await writeFile(RESULTS_MD, renderResults(file));
    log("wrote bench/results.md and bench/results.json");
  }
}

main().then(
  () => process.exit(0),
  async (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
