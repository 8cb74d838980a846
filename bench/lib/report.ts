// The bench's output: one table per section, printed aligned to the terminal
// and written as Markdown (bench/results.md) and JSON (bench/results.json).
/** "within noise": the threshold lies inside the run's own spread (bench/lib/verdict); counted as not met. */
export type Verdict = "met" | "missed" | "within noise" | "invalid" | "skipped" | "not measured" | "";

/** One target of the issue, for the summary table at the top. */
export interface TargetRow {
  target: string;
  result: string;
  verdict: Verdict;
  /** For a missed target: what limits it. For a skipped one: why. */
  limit?: string;
}

export interface Section {
  title: string;
  targets?: TargetRow[];
  /** Method notes printed under the table (what was measured, how). */
  notes: string[];
  columns: string[];
  rows: string[][];
  /** Raw numbers for results.json. */
  data: unknown;
}

export function verdictOf(met: boolean): Verdict {
  return met ? "met" : "missed";
}

export function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

function pad(s: string, n: number): string {
  return s + " ".repeat(Math.max(0, n - [...s].length));
}

export function renderText(s: Section): string {
  const widths = s.columns.map((c, i) => Math.max([...c].length, ...s.rows.map((r) => [...(r[i] ?? "")].length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!)).join("  ").trimEnd();
  const out = [`== ${s.title} ==`, line(s.columns), widths.map((w) => "-".repeat(w)).join("  "), ...s.rows.map(line)];
  for (const n of s.notes) out.push(`  · ${n}`);
  return out.join("\n");
}

function mdCell(s: string): string {
  return s.replace(/\|/g, "\\|");
}

export function renderMarkdown(s: Section): string {
  const out = [
    `## ${s.title}`,
    "",
    `| ${s.columns.map(mdCell).join(" | ")} |`,
    `|${s.columns.map(() => "---").join("|")}|`,
    ...s.rows.map((r) => `| ${r.map(mdCell).join(" | ")} |`),
    "",
    ...s.notes.map((n) => `- ${n}`),
    "",
  ];
  return out.join("\n");
}

/** The summary table: every target of every section, met or missed. */
export function summarySection(sections: Section[]): Section {
  const rows: string[][] = [];
  for (const s of sections) {
    for (const t of s.targets ?? []) rows.push([s.title.split(" ")[0]!.replace(".", ""), t.target, t.result, t.verdict || "–", t.limit ?? ""]);
  }
  return {
    title: "Targets",
    notes: [],
    columns: ["§", "target", "result", "verdict", "what limits it / why"],
    rows,
    data: rows.map(([section, target, result, verdict, limit]) => ({ section, target, result, verdict, limit })),
  };
}
