// What bench/instructions.ts reads of callgrind's output, and the table it prints. Pure: no
// process, no file system (the caller lists and reads the files), tested on its own
// (test/bench/callgrind.test.ts).
//
// callgrind (valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=<base>.%p)
// writes one file per thread and dump: `<base>.<pid>.<dump>-<thread>` for a dump asked with
// `callgrind_control --dump`, `<base>.<pid>-<thread>` for the one at exit. Threads are numbered
// by valgrind in creation order: thread 1 is the process's first thread, which in `workerd serve`
// runs the event loop and the isolate (every request's JavaScript, the runtime's C++ for it and
// V8's main-thread garbage collection); the others are V8's platform workers (concurrent GC
// marking, compilation) and workerd's own helpers.

/** One dump file's head: which thread, why it was written, and the total of each event. */
export interface CallgrindTotals {
  thread: number | undefined;
  /** "dump <label>" or "Program termination". */
  trigger: string | undefined;
  events: string[];
  /** The `summary:` line: every event counted in this part (callgrind's own total, not a sum of cost lines). */
  summary: Record<string, number>;
}

/** Reads the head of a callgrind output file (format version 1): events, summary, thread, trigger. */
export function parseCallgrindTotals(text: string): CallgrindTotals {
  let events: string[] | undefined;
  let summary: number[] | undefined;
  let thread: number | undefined;
  let trigger: string | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("events:")) events = line.slice(7).trim().split(/\s+/);
    else if (line.startsWith("summary:")) summary = line.slice(8).trim().split(/\s+/).map(Number);
    else if (line.startsWith("thread:")) thread = Number(line.slice(7).trim());
    else if (line.startsWith("desc: Trigger:")) trigger = line.slice(14).trim();
  }
  if (events === undefined || summary === undefined) throw new Error("not a callgrind output file: no events: or summary: line");
  if (summary.length > events.length || summary.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new Error(`callgrind summary does not match its events (${events.join(" ")}): ${summary.join(" ")}`);
  }
  // Trailing events with no count are zero (the format allows the shorter line).
  return { thread: Number.isSafeInteger(thread) ? thread : undefined, trigger, events, summary: Object.fromEntries(events.map((e, i) => [e, summary![i] ?? 0])) };
}

/**
 * The files of one dump among a directory's names: `<base>.<pid>.<dump>-<thread>`, by thread.
 * `base` is the file name part of --callgrind-out-file before ".%p".
 */
export function dumpFiles(names: readonly string[], base: string, pid: number, dump: number): Map<number, string> {
  const prefix = `${base}.${pid}.${dump}-`;
  const out = new Map<number, string>();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const thread = name.slice(prefix.length);
    if (/^\d+$/.test(thread)) out.set(Number(thread), name);
  }
  return out;
}

/** The threads of one dump, as counted: the main thread (1) and every thread together. */
export interface DumpCount {
  /** Ir of thread 1 (workerd's event loop and isolate). */
  mainIr: number;
  /** Ir of every thread of the process. */
  allIr: number;
  threads: number;
  /** Ir of garbage collection on the main thread (gcIr of its call graph), when read. */
  gcIr?: number;
}

/** Sums a dump's per-thread totals; throws when thread 1 is missing (the count would be meaningless). */
export function countDump(parts: readonly CallgrindTotals[]): DumpCount {
  const main = parts.find((p) => p.thread === 1);
  if (!main) throw new Error(`callgrind dump has no part for thread 1 (threads: ${parts.map((p) => p.thread).join(", ") || "none"})`);
  const ir = (p: CallgrindTotals) => {
    const v = p.summary.Ir;
    if (v === undefined) throw new Error(`callgrind part of thread ${p.thread} counts no Ir (events: ${p.events.join(" ")})`);
    return v;
  };
  return { mainIr: ir(main), allIr: parts.reduce((a, p) => a + ir(p), 0), threads: parts.length };
}

/** One row's measurement: instructions over `requests` counted requests (all verified), per run. */
export interface RowCount {
  id: string;
  label: string;
  requests: number;
  /** Per run (--repeat): main thread's and all threads' Ir over the counted requests. */
  runs: DumpCount[];
  /** Counted requests that failed verification (status, origin): a row with any is invalid. */
  errors: number;
  /** Why a row is invalid, when it is. */
  invalid?: string;
}

const k = (x: number) => `${(x / 1000).toFixed(1)} k`;

/** Instructions per request of a run: Ir ÷ requests. */
export function perRequest(ir: number, requests: number): number {
  if (!(requests > 0)) throw new Error(`requests must be positive, got ${requests}`);
  return ir / requests;
}

/** "471.2 k" for one run, "471.2 k (470.8–473.0 k)" median and range for several. Pure. */
function cell(values: number[]): string {
  if (values.length === 0) return "–";
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return sorted.length === 1 ? k(mid) : `${k(mid)} (${(sorted[0]! / 1000).toFixed(1)}–${k(sorted[sorted.length - 1]!)})`;
}

/**
 * The median of a row's main-thread Ir per request over its runs (without its GC: `withoutGc`, undefined when
 * a run's GC was not read); undefined for an invalid or empty row.
 */
export function rowMedian(r: RowCount, withoutGc = false): number | undefined {
  if (r.invalid !== undefined || r.errors > 0 || r.runs.length === 0) return undefined;
  if (withoutGc && r.runs.some((x) => x.gcIr === undefined)) return undefined;
  const xs = r.runs.map((x) => perRequest(withoutGc ? x.mainIr - x.gcIr! : x.mainIr, r.requests)).sort((a, b) => a - b);
  return xs.length % 2 ? xs[(xs.length - 1) / 2]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
}

/**
 * The table bench/instructions.ts prints: per row, main-thread and all-thread instructions per
 * request (median and range over runs), errors and validity; then each row's difference to (c)
 * when both are valid. An invalid row shows no numbers. Pure.
 */
export function instructionsTable(rows: readonly RowCount[]): string {
  const lines: string[][] = [["row", "Ir/request, main thread", "of which GC", "main thread without GC", "all threads", "runs × requests", "errors", "valid"]];
  const gcOf = (r: RowCount) => (r.runs.every((x) => x.gcIr !== undefined) ? r.runs.map((x) => perRequest(x.gcIr!, r.requests)) : []);
  const noGcOf = (r: RowCount) => (r.runs.every((x) => x.gcIr !== undefined) ? r.runs.map((x) => perRequest(x.mainIr - x.gcIr!, r.requests)) : []);
  for (const r of rows) {
    const ok = r.invalid === undefined && r.errors === 0;
    lines.push([
      r.label,
      ok ? cell(r.runs.map((x) => perRequest(x.mainIr, r.requests))) : "–",
      ok ? cell(gcOf(r)) : "–",
      ok ? cell(noGcOf(r)) : "–",
      ok ? cell(r.runs.map((x) => perRequest(x.allIr, r.requests))) : "–",
      `${r.runs.length} × ${r.requests}`,
      String(r.errors),
      ok ? "valid" : `INVALID: ${r.invalid ?? `${r.errors} failed requests`}`,
    ]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const text = lines.map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  text.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const c = rows.find((r) => r.id === "c");
  const cm = c ? rowMedian(c) : undefined;
  const cn = c ? rowMedian(c, true) : undefined;
  for (const r of rows) {
    if (r === c || !c) continue;
    const m = rowMedian(r);
    const n = rowMedian(r, true);
    text.push(
      m === undefined || cm === undefined
        ? `(${r.id}) − (c): not measured (a row is invalid or missing)`
        : `(${r.id}) − (c): ${k(m - cm)} instructions per request, main thread (${(m / cm).toFixed(2)}×)` +
            (n !== undefined && cn !== undefined ? `; without GC ${k(n - cn)} (${(n / cn).toFixed(2)}×)` : ""),
    );
  }
  return text.join("\n");
}

/** A dump's call graph, by function name: self cost and the inclusive cost of each caller → callee edge (Ir). */
export interface CallGraph {
  self: Map<string, number>;
  /** caller → callee → inclusive Ir of the calls along that edge. */
  calls: Map<string, Map<string, number>>;
  /** caller → callee → how many calls that edge made (callgrind's `calls=` count). */
  callCounts?: Map<string, Map<string, number>>;
}

/**
 * Reads a callgrind dump's cost lines (event Ir first, as bench/instructions.ts counts it): each function's
 * self cost and each call edge's inclusive cost. Handles name compression ("(id) name" then "(id)") and any
 * number of position columns; file, object and jump lines are skipped.
 */
export function parseCallGraph(text: string): CallGraph {
  const names = new Map<string, string>();
  const resolve = (spec: string): string => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec.trim());
    if (!m) return spec.trim();
    if (m[2] !== undefined) names.set(m[1]!, m[2]);
    return names.get(m[1]!) ?? `(${m[1]})`;
  };
  const self = new Map<string, number>();
  const calls = new Map<string, Map<string, number>>();
  const callCounts = new Map<string, Map<string, number>>();
  let positions = 1;
  let count = 0;
  let fn = "";
  let callee = "";
  let inCall = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("positions:")) positions = line.slice(10).trim().split(/\s+/).length;
    else if (line.startsWith("fn=")) fn = resolve(line.slice(3));
    else if (line.startsWith("cfn=")) callee = resolve(line.slice(4));
    else if (line.startsWith("calls=")) {
      inCall = true;
      count = Number(line.slice(6).trim().split(/\s+/)[0]) || 0;
    }
    else if (/^[0-9+\-*]/.test(line)) {
      const ir = Number(line.trim().split(/\s+/)[positions] ?? 0);
      if (!Number.isFinite(ir)) continue;
      if (inCall) {
        let m = calls.get(fn);
        if (!m) calls.set(fn, (m = new Map()));
        m.set(callee, (m.get(callee) ?? 0) + ir);
        let n = callCounts.get(fn);
        if (!n) callCounts.set(fn, (n = new Map()));
        n.set(callee, (n.get(callee) ?? 0) + count);
        inCall = false;
      } else self.set(fn, (self.get(fn) ?? 0) + ir);
    }
  }
  return { self, calls, callCounts };
}

/**
 * Inclusive Ir of the functions `match` selects: their calls from functions it does not select (so a selected
 * function called from another is not counted twice), plus the self cost of a selected function nothing
 * selected calls (a root). Pure.
 */
export function inclusiveOf(g: CallGraph, match: (fn: string) => boolean): number {
  let total = 0;
  const called = new Set<string>();
  for (const [caller, m] of g.calls) {
    for (const [callee, ir] of m) {
      if (!match(callee)) continue;
      called.add(callee);
      if (!match(caller)) total += ir;
    }
  }
  for (const [fn, ir] of g.self) if (match(fn) && !called.has(fn)) total += ir;
  return total;
}

/**
 * V8's and cppgc's garbage collection, matched anywhere in a function's name (so the lambdas and templates a
 * collection runs through count as inside it, and none is counted twice): collections (scavenges and
 * mark-compacts, started on allocation or by a task) and the incremental marking and sweeping steps between them;
 * heap::base::Stack (the conservative stack scan, entered from a collection through an assembly trampoline).
 */
export const GC_ENTRIES =
  /v8::internal::(Heap::CollectGarbage|HeapAllocator::CollectGarbage|Heap::CollectAllGarbage|Heap::CollectAllAvailableGarbage|Heap::Scavenge\(|Heap::FinalizeIncrementalMarkingAtomically|Heap::PerformGarbageCollection|IncrementalMarking::|MinorGCJob::|ScavengeJob::|MemoryReducer::|IncrementalMarkingJob::|Sweeper::|MajorMarkCompactCollector::|MarkCompactCollector::|MinorMarkSweepCollector::|ScavengerCollector::)|cppgc::internal::(MarkerBase::|Sweeper::|Heap::CollectGarbage|Heap::FinalizeGarbageCollection|HeapBase::Terminate)|heap::base::Stack::|PushAllRegistersAndIterateStack/;

/**
 * Ir of garbage collection in a dump's call graph, counted once: every function's self cost, times the share of
 * it spent for garbage collection. A GC_ENTRIES function's share is 1; any other function's is the share of its
 * incoming inclusive cost that comes from callers working for GC (so memcpy called by a scavenge and by
 * JavaScript is split between them, and a frame between two GC frames, as V8's allocation retry is, stays in GC).
 * Summing self costs cannot count a nested collection twice, which adding the inclusive cost of every edge into
 * GC_ENTRIES from an unmatched caller did (rv12 1). Callers' shares are settled by iterating to a fixed point
 * (recursion). Pure.
 */
export function gcIr(g: CallGraph): number {
  const callers = new Map<string, [string, number][]>();
  for (const [caller, m] of g.calls) for (const [callee, ir] of m) if (caller !== callee) (callers.get(callee) ?? callers.set(callee, []).get(callee)!).push([caller, ir]);
  const fns = new Set<string>([...g.self.keys(), ...callers.keys()]);
  const share = new Map<string, number>();
  for (const fn of fns) share.set(fn, GC_ENTRIES.test(fn) ? 1 : 0);
  for (let round = 0; round < 50; round++) {
    let moved = 0;
    for (const fn of fns) {
      if (GC_ENTRIES.test(fn)) continue;
      const from = callers.get(fn);
      if (!from) continue;
      let all = 0;
      let gc = 0;
      for (const [caller, ir] of from) {
        all += ir;
        gc += ir * (share.get(caller) ?? 0);
      }
      const next = all > 0 ? gc / all : 0;
      moved = Math.max(moved, Math.abs(next - share.get(fn)!));
      share.set(fn, next);
    }
    if (moved < 1e-9) break;
  }
  let total = 0;
  for (const [fn, ir] of g.self) total += ir * (share.get(fn) ?? 0);
  return Math.round(total);
}

/** One JIT code object of V8's perf map (`--perf-basic-prof`: /tmp/perf-<pid>.map, "start size name" in hex). */
export interface PerfMapEntry {
  start: number;
  size: number;
  name: string;
}

/** Reads a V8 perf map, sorted by address. Pure. */
export function parsePerfMap(text: string): PerfMapEntry[] {
  const out: PerfMapEntry[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.*)$/.exec(line.trim());
    if (m) out.push({ start: parseInt(m[1]!, 16), size: parseInt(m[2]!, 16), name: m[3]! });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The name of the code object holding `address`, or undefined. Pure. */
export function perfName(map: readonly PerfMapEntry[], address: number): string | undefined {
  let lo = 0;
  let hi = map.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid]!.start <= address) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  const e = map[best];
  return e && address < e.start + e.size ? e.name : undefined;
}

/**
 * Inclusive Ir per JavaScript function (callgrind names JIT code by address; the perf map names it), from the
 * calls into it from any other function; largest first. A function's calls into itself are not counted again. Pure.
 */
export function jsInclusive(g: CallGraph, map: readonly PerfMapEntry[]): { fn: string; ir: number }[] {
  const named = (fn: string) => (/^0x[0-9a-f]+$/i.test(fn) ? (perfName(map, parseInt(fn, 16)) ?? "(JIT code not in the map)") : fn);
  const by = new Map<string, number>();
  for (const [caller, m] of g.calls) {
    const from = named(caller);
    for (const [callee, ir] of m) {
      if (!/^0x[0-9a-f]+$/i.test(callee)) continue;
      const to = named(callee);
      if (to !== from) by.set(to, (by.get(to) ?? 0) + ir);
    }
  }
  return [...by].map(([fn, ir]) => ({ fn, ir })).sort((a, b) => b.ir - a.ir);
}

/** What code a function's own instructions ran, for a partition of the whole (selfByKind). */
const KINDS: [string, (fn: string, mapped: string | undefined) => boolean][] = [
  ["JavaScript (JIT code: edgelb's, the runtime's JS)", (fn, m) => m?.startsWith("JS:") === true],
  ["V8 builtins, stubs and regexp code", (fn, m) => fn.startsWith("Builtins_") || (m !== undefined && !m.startsWith("JS:"))],
  ["V8 C++ (runtime functions, IC misses, GC, the API)", (fn) => /^(_ZN2v8|v8::|cppgc::|heap::|(?:\S+ )?v8::)/.test(fn) || /^(?:[\w:<>*&]+ )?(v8|cppgc|heap)::/.test(fn)],
  ["workerd, jsg and kj C++", (fn) => /(^|[ (<])(workerd|kj|capnp)::|^_Z[NZ]+\d*(workerd|kj|capnp)|^_ZN7workerd|^_ZN2kj/.test(fn)],
  ["allocator (tcmalloc, new, delete)", (fn) => /tcmalloc|^operator (new|delete)|absl::/.test(fn)],
  ["libc (memcpy, strings, syscalls)", (fn) => /^(__|mem|str|clock_gettime|epoll|read|write|send|recv|pthread|std::)/.test(fn)],
];

/**
 * The main thread's own instructions (self cost, so the parts sum exactly to the whole) by the kind of code that
 * ran them, JIT code named with the perf map; whatever no kind claims is "unattributed". Pure.
 */
export function selfByKind(g: CallGraph, map: readonly PerfMapEntry[]): { kind: string; ir: number }[] {
  const by = new Map<string, number>();
  for (const [fn, ir] of g.self) {
    const mapped = /^0x[0-9a-f]+$/i.test(fn) ? perfName(map, parseInt(fn, 16)) : undefined;
    const kind = KINDS.find(([, test]) => test(fn, mapped))?.[0] ?? "unattributed (other code, JIT code not in the map)";
    by.set(kind, (by.get(kind) ?? 0) + ir);
  }
  return [...by].map(([kind, ir]) => ({ kind, ir })).sort((a, b) => b.ir - a.ir);
}

/**
 * The JavaScript functions' table: the top `n` by inclusive Ir per request (they nest: each includes what it
 * calls, and an async function's resumptions count under it, not under its caller), then the main thread's own
 * instructions by kind of code, which sum to the whole (selfByKind). Pure.
 */
export function jsTable(fns: readonly { fn: string; ir: number }[], kinds: readonly { kind: string; ir: number }[], mainIr: number, requests: number, n = 25): string {
  const lines = fns.slice(0, n).map((f) => `${k(f.ir / requests).padStart(9)}  ${f.fn}`);
  lines.push("  the main thread's own instructions by kind of code (these sum to the whole):");
  for (const x of kinds) lines.push(`${k(x.ir / requests).padStart(9)}  ${x.kind}`);
  lines.push(`${k(mainIr / requests).padStart(9)}  main thread, all of it`);
  return lines.join("\n");
}
