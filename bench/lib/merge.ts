// `--only` reruns some sections; the results files keep the others from the
// previous results.json, each marked with the run it came from, so a partial
// run never wipes numbers it did not remeasure. Pure.
import type { Section, TargetRow, Verdict } from "./report.ts";

export interface StoredSection {
  title: string;
  columns: string[];
  rows: string[][];
  notes: string[];
  data: unknown;
  targets?: TargetRow[];
  /** When the section was measured, and the load average then. */
  runAt?: string;
  loadAverage?: { start: number; end?: number };
  /** The commit measured (bench/run.ts codeVersion). */
  code?: string;
}

export interface StoredResults {
  startedAt?: string;
  loadAverage?: { start: number; end?: number };
  sections?: StoredSection[];
}

/** "1b. Large bodies" → "1": sections that share a number are rerun together. */
export function sectionNumber(title: string): string {
  return /^(\d+)/.exec(title)?.[1] ?? title;
}

/** The previous run's sections that this run did not redo, with their targets. */
export function keptSections(fresh: readonly Section[], previous: StoredResults | undefined): (Section & { runAt?: string; loadAverage?: { start: number; end?: number }; code?: string })[] {
  if (!previous?.sections) return [];
  const rerun = new Set(fresh.map((s) => sectionNumber(s.title)));
  const summary = previous.sections.find((s) => s.title === "Targets");
  return previous.sections
    .filter((s) => s.title !== "Targets" && !rerun.has(sectionNumber(s.title)))
    .map((s) => {
      const key = s.title.split(" ")[0]!.replace(".", "");
      // Older files have no per-section targets: take them from the summary table.
      const targets =
        s.targets ??
        (summary?.rows ?? [])
          .filter((r) => r[0] === key)
          .map(([, target, result, verdict, limit]) => ({ target: target ?? "", result: result ?? "", verdict: (verdict === "–" ? "" : verdict) as Verdict, ...(limit ? { limit } : {}) }));
      const runAt = s.runAt ?? previous.startedAt;
      const loadAverage = s.loadAverage ?? previous.loadAverage;
      return { title: s.title, columns: s.columns, rows: s.rows, notes: s.notes, data: s.data, targets, ...(runAt ? { runAt } : {}), ...(loadAverage ? { loadAverage } : {}), ...(s.code ? { code: s.code } : {}) };
    });
}
