// A run of generation conflicts (the edge keeps holding a newer generation:
// another writer is pushing) is one warning, not one per retry.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { createAgent, type Agent } from "../../sync-agent/agent.ts";
import { defaultConfig } from "../../sync-agent/config.ts";
import { startCluster, type SimCluster } from "../../lab/cluster/cluster.ts";
import { waitFor } from "../../lab/cluster/wait.ts";
import type { LogLine } from "./harness.ts";

const CONFLICTS = 3;

let cluster: SimCluster;
let edge: http.Server;
let agent: Agent;
const logs: LogLine[] = [];
const accepted: number[] = [];
beforeAll(async () => {
  cluster = await startCluster({ standIn: true, nodes: 1, addressBase: "127.16.7", healthzPort: 0 });
  // The worker's push endpoint as another writer racing us would make it
  // answer: every PUT meets a newer stored generation, CONFLICTS times.
  let refused = 0;
  edge = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on("data", (c: Buffer) => body.push(c));
    req.on("end", () => {
      if (req.method === "GET") return res.writeHead(404, { "content-type": "application/json" }).end('{"error":"no snapshot"}');
      const sent = (JSON.parse(Buffer.concat(body).toString()) as { generation: number }).generation;
      if (refused++ < CONFLICTS) {
        const storedGeneration = sent + 5;
        return res.writeHead(409, { "content-type": "application/json" }).end(JSON.stringify({ error: `stored generation ${storedGeneration} is newer`, storedGeneration }));
      }
      accepted.push(sent);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => edge.listen(0, "127.16.7.100", r));
  const config = defaultConfig({
    cluster: "home",
    kubeconfig: cluster.kubeconfigPath,
    sink: "worker",
    workerUrl: `http://127.16.7.100:${(edge.address() as AddressInfo).port}`,
    pushToken: "t",
    addressPreference: ["InternalIP"],
    health: { mode: "kube-proxy", intervalMs: 200, timeoutMs: 150, rise: 1, fall: 1, healthzPort: cluster.healthzPort },
    coalesceMs: 20,
    maxDelayMs: 100,
    minWriteIntervalMs: 50,
    resyncMs: 0,
  });
  agent = createAgent(config, { log: pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) }) });
  await agent.start();
});
afterAll(async () => {
  await agent?.stop();
  edge?.closeAllConnections();
  await new Promise<void>((r) => (edge ? edge.close(() => r()) : r()));
  await cluster?.stop();
});

describe("generation conflicts", () => {
  it("a run of conflicts is warned once, and its end is said once", async () => {
    // The agent logs the accepted push once it has read the edge's answer, a moment after the edge counted it.
    await waitFor(() => accepted.length > 0 && logs.some((l) => /accepted after \d+ generation conflicts/.test(l.msg)), "a push accepted after the conflicts, and said", 15_000);
    const conflictLines = logs.filter((l) => /^the edge has generation \d+ \(we sent \d+\)/.test(l.msg));
    expect(conflictLines).toHaveLength(CONFLICTS); // every conflict is still logged…
    expect(conflictLines.filter((l) => l.level === 40)).toHaveLength(1); // …but only the first as a warning
    expect(logs.filter((l) => l.level >= 40 && l.msg.includes("generation"))).toHaveLength(1);
    expect(logs.find((l) => /accepted after 3 generation conflicts/.test(l.msg))).toMatchObject({ level: 30, conflicts: 3 });
    // and it continued after the newest stored generation
    expect(accepted[0]).toBeGreaterThan(5);
  });
});
