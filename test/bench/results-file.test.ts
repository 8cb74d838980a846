// The bench bug of issue 14: a partial run (`--only X`) must leave every other
// section of bench/results.md exactly as it was, and nothing in results.md may
// be a hand edit that the next run drops: results.md is generated from
// results.json alone (bench/lib/results-file.ts).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Section } from "../../bench/lib/report.ts";
import { mergeResults, renderResults, sectionKey, type ResultsFile, type RunMeta } from "../../bench/lib/results-file.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const meta = (startedAt: string, code = "abc1234"): RunMeta => ({
  startedAt,
  elapsedS: 42,
  loadAverage: { start: 1.5, end: 1.7 },
  quick: false,
  machine: { cpus: 2, model: "Test CPU", node: "v20.0.0" },
  loadGenerator: "wrk",
  code,
});

const section = (title: string, verdict: "met" | "missed" | "invalid", limit?: string): Section => ({
  title,
  columns: ["row", "value"],
  rows: [[`${title} row`, "1"]],
  notes: [`how ${title} was measured`],
  targets: [{ target: `${title} target`, result: "1×", verdict, ...(limit ? { limit } : {}) }],
  data: { title },
});

/** The Markdown block of one section (from its heading to the next). */
function block(md: string, key: string): string {
  const parts = md.split(/^## /m);
  const found = parts.find((p) => sectionKey(p.split("\n")[0]!) === key);
  if (!found) throw new Error(`no section ${key}`);
  return found;
}

/** The summary table's rows of one section. */
function targetRows(md: string, key: string): string[] {
  return block(md, "Targets")
    .split("\n")
    .filter((l) => l.startsWith(`| ${key} |`));
}

describe("bench results files", () => {
  const first = mergeResults(
    [
      section("1. Data plane", "missed", "what limits it"),
      section("1b. Large bodies", "met"),
      section("1g. Node gate", "missed"),
      section("2. Routing cost", "met"),
      section("4a. Convergence", "invalid", "measured with the old simulation: not evidence"),
    ],
    meta("2026-12-01T10:00:00.000Z"),
    undefined,
  );
  const before = renderResults(first);

  it("a partial run of one section keeps every other section, its targets and explanations, byte for byte", () => {
    // `--only gate` reruns 1g only: 1 and 1b share its number but not its key, and must survive.
    const after = renderResults(mergeResults([section("1g. Node gate", "met")], meta("2026-12-01T11:00:00.000Z", "def5678"), JSON.parse(JSON.stringify(first)) as ResultsFile));
    for (const key of ["1", "1b", "2", "4a"]) {
      // Kept sections gain one generated line saying which run they come from; the rest is identical.
      const kept = block(after, key).replace(/^- not rerun: kept from the run of 2026-12-01T10:00:00.000Z \(code abc1234\) \(load average 1.5 at its start\)\n/m, "");
      expect(kept, `section ${key}`).toBe(block(before, key));
      expect(targetRows(after, key), `targets of ${key}`).toEqual(targetRows(before, key));
    }
    // The hand-set verdict of 4a ("invalid", with its reason) is data in results.json: a run of another section keeps it.
    expect(targetRows(after, "4a")[0]).toContain("| invalid | measured with the old simulation: not evidence |");
    expect(targetRows(after, "1g")[0]).toContain("| met |");
    expect(after).toContain("Run 2026-12-01T11:00:00.000Z (sections 1g)");
  });

  it("a run replaces exactly the sections it ran, and twice the same run gives the same file", () => {
    const run = () => mergeResults([section("1. Data plane", "met"), section("1b. Large bodies", "missed")], meta("2026-12-01T12:00:00.000Z"), first);
    const a = run();
    expect(a.sections.map((s) => sectionKey(s.title))).toEqual(["1", "1b", "1g", "2", "4a"]);
    expect(a.sections.find((s) => sectionKey(s.title) === "1")!.targets![0]!.verdict).toBe("met");
    expect(renderResults(mergeResults([section("1. Data plane", "met"), section("1b. Large bodies", "missed")], meta("2026-12-01T12:00:00.000Z"), a))).toBe(renderResults(a));
  });

  it("the committed bench/results.md is exactly what bench/results.json generates (no hand edits)", () => {
    const json = JSON.parse(readFileSync(path.join(ROOT, "bench/results.json"), "utf8")) as ResultsFile;
    const md = readFileSync(path.join(ROOT, "bench/results.md"), "utf8");
    expect(md).toBe(renderResults(json));
  });

  it("docs/benchmarks.md quotes no results of its own (they live in bench/results.md only, so they cannot drift)", () => {
    const docs = readFileSync(path.join(ROOT, "docs/benchmarks.md"), "utf8");
    const latest = docs.slice(docs.indexOf("## Latest results"));
    expect(latest).toContain("(../bench/results.md)");
    expect(latest).not.toMatch(/\| (met|missed|invalid) \|/);
  });

  it("docs/benchmarks.md lists every bench section that --only takes", () => {
    const run = readFileSync(path.join(ROOT, "bench/run.ts"), "utf8");
    const all = JSON.parse(/const ALL = (\[[^\]]*\])/.exec(run)![1]!) as string[];
    const docs = readFileSync(path.join(ROOT, "docs/benchmarks.md"), "utf8");
    const listed = /# sections: ([a-z, ]+);/.exec(docs)![1]!.split(",").map((s) => s.trim());
    expect(listed.sort()).toEqual([...all].sort());
  });
});
