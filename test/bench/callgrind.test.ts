// bench/instructions.ts's reading of callgrind's files and its table (bench/lib/callgrind.ts).
import { describe, expect, it } from "vitest";
import { countDump, dumpFiles, GC_ENTRIES, gcIr, inclusiveOf, instructionsTable, jsInclusive, jsTable, parseCallGraph, parseCallgrindTotals, parsePerfMap, perfName, perRequest, rowMedian, selfByKind, type RowCount } from "../../bench/lib/callgrind.ts";

/** The head of a dump as callgrind 3.19 writes it (abridged body). */
const dump = (thread: number, summary: string, events = "Ir") => `# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 12042
cmd:  /x/workerd serve /tmp/config.capnp --control-fd=3
part: 1
thread: ${thread}

desc: I1 cache: 
desc: Timerange: Basic block 1 - 99
desc: Trigger: dump counted

positions: line
events: ${events}
summary: ${summary}

ob=(1) /x/workerd
fl=(1) ???
fn=(1) v8::internal::JSPromise::TriggerPromiseReactions
0 12
totals: ${summary}
`;

describe("parseCallgrindTotals", () => {
  it("reads the thread, the trigger and the summary of each event", () => {
    const t = parseCallgrindTotals(dump(1, "74895427"));
    expect(t).toEqual({ thread: 1, trigger: "dump counted", events: ["Ir"], summary: { Ir: 74895427 } });
  });

  it("takes the summary line, not the totals line (callgrind's own count, not a sum of the cost lines dumped)", () => {
    const text = dump(1, "100").replace("totals: 100", "totals: 137");
    expect(parseCallgrindTotals(text).summary.Ir).toBe(100);
  });

  it("reads several events, a shorter summary meaning zeros", () => {
    expect(parseCallgrindTotals(dump(2, "10 3", "Ir Dr Dw")).summary).toEqual({ Ir: 10, Dr: 3, Dw: 0 });
  });

  it("refuses a file without events or summary, and counts that are not whole numbers", () => {
    expect(() => parseCallgrindTotals("version: 1\nthread: 1\n")).toThrow(/not a callgrind output file/);
    expect(() => parseCallgrindTotals(dump(1, "12.5"))).toThrow(/does not match/);
    expect(() => parseCallgrindTotals(dump(1, "1 2", "Ir"))).toThrow(/does not match/);
  });
});

describe("dumpFiles", () => {
  it("finds one dump's files by thread, not the exit dump's or another pid's or dump's", () => {
    const names = ["callgrind.out.12042", "callgrind.out.12042-01", "callgrind.out.12042.1-01", "callgrind.out.12042.1-02", "callgrind.out.12042.1-04", "callgrind.out.12042.2-01", "callgrind.out.999.1-01", "callgrind.out.12042.1-01.tmp"];
    expect([...dumpFiles(names, "callgrind.out", 12042, 1)]).toEqual([
      [1, "callgrind.out.12042.1-01"],
      [2, "callgrind.out.12042.1-02"],
      [4, "callgrind.out.12042.1-04"],
    ]);
  });
});

describe("countDump", () => {
  it("gives thread 1's Ir and all threads' sum", () => {
    const parts = [parseCallgrindTotals(dump(1, "1000")), parseCallgrindTotals(dump(2, "30")), parseCallgrindTotals(dump(4, "7"))];
    expect(countDump(parts)).toEqual({ mainIr: 1000, allIr: 1037, threads: 3 });
  });

  it("refuses a dump without thread 1 or without Ir", () => {
    expect(() => countDump([parseCallgrindTotals(dump(2, "30"))])).toThrow(/no part for thread 1/);
    expect(() => countDump([parseCallgrindTotals(dump(1, "30", "Dr"))])).toThrow(/counts no Ir/);
  });
});

describe("per request and the table", () => {
  const row = (id: string, perReq: number[], extra: Partial<RowCount> = {}): RowCount => ({
    id,
    label: `(${id}) row`,
    requests: 1000,
    runs: perReq.map((x) => ({ mainIr: x * 1000, allIr: x * 1000 + 5000, threads: 3 })),
    errors: 0,
    ...extra,
  });

  it("divides by the counted requests and refuses none", () => {
    expect(perRequest(478_200_000, 1000)).toBe(478_200);
    expect(() => perRequest(1, 0)).toThrow(/positive/);
  });

  it("takes the median of a row's runs", () => {
    expect(rowMedian(row("d", [470_000, 480_000, 472_000]))).toBe(472_000);
    expect(rowMedian(row("d", [470_000, 480_000]))).toBe(475_000);
  });

  it("prints each row's median and range and (d) − (c) from the medians", () => {
    const text = instructionsTable([row("c", [338_400, 339_000, 338_000]), row("d", [478_200, 470_000, 472_000])]);
    expect(text).toContain("338.4 k (338.0–339.0 k)");
    expect(text).toContain("472.0 k (470.0–478.2 k)");
    expect(text).toContain("(d) − (c): 133.6 k instructions per request, main thread (1.39×)");
  });

  it("shows no number for an invalid row and no difference against it", () => {
    const text = instructionsTable([row("c", [338_400]), row("d", [400_000], { errors: 2 })]);
    expect(text).not.toContain("400.0 k");
    expect(text).toContain("INVALID: 2 failed requests");
    expect(text).toContain("(d) − (c): not measured");
    expect(rowMedian(row("d", [400_000], { invalid: "round-robin did not reach node-3" }))).toBeUndefined();
  });
});

/** A dump body with a call graph, names compressed as callgrind writes them (positions: line). */
const GRAPH = `positions: line
events: Ir
summary: 850
fn=(1) main
10 100
cfn=(2) v8::internal::HeapAllocator::CollectGarbage(v8::internal::AllocationType)
calls=1 0
12 300
cfn=(3) js_function
calls=4 0
+2 200
fn=(2)
0 20
cfn=(4) v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)
calls=1 0
* 280
fn=(4)
0 200
cfn=(5) void heap::base::Stack::SetMarkerAndCallbackImpl<v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)::$_1>(void*)
calls=1 0
0 80
fn=(5)
0 80
fn=(3)
0 150
cfn=(6) memcpy
calls=2 0
0 50
fn=(6)
0 50
fn=(7) v8::internal::MinorGCJob::Task::RunInternal()
0 250
totals: 850
`;

describe("the call graph and garbage collection", () => {
  it("reads self costs and each edge's inclusive cost, through compressed names and relative positions", () => {
    const g = parseCallGraph(GRAPH);
    expect(g.self.get("main")).toBe(100);
    expect(g.self.get("js_function")).toBe(150);
    expect(g.calls.get("main")?.get("js_function")).toBe(200);
    expect(g.calls.get("v8::internal::HeapAllocator::CollectGarbage(v8::internal::AllocationType)")?.get("v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)")).toBe(280);
    expect([...g.self.values()].reduce((a, b) => a + b, 0)).toBe(850);
  });

  it("counts a selection's calls from outside it once, nested entries not again, and a root's self cost", () => {
    const g = parseCallGraph(GRAPH);
    // main → HeapAllocator::CollectGarbage 300 (its nested Heap::CollectGarbage and stack scan inside it), plus the
    // task that nothing in the dump calls (a root: its self cost, 250).
    expect(gcIr(g)).toBe(550);
    expect(inclusiveOf(g, (fn) => fn === "js_function")).toBe(200);
    expect(inclusiveOf(g, (fn) => fn === "memcpy")).toBe(50);
  });

  it("counts a collection once when V8 puts an unmatched frame between two GC frames, and splits a shared function by its callers (rv12 1)", () => {
    // V8's chain in workerd's dumps: MinorGCJob's task → CollectGarbageWithRetry → HeapAllocator::RetryCustomAllocate
    // (not a GC name) → CollectGarbageAndRetryAllocation. Adding every edge into a GC name from an unmatched caller
    // counted the inner collection (1,000) twice; memcpy (100 self) is called for 300 by GC and for 100 by JavaScript.
    const g = parseCallGraph(`positions: line
events: Ir
fn=(1) main
0 10
cfn=(2) v8::internal::MinorGCJob::Task::RunInternal()
calls=1 0
0 1110
cfn=(6) js_function
calls=1 0
0 125
fn=(2)
0 10
cfn=(3) v8::internal::Heap::CollectGarbageWithRetry(v8::internal::AllocationSpace)
calls=1 0
0 1100
fn=(3)
0 50
cfn=(4) v8::internal::HeapAllocator::RetryCustomAllocate(int)
calls=1 0
0 1050
fn=(4)
0 50
cfn=(5) v8::internal::HeapAllocator::CollectGarbageAndRetryAllocation(v8::internal::AllocationType)
calls=1 0
0 1000
fn=(5)
0 925
cfn=(7) memcpy
calls=3 0
0 75
fn=(6)
0 100
cfn=(7)
calls=1 0
0 25
fn=(7)
0 100
`);
    const old = inclusiveOf(g, (fn) => GC_ENTRIES.test(fn));
    expect(old).toBe(1110 + 1000);
    // 10 + 50 + 50 + 925 of GC frames, and memcpy's 100 split 75 : 25.
    expect(gcIr(g)).toBe(10 + 50 + 50 + 925 + 75);
  });
});

describe("JavaScript functions from V8's perf map", () => {
  const MAP = "3997000 3f8 Builtin:DeoptimizationEntry_Eager\n63999f00 200 JS:+'fetch worker.js:18407:8\n63998000 100 JS:+'clientEdit worker.js:10616:20\nnot a line\n";
  // JIT code is named by address; a call from fetch() into clientEdit at an address inside its code object, and
  // one from fetch() into itself (a loop's back edge), which is not counted again.
  const GRAPH = `positions: line
events: Ir
fn=(1) workerd::jsg::Lock::runInContext
cfn=(2) 0x0000000063999fc0
calls=2 0
0 9000
fn=(2)
0 1000
cfn=(3) 0x0000000063998010
calls=2 0
0 3000
cfn=(4) 0x0000000063999f40
calls=1 0
0 500
cfn=(5) workerd::api::Headers::get(int)
calls=2 0
0 2000
`;

  it("reads the map and finds the code object holding an address", () => {
    const map = parsePerfMap(MAP);
    expect(map.map((e) => e.name)).toEqual(["Builtin:DeoptimizationEntry_Eager", "JS:+'clientEdit worker.js:10616:20", "JS:+'fetch worker.js:18407:8"]);
    expect(perfName(map, 0x63998010)).toBe("JS:+'clientEdit worker.js:10616:20");
    expect(perfName(map, 0x63998100)).toBeUndefined();
    expect(perfName(map, 0x63999fc0)).toBe("JS:+'fetch worker.js:18407:8");
  });

  it("gives each function's inclusive count from calls by other functions; the own instructions by kind sum to the whole", () => {
    const g = parseCallGraph(GRAPH);
    const map = parsePerfMap(MAP);
    const fns = jsInclusive(g, map);
    expect(fns).toEqual([
      { fn: "JS:+'fetch worker.js:18407:8", ir: 9000 },
      { fn: "JS:+'clientEdit worker.js:10616:20", ir: 3000 },
    ]);
    // Own costs here: fetch()'s JIT code 1000; nothing else has self cost in the fixture but what follows.
    const kinds = selfByKind(parseCallGraph(GRAPH + "fn=(5)\n0 1500\nfn=(6) tcmalloc::Alloc\n0 300\nfn=(7) 0x0000000070000000\n0 200\nfn=(8) Builtins_RunMicrotasks\n0 100\n"), map);
    expect(kinds).toEqual([
      { kind: "workerd, jsg and kj C++", ir: 1500 },
      { kind: "JavaScript (JIT code: edgelb's, the runtime's JS)", ir: 1000 },
      { kind: "allocator (tcmalloc, new, delete)", ir: 300 },
      { kind: "unattributed (other code, JIT code not in the map)", ir: 200 },
      { kind: "V8 builtins, stubs and regexp code", ir: 100 },
    ]);
    const text = jsTable(fns, kinds, 3100, 1);
    expect(text).toContain("9.0 k  JS:+'fetch worker.js:18407:8");
    expect(text).toMatch(/0\.2 k {2}unattributed/);
    expect(text).toContain("3.1 k  main thread, all of it");
  });
});
