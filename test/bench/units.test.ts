// Pure parts of the data-plane bench: the probe judge, the /proc stat parser,
// the capnp config writer and the workerd stream stand-ins of the routing child.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { judgeProbes, type Probe } from "../../bench/lib/verify.ts";
import { summarize, type RowOutcome, type RowSpec } from "../../bench/lib/rows.ts";
import { controlTarget, dataPlaneTargets, withControls } from "../../bench/dataplane.ts";
import { keptSections } from "../../bench/lib/merge.ts";
import { parseProcStat } from "../../bench/workerd/cpu.ts";
import { capnpText, renderConfig } from "../../bench/workerd/config.ts";
import { FixedLengthStream, IdentityTransformStream } from "../../bench/lib/workerd-streams.ts";

const ok = (node: string, extra: Partial<Probe> = {}): Probe => ({ status: 200, node, head: "{}", bytes: 2, ...extra });
const raw = (node: string, status = "200 OK") => `HTTP/1.1 ${status}\r\nx-edgelb-node: ${node}\r\ncontent-length: 2\r\n\r\n{}`;

describe("judgeProbes", () => {
  it("accepts 200s from the intended origins", () => {
    expect(judgeProbes({ nodes: ["node-1"] }, [ok("node-1"), ok("node-1")])).toEqual([]);
  });
  it("rejects a non-200, a transport error, a missing or unexpected origin", () => {
    const e = { nodes: ["node-1"] };
    expect(judgeProbes(e, [ok("node-1", { status: 500 })])[0]).toMatch(/status 500/);
    expect(judgeProbes(e, [ok("node-1", { status: 0, error: "ECONNREFUSED" })])[0]).toMatch(/ECONNREFUSED/);
    expect(judgeProbes(e, [{ status: 200, node: undefined, head: "", bytes: 0 }])[0]).toMatch(/no x-edgelb-node/);
    expect(judgeProbes(e, [ok("node-2")])[0]).toMatch(/answered by node-2/);
    expect(judgeProbes(e, [])[0]).toMatch(/no probe/);
  });
  it("demands every node of a round-robin row and the exact body size of a download", () => {
    const e = { nodes: ["node-1", "node-2"], everyNode: true };
    expect(judgeProbes(e, [ok("node-1"), ok("node-1")])[0]).toMatch(/did not reach node-2/);
    expect(judgeProbes(e, [ok("node-1"), ok("node-2")])).toEqual([]);
    expect(judgeProbes({ nodes: ["node-1"], bodyBytes: 10 }, [ok("node-1", { bytes: 9 })])[0]).toMatch(/body of 9 bytes/);
  });
  it("reads the origin out of the socket floor's raw HTTP body", () => {
    const e = { nodes: ["node-1"], rawHttp: true };
    expect(judgeProbes(e, [{ status: 200, node: undefined, head: raw("node-1"), bytes: 60 }])).toEqual([]);
    expect(judgeProbes(e, [{ status: 200, node: undefined, head: raw("node-1", "500 Internal Server Error"), bytes: 60 }])[0]).toMatch(/not "HTTP\/1.1 200"/);
    expect(judgeProbes(e, [{ status: 200, node: undefined, head: raw("node-3"), bytes: 60 }])[0]).toMatch(/answered by node-3/);
  });
});

describe("summarize", () => {
  const spec: RowSpec = { id: "c", label: "c", url: "http://x", path: "/", connections: 1, expect: { nodes: ["n"] } };
  const round = { rps: 1000, p50Ms: 1, p99Ms: 2, requests: 1000, bytes: 2 ** 20, errors: 0, cpuS: 0.1 };
  it("gives CPU per request and per MiB from the workerd CPU of each round", () => {
    const r = summarize(spec, [round], [], []);
    expect(r.valid).toBe(true);
    expect(r.cpuUsPerRequest).toBeCloseTo(100);
    expect(r.cpuMsPerMiB).toBeCloseTo(100);
  });
  it("marks a row with errors under load or a failed after-check invalid", () => {
    expect(summarize(spec, [{ ...round, errors: 3 }], [], []).invalid).toMatch(/3 errors/);
    expect(summarize(spec, [round], [], ["probe 1: status 502"]).invalid).toMatch(/after the load: probe 1: status 502/);
  });
  it("marks a row invalid when a round completed no request (a stall), even with no errors and good probes", () => {
    // Seen in the quiet run of 08:46: the floor proxy at 1 connection hung in 3 of 5 rounds; the median said 0 req/s, "valid".
    const stalled = { ...round, rps: 0, requests: 0, bytes: 0, cpuS: 0.03 };
    const r = summarize(spec, [round, stalled, round, stalled, stalled], [], []);
    expect(r.valid).toBe(false);
    expect(r.invalid).toMatch(/no request completed in 3 of 5 rounds/);
  });
});

describe("parseProcStat", () => {
  it("finds utime and stime after any command name, spaces and parentheses included", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 16 }), fc.nat(), fc.nat(), (comm, utime, stime) => {
        const line = `4242 (${comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 ${utime} ${stime} 0 0 20 0 3 0 12345 1000000 500 18446744073709551615`;
        expect(parseProcStat(line)).toEqual({ utime, stime });
      }),
    );
  });
  it("refuses a line that is not a stat line", () => {
    expect(() => parseProcStat("garbage")).toThrow(/not a \/proc/);
    expect(() => parseProcStat("1 (x) S 1 2")).toThrow(/tick counts/);
  });
});

/** capnp's text-literal escapes, decoded (the subset capnpText writes). */
function decodeCapnp(lit: string): string {
  expect(lit.startsWith('"') && lit.endsWith('"')).toBe(true);
  return lit.slice(1, -1).replace(/\\(x[0-9a-f]{2}|["\\])/g, (_, e: string) => (e.startsWith("x") ? String.fromCharCode(parseInt(e.slice(1), 16)) : e));
}

describe("capnpText / renderConfig", () => {
  it("round-trips any string and never leaves a bare quote or control character", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const lit = capnpText(s);
        expect(decodeCapnp(lit)).toBe(s);
        expect(lit.slice(1, -1)).not.toMatch(/(^|[^\\])(\\\\)*"/);
        expect(lit).not.toMatch(/[\x00-\x1f\x7f]/);
      }),
    );
  });
  it("binds vars as text, KV to the memory service, loopback reachable; refuses binding names that are not identifiers", () => {
    const text = renderConfig({ module: "worker.js", compatibilityDate: "2026-04-01", compatibilityFlags: ["nodejs_compat"], vars: { A: 'x"y' }, kv: { binding: "EDGELB_KV", module: "kv.js" }, listen: "127.0.0.1:0" });
    expect(text).toContain('(name = "A", text = "x\\"y")');
    expect(text).toContain('(name = "EDGELB_KV", kvNamespace = "kv")');
    expect(text).toContain('allow = ["public", "private", "local"]');
    expect(() => renderConfig({ module: "w.js", compatibilityDate: "d", compatibilityFlags: [], vars: { "a b": "" }, listen: "x:0" })).toThrow(/not an identifier/);
  });
  it("passes V8 flags only when given (bench/instructions.ts), in the top-level config", () => {
    const base = { module: "w.js", compatibilityDate: "d", compatibilityFlags: [], vars: {}, listen: "127.0.0.1:0" };
    expect(renderConfig(base)).not.toContain("v8Flags");
    expect(renderConfig({ ...base, v8Flags: [] })).not.toContain("v8Flags");
    const text = renderConfig({ ...base, v8Flags: ["--no-concurrent-recompilation", "--x=\"y\""] });
    expect(text).toContain('  v8Flags = ["--no-concurrent-recompilation", "--x=\\"y\\""],\n);\n\nconst mainWorker');
  });
});

describe("workerd stream stand-ins", () => {
  const pipeThrough = async (ts: TransformStream<Uint8Array, Uint8Array>, chunks: number[]) =>
    new Response(new Blob(chunks.map((n) => new Uint8Array(n))).stream().pipeThrough(ts)).arrayBuffer();
  it("pass bytes through; a FixedLengthStream errors when the body is shorter or longer than declared", async () => {
    expect((await pipeThrough(new IdentityTransformStream(), [3, 4])).byteLength).toBe(7);
    expect((await pipeThrough(new FixedLengthStream(7), [3, 4])).byteLength).toBe(7);
    await expect(pipeThrough(new FixedLengthStream(8), [3, 4])).rejects.toThrow(/closed after 7 of 8/);
    await expect(pipeThrough(new FixedLengthStream(6), [3, 4])).rejects.toThrow(/7 bytes written, 6 declared/);
  });
});

describe("dataPlaneTargets", () => {
  /** 9 rounds; `drift` scales each round (the machine's fast and slow rounds, the same for every row unless told). */
  const DRIFT = [1, 1.2, 0.9, 1.1, 0.8, 1, 1.15, 0.95, 1.05];
  const outcome = (id: string, rps: number, cpuUs: number, valid = true, cpuMsPerMiB = 1, drift = DRIFT): RowOutcome => ({
    ...summarize(
      { id, label: id, url: "http://x", path: "/", connections: 1, expect: { nodes: ["n"] } },
      drift.map((k) => ({ rps: rps / k, p50Ms: 1, p99Ms: 1, requests: 1000, bytes: 1000 * 2 ** 20 * cpuMsPerMiB, errors: valid ? 0 : 5, cpuS: (cpuUs * k * 1000) / 1e6 })),
      [],
      [],
    ),
  });
  const rows = (over: Record<string, RowOutcome> = {}) => {
    const base: Record<string, RowOutcome> = {
      c: outcome("c", 10_000, 60),
      cA: outcome("cA", 10_000, 60),
      c2: outcome("c2", 3_000, 300),
      c2A: outcome("c2A", 3_000, 300),
      f: outcome("f", 5_000, 200),
      d: outcome("d", 9_000, 70),
      e: outcome("e", 2_700, 330),
      Ld: outcome("Ld", 5, 100),
      Lc: outcome("Lc", 5, 80),
      LcA: outcome("LcA", 5, 80),
      Le: outcome("Le", 5, 100),
    };
    const all = { ...base, ...over };
    return (id: string) => all[id];
  };
  const verdicts = (byId: (id: string) => RowOutcome | undefined) => dataPlaneTargets(byId).map((t) => t.verdict);
  it("marks each target met or missed from the rows' throughput and CPU", () => {
    expect(verdicts(rows())).toEqual(["met", "met", "met", "met", "met", "missed"]);
    const slow = dataPlaneTargets(rows({ d: outcome("d", 6_000, 160) }));
    expect(slow.map((t) => t.verdict).slice(0, 2)).toEqual(["missed", "missed"]);
    expect(slow[0]!.result).toMatch(/; of the rows' medians: 0\.60× \(6,000 vs 10,000 req\/s\)$/);
    expect(slow[0]!.limit).toMatch(/100 µs more workerd CPU per request/);
    // Unpinned (no busy shares): what CPU alone would allow, and no claim about which side limited the rows.
    expect(slow[0]!.limit).toMatch(/Which CPU limited the rows was not measured \(not pinned\)\. By CPU per request alone \(d\) would reach 0\.37× of \(c\)'s throughput \(1 ÷ 2\.67\); it measured 0\.60×/);
    // Pinned and workerd's CPU saturated in both rows: throughput follows CPU per request (60 ÷ 160).
    const pinned = (r: RowOutcome, worker: number, rest: number): RowOutcome => ({ ...r, rounds: r.rounds.map((x) => ({ ...x, wallS: x.cpuS! / worker, loadSideShare: rest, busy: { worker: 1, rest: 1 } })) });
    const bound = dataPlaneTargets(rows({ d: pinned(outcome("d", 6_000, 160), 0.99, 0.7), c: pinned(outcome("c", 10_000, 60), 0.97, 0.8) }));
    expect(bound[0]!.limit).toMatch(/workerd's CPU limited both rows, so throughput follows CPU per request: 1 ÷ 2\.67 = 0\.37× \(measured 0\.60×\)/);
    // (c) bound by the load generator's CPU: the ratio is not read as 1 ÷ the CPU ratio.
    const genBound = dataPlaneTargets(rows({ d: pinned(outcome("d", 8_000, 66), 0.99, 0.7), c: pinned(outcome("c", 10_000, 60), 0.8, 0.99) }));
    expect(genBound[0]!.verdict).toBe("missed");
    // (e) against (c′) is read the same way.
    const socketSlow = dataPlaneTargets(rows({ e: pinned(outcome("e", 1_500, 600), 0.99, 0.5), c2: pinned(outcome("c2", 3_000, 300), 0.98, 0.6) })).find((t) => t.target.startsWith("(e)"))!;
    expect(socketSlow.verdict).toBe("missed");
    expect(socketSlow.limit).toMatch(/\(e\): workerd used 99% of its CPU, wrk and the origins 50% of theirs; other processes took 1% of workerd's CPU: workerd's CPU limits it; \(c′\): .* workerd's CPU limited both rows, so throughput follows CPU per request: 1 ÷ 2\.00 = 0\.50×/);
    expect(genBound[0]!.limit).toMatch(/\(c\): workerd used 80% of its CPU, wrk and the origins 99% of theirs; other processes took 20% of workerd's CPU: the load generator's CPU .* Not both workerd-bound, so the throughput ratio is not 1 ÷ the CPU ratio.* By CPU per request alone \(d\) would reach 0\.91× .* it measured 0\.80×/);
  });
  it("judges the socket targets with the socket rows' own A/A control (c′) ÷ (c2A), the fetch target with (c) ÷ (cA)", () => {
    // (c′) at 1.5× of (f) in every round; the two socket copies differ by up to ±40% per round, the fetch copies not at all.
    const noisy = [1, 1.4, 0.7, 1.3, 0.75, 1.35, 0.72, 1.1, 0.9];
    const socketNoise = rows({ c2A: outcome("c2A", 3_000, 300, true, 1, DRIFT.map((k, i) => k * noisy[i]!)) });
    const t = dataPlaneTargets(socketNoise);
    expect(t.find((x) => x.target.startsWith("(c′) socket transport CPU"))!.verdict).toBe("within noise");
    expect(t.find((x) => x.target.startsWith("(d) edgelb fetch ≤"))!.verdict).toBe("met"); // its control is (c) ÷ (cA)
    expect(controlTarget(socketNoise, false, true)!.target).toMatch(/\(c′\) ÷ \(c2A\)/);
    // Without the socket copy the socket targets decide nothing.
    expect(dataPlaneTargets(rows({ c2A: undefined as unknown as RowOutcome })).find((x) => x.target.startsWith("(c′) socket transport CPU"))!.verdict).toBe("within noise");
  });
  it("judges the socket transport's own CPU, (c′) − (f), against the trivial fetch proxy's (issue 14's halving)", () => {
    const own = dataPlaneTargets(rows())[5]!;
    expect(own.result).toMatch(/^1\.67× \(paired median .*; of the rows' medians: 1\.67× \(100 µs vs 60 µs of \(c\)\)$/);
    expect(own.limit).toMatch(/^the transport's own 100 µs per request \(300 µs − 200 µs\)\. In a CPU profile/);
    expect(dataPlaneTargets(rows({ c2: outcome("c2", 3_000, 255), c2A: outcome("c2A", 3_000, 255) }))[5]!.verdict).toBe("met");
  });
  it("pairs rows per round: drift the rows share cancels out; a noisy A/A control, or no control, decides nothing near the threshold", () => {
    // (d) at 0.90× of (c) in every round while the machine's speed moves by ±20% from round to round: met.
    expect(dataPlaneTargets(rows())[0]!.result).toMatch(/^0\.90× \(paired median of 9 rounds; 96\.1% interval 0\.90×–0\.90×, range 0\.90×–0\.90×; A\/A noise ±0\.0% → 0\.90×–0\.90×\); of the rows' medians: 0\.90×/);
    // Identical copies of (c) 8% apart in some rounds: 0.90 ÷ 1.08 < 0.85, within noise, with the reason and what limits (d).
    const noisyCopy = outcome("cA", 10_000, 60, true, 1, DRIFT.map((k, i) => (i % 3 === 0 ? k * 1.08 : k)));
    const [tp] = dataPlaneTargets(rows({ cA: noisyCopy }));
    expect(tp!.verdict).toBe("within noise");
    expect(tp!.limit).toMatch(/^within noise: the threshold lies inside the interval widened by the A\/A noise; if this run.s medians held, about \d+ paired rounds would decide it \(this run: 9;[^)]*\)\. edgelb spends 10 µs more/);
    expect(dataPlaneTargets(rows({ cA: undefined as unknown as RowOutcome }))[0]!.verdict).toBe("within noise");
    // Unpaired, the old rule would have compared medians of rounds taken at different speeds: (d) slow in the rounds (c) was fast.
    const unlucky = outcome("d", 9_000, 70, true, 1, [...DRIFT].reverse());
    expect(dataPlaneTargets(rows({ d: unlucky }))[0]!.verdict).not.toBe("met");
  });

  it("judges the download target against the downloads' own A/A control (Lc) ÷ (LcA), not the small requests'", () => {
    const le = () => dataPlaneTargets(rows()).find((t) => t.target.startsWith("(Le)"))!;
    expect(le().verdict).toBe("met");
    // Small-request copies far apart do not decide the download target; download copies far apart do.
    const far = DRIFT.map((k, i) => (i % 3 === 0 ? k * 3 : k));
    expect(dataPlaneTargets(rows({ cA: outcome("cA", 10_000, 60, true, 1, far) })).find((t) => t.target.startsWith("(Le)"))!.verdict).toBe("met");
    expect(dataPlaneTargets(rows({ LcA: outcome("LcA", 5, 80, true, 1, far) })).find((t) => t.target.startsWith("(Le)"))!.verdict).toBe("within noise");
    expect(controlTarget(rows(), true)!.result).toMatch(/^CPU per MiB 1\.000×/);
  });

  it("a selection of rows (--rows) brings the A/A control rows its targets are judged with", () => {
    expect([...withControls(new Set(["c", "d"]))].sort()).toEqual(["c", "cA", "d"]);
    expect([...withControls(new Set(["e", "c2"]))].sort()).toEqual(["c", "c2", "c2A", "cA", "e"]);
    expect([...withControls(new Set(["Ld", "Le"]))].sort()).toEqual(["Lc", "LcA", "Ld", "Le"]);
    expect([...withControls(new Set(["a"]))]).toEqual(["a"]);
  });

  it("never calls a target met or missed on an invalid row", () => {
    const t = dataPlaneTargets(rows({ d: outcome("d", 50_000, 10, false) }));
    expect(t[0]!.verdict).toBe("invalid");
    expect(t[0]!.limit).toMatch(/d invalid: 45 errors/);
    expect(dataPlaneTargets(rows({ f: undefined as unknown as RowOutcome }))[3]!.verdict).toBe("not measured");
  });
});

describe("keptSections (a partial run keeps what it did not rerun)", () => {
  const section = (title: string) => ({ title, columns: ["row"], rows: [["x"]], notes: [], data: {} });
  const previous = {
    startedAt: "2026-11-26T10:19:46.735Z",
    loadAverage: { start: 1.2, end: 0.8 },
    sections: [
      { ...section("Targets"), rows: [["1", "old data plane target", "22%", "missed", "why"], ["2", "routing decision < 20 µs", "2.86 µs", "met", ""]] },
      section("1. Data plane (loopback, plain workerd via the Miniflare API)"),
      section("2. Routing cost"),
      section("3. Control plane"),
    ],
  };
  it("replaces every section of the rerun number (1 and 1b) and keeps the rest with their targets and run date", () => {
    const kept = keptSections([section("1. Data plane (loopback, plain workerd)"), section("1b. Large bodies")], previous);
    expect(kept.map((k) => k.title)).toEqual(["2. Routing cost", "3. Control plane"]);
    expect(kept[0]!.targets).toEqual([{ target: "routing decision < 20 µs", result: "2.86 µs", verdict: "met" }]);
    expect(kept[0]!.runAt).toBe("2026-11-26T10:19:46.735Z");
    expect(keptSections([section("2. Routing")], undefined)).toEqual([]);
  });
});
