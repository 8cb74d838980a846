// `npm run bench`: the numbers behind edgelb's claims, measured side by side
// in one run on this machine. Prints a table per section and writes
// bench/results.md and bench/results.json.
//
//   npm run bench                       # everything (~6–8 minutes on 2 cores)
//   npm run bench -- --only dataplane   # dataplane, routing, failover, scale, flaps, churn, gate, gateway, convergence (comma-separated)
//   npm run bench -- --only dataplane --rows c,d   # only these data-plane rows (print only unless --write)
//   npm run bench -- --quick            # short smoke run; results files are not written unless --write
//   npm run bench -- --no-write         # full run, print only
// A partial run (--only) rewrites its own sections in the results files and
// keeps the others from the previous results.json, marked with their run date.
import { execFileSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cleanupAll } from "./lib/cleanup.ts";
import { pickLoadGenerator } from "./lib/loadgen.ts";
import { keptSections, type StoredResults } from "./lib/merge.ts";
import { renderMarkdown, renderText, summarySection, type Section } from "./lib/report.ts";
import { runDataPlane } from "./dataplane.ts";
import { runControlPlane } from "./control-plane.ts";
import { runRoutingInChild } from "./routing.ts";
import { runSteering } from "./steering.ts";
import { runConvergence } from "./convergence.ts";
import { runGateBench } from "./gate.ts";
import { runGateway } from "./gateway.ts";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ALL = ["dataplane", "routing", "steering", "failover", "scale", "flaps", "churn", "gate", "gateway", "convergence"];

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    rows: { type: "string" },
    quick: { type: "boolean", default: false },
    write: { type: "boolean" },
    "no-write": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--only ${ALL.join(",")}] [--rows a,c,c2,f,d,e,Lc,Lc2,Lf,Ld,Le] [--quick] [--write | --no-write]\n`);
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
const rowIds = values.rows ? new Set(values.rows.split(",").map((s) => s.trim()).filter(Boolean)) : undefined;
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
  const loadgen = pickLoadGenerator();
  log(`edgelb bench: ${[...only].join(", ")}${quick ? " (quick)" : ""}; load generator ${loadgen.name}; ${os.cpus().length} CPUs`);

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
        rounds: quick ? 2 : 5,
        durationS: quick ? 1 : 3,
        warmupS: 1,
        connections: 32,
        largeConnections: 2,
        threads: 1,
        addressBase: "127.18.50",
        log,
        ...(rowIds ? { rows: rowIds } : {}),
      })),
    );
    await cleanupAll(); // origins, nginx and workers from this section
  }
  if (only.has("gate")) {
    sections.push(await runGateBench({ loadgen, rounds: quick ? 2 : 5, durationS: quick ? 1 : 3, warmupS: 1, connections: 32, threads: 1, addressBase: "127.23.50", log }));
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
            ? { nodes: Number(process.env.BENCH_SCALE ?? 500), services: Number(process.env.BENCH_SCALE ?? 500), heartbeatsPerSec: 100, slicesPerSec: 10, seconds: 10, quietSeconds: 5 }
            : { nodes: 5000, services: 5000, heartbeatsPerSec: 100, slicesPerSec: 10, seconds: 60, quietSeconds: 20 },
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
    sections.push(await runConvergence({ ...base, fastCheckS: 5, addressBase: "127.22.41", title: "4a. Convergence across locations, fast path on (defaults)" }));
    await cleanupAll();
    sections.push(await runConvergence({ ...base, fastCheckS: 2, addressBase: "127.22.42", title: "4b. Convergence across locations, fast path checked every 2 s" }));
    await cleanupAll();
    sections.push(await runConvergence({ ...base, addressBase: "127.22.43", title: "4c. Convergence across locations, KV only (no generations object)" }));
  }
  await cleanupAll();

  const runAt = new Date(started).toISOString();
  const loadAverage = { start: loadAtStart, end: os.loadavg()[0]! };
  const code = codeVersion();
  const stamped = sections.map((sec) => ({ ...sec, runAt, loadAverage, code }));
  let previous: StoredResults | undefined;
  if (write) {
    try {
      previous = JSON.parse(await readFile(path.join(HERE, "results.json"), "utf8")) as StoredResults;
    } catch {
      previous = undefined; // first run, or an unreadable file: nothing to keep
    }
  }
  const kept = keptSections(sections, previous);
  const all = [...stamped, ...kept].sort((a, b) => a.title.localeCompare(b.title));
  sections.sort((a, b) => a.title.localeCompare(b.title));
  sections.unshift(summarySection(sections));
  all.unshift({ ...summarySection(all), runAt, loadAverage });
  const elapsed = (Date.now() - started) / 1000;
  const keptNote = kept.length
    ? ` Sections not rerun are kept from earlier runs: ${kept.map((k) => `${k.title.split(" ")[0]!.replace(".", "")} from ${k.runAt ?? "an unknown run"}${k.loadAverage ? ` (load average ${k.loadAverage.start.toFixed(1)})` : ""}`).join("; ")}.`
    : "";
  const header = [
    `# edgelb benchmark results`,
    "",
    `Run ${runAt}${kept.length ? ` (sections ${[...new Set(stamped.map((x) => x.title.split(" ")[0]!.replace(".", "")))].join(", ")})` : ""} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}; code ${code}; took ${elapsed.toFixed(0)} s; 1-minute load average ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end (anything above ~2 means other work shared the 2 cores)${quick ? " (quick mode: fewer rounds, smaller sizes)" : ""}. Load generator: ${loadgen.name}.${keptNote}`,
    "",
    "Regenerate with `npm run bench`. Every target is marked met or missed (a missed target says what limits it), or invalid when a row it needs failed its answer checks.",
    "",
  ].join("\n");
  process.stdout.write("\n" + sections.map(renderText).join("\n\n") + "\n");
  log(`done in ${elapsed.toFixed(0)} s`);
  if (write) {
    const keptFrom = (k: (typeof kept)[number]) => `not rerun: kept from the run of ${k.runAt ?? "an unknown date"}${k.code ? ` (code ${k.code})` : ""}${k.loadAverage ? ` (load average ${k.loadAverage.start.toFixed(1)} at its start)` : ""}`;
    const md = all.map((sec) => (kept.includes(sec as (typeof kept)[number]) ? renderMarkdown({ ...sec, notes: [keptFrom(sec as (typeof kept)[number]), ...sec.notes] }) : renderMarkdown(sec)));
    await writeFile(path.join(HERE, "results.md"), header + "\n" + md.join("\n"));
    await writeFile(
      path.join(HERE, "results.json"),
      JSON.stringify({ startedAt: new Date(started).toISOString(), elapsedS: elapsed, loadAverage: { start: loadAtStart, end: os.loadavg()[0] }, quick, machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version }, loadGenerator: loadgen.name, code, sections: all.map((s) => ({ title: s.title, runAt: s.runAt, loadAverage: s.loadAverage, code: "code" in s ? s.code : undefined, columns: s.columns, rows: s.rows, notes: s.notes, targets: s.targets, data: s.data })) }, null, 2) + "\n",
    );
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
