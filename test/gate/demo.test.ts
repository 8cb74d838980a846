// `npm start -- --gate` as startDemo({ gate }) runs it: simulated cluster, the
// real worker in workerd, the real agent with --origins gate, and a gate in
// front of every node (127.23.9.x). Traffic reaches the apps only through the gates.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDemo, type Demo } from "../../lab/demo/demo.ts";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import { metricValue, until } from "./harness.ts";

let demo: Demo;
let stateDir: string;
beforeAll(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), "edgelb-gate-demo-"));
  demo = await startDemo({ port: 0, addressBase: "127.23.9", healthzPort: 0, stateDir, agentLog: pino({ level: "silent" }), gate: { port: 0 } });
});
afterAll(async () => {
  await demo?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("npm start -- --gate", () => {
  it("publishes origins mode gate, and every request reaches the apps through the node gates", async () => {
    const res = await fetch(`${demo.workerUrl}/__edgelb/v1/clusters/demo`, { headers: { authorization: `Bearer ${demo.token}` } });
    expect(res.status).toBe(200);
    const snap = (await res.json()) as Snapshot;
    expect(snap.origins).toEqual({ mode: "gate", port: demo.gates!.port });

    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const r = await demo.edge.request("web.localhost", `/?i=${i}`);
      expect(r.status).toBe(200);
      seen.add(r.headers.get("x-edgelb-node") ?? "");
    }
    expect([...seen].sort()).toEqual(["node-1", "node-2", "node-3"]);
    const forwarded = await until("the gates' counters", async () => {
      let sum = 0;
      for (const g of demo.gates!.gates) sum += metricValue(await g.metrics.registry.metrics(), `edgelb_gate_forwarded_total{kind="http"}`) || 0;
      return sum >= 9 ? sum : undefined;
    });
    expect(forwarded).toBeGreaterThanOrEqual(9);
  });

  it("the gates refuse anyone but the worker", async () => {
    const node = demo.cluster!.nodes[0]!;
    const res = await fetch(`http://${node.address}:${demo.gates!.port}/`, { headers: { host: "web.localhost" } });
    expect(res.status).toBe(403);
    expect(await res.text()).toBe("forbidden\n");
  });
});
