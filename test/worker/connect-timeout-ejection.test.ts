// Issue 19: a blackholed node (no answer to the connect) costs one wait, not
// one per request: its first connect timeout ejects it for that Service in the
// isolate, and the request goes on to the next node.
import { describe, expect, it } from "vitest";
import { ConnectError, type Transport } from "../../worker/transport/types.ts";
import { service, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

/** node-a never answers a connect (reported as the socket transport reports a timeout); node-b answers. */
function blackholedA(timedOut: boolean) {
  const tries: string[] = [];
  const t: Transport = {
    name: "socket",
    async send(req) {
      tries.push(req.origin.node);
      if (req.origin.node === "node-a") throw new ConnectError(`cannot connect to node-a: no connection within ${req.connectTimeoutMs} ms`, req.origin, { timedOut });
      return new Response("ok", { headers: { "x-edgelb-node": req.origin.node } });
    },
  };
  return { transports: { fetch: t, socket: t }, tries };
}

async function run(timedOut: boolean) {
  const cluster = uniqueCluster("blackhole");
  const b = blackholedA(timedOut);
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_TRANSPORT: "socket" }, { transports: b.transports, random: () => 0 });
  const nodes = [
    { name: "node-a", address: "192.0.2.10", healthy: true },
    { name: "node-b", address: "192.0.2.11", healthy: true },
    { name: "node-c", address: "192.0.2.12", healthy: true },
    { name: "node-d", address: "192.0.2.13", healthy: true },
  ];
  await edge.seed(snapshot(cluster, nodes, [service({ hostnames: ["bh.example.com"], nodePort: 30080 })]));
  for (let i = 0; i < 12; i++) expect((await edge.request("bh.example.com")).status).toBe(200);
  return { tries: b.tries, edge };
}

describe("a connect timeout", () => {
  it("ejects the node at once: of many requests, only one tries it", async () => {
    const { tries, edge } = await run(true);
    expect(tries.filter((n) => n === "node-a")).toHaveLength(1);
    expect(edge.logs.find((e) => e.event === "node.ejected")).toMatchObject({ kind: "connect-timeout" });
  });

  it("while a refused connection still needs its streak (it costs no wait)", async () => {
    const { tries } = await run(false);
    expect(tries.filter((n) => n === "node-a").length).toBeGreaterThanOrEqual(2);
  });
});
