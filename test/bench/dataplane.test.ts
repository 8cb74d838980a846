// The data-plane bench's row machinery, for real: plain workerd started the
// way every bench row is (wrangler's bundle, generated capnp config), loaded
// for about a second, its CPU read from /proc; and the verification that
// turns a row whose origin answers 500 into an invalid row, not a fast one.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { cleanupAll } from "../../bench/lib/cleanup.ts";
import { pickLoadGenerator } from "../../bench/lib/loadgen.ts";
import { runRows, type RunRowsOptions } from "../../bench/lib/rows.ts";
import { summarize } from "../../bench/lib/rows.ts";
import { verifyRow, verifyRowAnswers } from "../../bench/lib/verify.ts";
import { BENCH_HOST, benchSnapshot, DATAPLANE_PATH, startDataPlaneRows, startEdgelb, startTrivial, unequalAnswers, workerRow, type DataPlaneRows } from "../../bench/dataplane.ts";
import { builtBundle, type PlainWorker } from "../../bench/workerd/index.ts";

const ADDRESSES = ["127.18.1.11", "127.18.1.12", "127.18.1.13"];
const nodes: SimNode[] = [];
let nodePort = 0;
let trivial: PlainWorker;
const lines: string[] = [];
const options = (): RunRowsOptions => ({ loadgen: pickLoadGenerator(), rounds: 1, durationS: 1, warmupS: 0, threads: 1, probes: 3, log: (l) => lines.push(l) });

beforeAll(async () => {
  for (const [i, address] of ADDRESSES.entries()) nodes.push(await SimNode.start({ name: `node-${i + 1}`, address, healthzPort: 0 }));
  nodePort = await nodes[0]!.servePort(0);
  for (const n of nodes.slice(1)) await n.servePort(nodePort);
  trivial = await startTrivial("index.ts", `http://${ADDRESSES[0]}:${nodePort}`);
});

afterAll(async () => {
  await cleanupAll();
  for (const n of nodes) await n.stop();
});

describe("data-plane bench rows in plain workerd", () => {
  it("measures a verified trivial fetch proxy row with workerd CPU per request, and marks it invalid when its origin answers 500", async () => {
    const row = workerRow(trivial, { id: "c", label: "(c) trivial proxy, fetch()", path: "/", connections: 4, expect: { nodes: ["node-1"] } });

    const [good] = await runRows([row], options());
    expect(good!.valid, good!.invalid).toBe(true);
    expect(good!.requests).toBeGreaterThan(0);
    expect(good!.rps).toBeGreaterThan(0);
    expect(good!.cpuUsPerRequest).toBeGreaterThan(0);
    expect(Number.isFinite(good!.cpuUsPerRequest)).toBe(true);

    await nodes[0]!.setBehavior({ mode: "error", status: 500 });
    try {
      const [bad] = await runRows([row], options());
      expect(bad!.valid).toBe(false);
      expect(bad!.invalid).toMatch(/before the load: probe 1: status 500/);
      expect(bad!.rounds).toHaveLength(0); // an invalid row is never loaded, so it has no numbers to show
    } finally {
      await nodes[0]!.setBehavior({ mode: "ok" });
    }
  });

  it("counts errors under load: a row whose origin fails after the before-check is invalid", async () => {
    const row = workerRow(trivial, { id: "c", label: "(c)", path: "/", connections: 4, expect: { nodes: ["node-1"] } });
    // The origin turns to 500 once the probes have passed, i.e. during the load.
    const loadgen = pickLoadGenerator();
    const failing: RunRowsOptions = {
      ...options(),
      loadgen: {
        name: loadgen.name,
        async run(o) {
          await nodes[0]!.setBehavior({ mode: "error", status: 500 });
          return loadgen.run(o);
        },
      },
    };
    try {
      const [bad] = await runRows([row], failing);
      expect(bad!.valid).toBe(false);
      expect(bad!.errors).toBeGreaterThan(0);
      expect(bad!.invalid).toMatch(/errors .* under load/);
    } finally {
      await nodes[0]!.setBehavior({ mode: "ok" });
    }
  });

  it("runs edgelb with the in-memory KV namespace: the pushed snapshot routes round-robin over all three nodes", async () => {
    const snapshot = benchSnapshot(ADDRESSES, nodePort, 7);
    const worker = await startEdgelb("socket", snapshot);
    // The push went through the KV binding into the memory KV service and reads back as stored.
    const stored = await fetch(`${worker.url}/__edgelb/v1/clusters/default`, { headers: { authorization: "Bearer bench-push-token" } });
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as { generation: number }).generation).toBe(7);
    const problems = await verifyRow(worker.url, BENCH_HOST, "/", { nodes: ["node-1", "node-2", "node-3"], everyNode: true }, 6);
    expect(problems).toEqual([]);
    // A host edgelb has no route for is not an answer from an origin.
    const wrongHost = await verifyRow(worker.url, "other.example.com", "/", { nodes: ["node-1", "node-2", "node-3"] }, 1);
    expect(wrongHost[0]).toMatch(/status 4\d\d/);
  });
});

// Same work for every row of a target: every section-1 row, started as the bench starts it (its own simulated
// nodes, one plain workerd per worker; the bundles of (c) and edgelb are shared with the tests above), gets an
// answer of the same size from its origin, and the probes still prove the origin and the status. With GET / (the
// node's echo of the request's fields) edgelb's rows got their forwarding fields back: larger answers than (c)'s.
describe("section 1's rows answer the same bytes", () => {
  let started: DataPlaneRows;
  beforeAll(async () => {
    // Every small row but nginx (b) and the A/A copy (cA, the same bundle as (c)): one workerd each.
    started = await startDataPlaneRows({ addressBase: "127.134.1", connections: 4, largeConnections: 1, rounds: 1, targetRounds: 2, rows: new Set(["a", "c", "c2", "f", "d", "e"]), log: () => {} });
  }, 120_000);

  it("asks every row the fixed answer; each proves its origin and status, and the origin's body has one size across rows", async () => {
    const ids = started.rows.map((r) => r.id);
    expect(ids).toEqual(["a", "c", "c2", "f", "d", "e"]);
    // The rows the targets are judged on get the extra rounds; (a) feeds none.
    expect(Object.fromEntries(started.rows.map((r) => [r.id, r.rounds]))).toEqual({ a: 1, c: 2, c2: 2, f: 2, d: 2, e: 2 });
    const sizes = new Map<string, number[]>();
    for (const row of started.rows) {
      expect(row.path).toBe(DATAPLANE_PATH);
      const { problems, answerBytes } = await verifyRowAnswers(row.url, row.host, row.path, row.expect, 3);
      expect(problems, row.id).toEqual([]);
      sizes.set(row.id, answerBytes);
    }
    expect(sizes.get("c")!.length).toBe(1);
    for (const [id, s] of sizes) expect(s, `row ${id}`).toEqual(sizes.get("c"));
    // The targets' own check agrees.
    const outcomes = started.rows.map((r) => ({ ...summarize(r, [], [], []), answerBytes: sizes.get(r.id)! }));
    expect(unequalAnswers(outcomes)).toBeUndefined();
  }, 60_000);

  // Formerly test/bench/bundle.test.ts, which ran a wrangler build of its own: the same build, made once here.
  it("runs edgelb as `wrangler deploy` bundles it: no __name wrappers (wrangler.toml: keep_names = false)", async () => {
    // esbuild's keep_names wraps every closure in a __name() call that runs each time the closure is created,
    // i.e. on every request of the hot path.
    const bundle = builtBundle(path.resolve(import.meta.dirname, "../../worker/index.ts"));
    expect(bundle).toBeDefined();
    const code = await readFile(await bundle!, "utf8");
    expect(code).toContain("proxy");
    expect(code.match(/__name\(/g) ?? []).toEqual([]);
  });
});
