// bench/results.json is the record; bench/results.md is generated from it and
// from nothing else (renderResults), so no part of the Markdown is edited by
// hand and a partial run (`--only X`) can only replace the sections it ran:
// every other section, with its targets, notes and run date, comes through
// byte for byte. Explanations belong in a section's notes or target rows in
// results.json (written by the section's generator), never in results.md. Pure.
import { renderMarkdown, summarySection, type Section } from "./report.ts";
import type { StoredResults, StoredSection } from "./merge.ts";

export interface RunMeta {
  startedAt: string;
  elapsedS: number;
  loadAverage: { start: number; end?: number };
  quick: boolean;
  machine: { cpus: number; model?: string; node: string; memGiB?: number; os?: string };
  loadGenerator: string;
  code: string;
}

export type ResultsFile = RunMeta & { sections: StoredSection[] };

/** "1b. Large bodies" → "1b": a section's identity across runs. */
export function sectionKey(title: string): string {
  return title.split(" ")[0]!.replace(/\.$/, "");
}

/**
 * The results file after a run: this run's sections (stamped with its date,
 * load and code) replace those with the same key; every other section of the
 * previous file is kept exactly as it was. The Targets summary is rebuilt.
 */
export function mergeResults(fresh: readonly Section[], meta: RunMeta, previous: Partial<ResultsFile> | StoredResults | undefined): ResultsFile {
  const stamped: StoredSection[] = fresh.map((s) => ({
    title: s.title,
    runAt: meta.startedAt,
    loadAverage: meta.loadAverage,
    code: meta.code,
    columns: s.columns,
    rows: s.rows,
    notes: s.notes,
    ...(s.targets ? { targets: s.targets } : {}),
    data: s.data,
  }));
  const rerun = new Set(stamped.map((s) => sectionKey(s.title)));
  const kept = (previous?.sections ?? []).filter((s) => s.title !== "Targets" && !rerun.has(sectionKey(s.title)));
  const sections = [...stamped, ...kept].sort((a, b) => a.title.localeCompare(b.title));
  return { ...meta, sections };
}

/** results.md, from results.json alone. */
export function renderResults(file: ResultsFile): string {
  const sections = file.sections.filter((s) => s.title !== "Targets");
  const fresh = sections.filter((s) => s.runAt === file.startedAt);
  const kept = sections.filter((s) => s.runAt !== file.startedAt);
  const keyList = (list: StoredSection[]) => [...new Set(list.map((s) => sectionKey(s.title)))].join(", ");
  const m = file.machine;
  const keptNote = kept.length
    ? ` Sections not rerun are kept from earlier runs: ${kept.map((k) => `${sectionKey(k.title)} from ${k.runAt ?? "an unknown run"}${k.loadAverage ? ` (load average ${k.loadAverage.start.toFixed(1)})` : ""}`).join("; ")}.`
    : "";
  const header = [
    `# edgelb benchmark results`,
    "",
    `Run ${file.startedAt}${kept.length ? ` (sections ${keyList(fresh)})` : ""} on ${m.cpus} × ${m.model ?? "?"}${m.memGiB ? `, ${m.memGiB} GiB` : ""}, Node ${m.node}${m.os ? `, ${m.os}` : ""}; code ${file.code}; took ${file.elapsedS.toFixed(0)} s; 1-minute load average ${file.loadAverage.start.toFixed(1)} at the start${file.loadAverage.end !== undefined ? `, ${file.loadAverage.end.toFixed(1)} at the end` : ""} (anything above ~2 means other work shared the 2 cores)${file.quick ? " (quick mode: fewer rounds, smaller sizes)" : ""}. Load generator: ${file.loadGenerator}.${keptNote}`,
    "",
    "Generated from bench/results.json by `npm run bench` (or `npm run bench -- --render`); do not edit by hand. Every target is marked met or missed (a missed target says what limits it), within noise (not met: the run's own spread reaches the threshold; sections 1 and 1g say how that is decided), or invalid when a row it needs failed its answer checks.",
    "",
  ].join("\n");
  const asSection = (s: StoredSection): Section => ({ title: s.title, columns: s.columns, rows: s.rows, notes: s.notes, data: s.data, ...(s.targets ? { targets: s.targets } : {}) });
  const keptFrom = (k: StoredSection) =>
    `not rerun: kept from the run of ${k.runAt ?? "an unknown date"}${k.code ? ` (code ${k.code})` : ""}${k.loadAverage ? ` (load average ${k.loadAverage.start.toFixed(1)} at its start)` : ""}`;
  const summary = summarySection(sections.map(asSection));
  const body = [
    renderMarkdown(summary),
    ...sections.map((s) => renderMarkdown(s.runAt === file.startedAt ? asSection(s) : { ...asSection(s), notes: [keptFrom(s), ...s.notes] })),
  ];
  return header + "\n" + body.join("\n");
}
