// A node that answers its head and then breaks the body (cuts it short,
// stalls) is as useless as one that answers 5xx: over the socket transport,
// which tells such failures from a client that left, they count toward its
// ejection. A client that leaves mid-download does not.
import { describe, expect, it } from "vitest";
import { MalformedResponseError, type OriginRequest, type Transport } from "../../worker/transport/types.ts";
import { service, snapshot, testEdge, uniqueCluster } from "./helpers.ts";

/** node-a sends a head and a first chunk, then its body breaks (or, with `clientLeaves`, the client goes); node-b answers whole. */
function breakingA() {
  const tries: string[] = [];
  const t: Transport = {
    name: "socket",
    async send(req: OriginRequest) {
      tries.push(req.origin.node);
      if (req.origin.node !== "node-a") return new Response("ok", { headers: { "x-edgelb-node": req.origin.node } });
      const end = req.onBodyRelay!();
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) {
            sent = true;
            c.enqueue(new TextEncoder().encode("first bytes"));
            return;
          }
          const error = new MalformedResponseError("response body from node-a failed: truncated body: 90 of 100 bytes missing", req.origin);
          req.onBodyFailed?.(error);
          end();
          c.error(error);
        },
        cancel() {
          end(); // the client left: no onBodyFailed
        },
      });
      return new Response(body, { headers: { "x-edgelb-node": "node-a", "content-length": "100" } });
    },
  };
  return { transports: { fetch: t, socket: t }, tries };
}

async function edgeWith(b: ReturnType<typeof breakingA>) {
  const cluster = uniqueCluster("bodyfail");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_TRANSPORT: "socket" }, { transports: b.transports, random: () => 0 });
  const nodes = ["node-a", "node-b", "node-c", "node-d"].map((name, i) => ({ name, address: `192.0.2.${20 + i}`, healthy: true }));
  await edge.seed(snapshot(cluster, nodes, [service({ hostnames: ["bf.example.com"], nodePort: 30080 })]));
  return edge;
}

describe("mid-body failures of the origin count toward ejection", () => {
  it("ejects a node whose every download breaks after the head, and later requests avoid it", async () => {
    const b = breakingA();
    const edge = await edgeWith(b);
    for (let i = 0; i < 30; i++) {
      const res = await edge.request("bf.example.com");
      expect(res.status).toBe(200);
      await res.arrayBuffer().catch(() => {});
    }
    expect(edge.logs.find((e) => e.event === "node.ejected")).toMatchObject({ kind: "status" });
    const before = b.tries.filter((n) => n === "node-a").length;
    for (let i = 0; i < 8; i++) await (await edge.request("bf.example.com")).arrayBuffer().catch(() => {});
    expect(b.tries.filter((n) => n === "node-a").length, "an ejected node gets no more requests").toBe(before);
  });

  it("does not eject a node whose clients leave in the middle of their downloads", async () => {
    const b = breakingA();
    const edge = await edgeWith(b);
    for (let i = 0; i < 30; i++) {
      const res = await edge.request("bf.example.com");
      const reader = res.body!.getReader();
      await reader.read();
      await reader.cancel("client left");
    }
    expect(b.tries.filter((n) => n === "node-a").length).toBeGreaterThanOrEqual(5);
    expect(edge.logs.filter((e) => e.event === "node.ejected")).toEqual([]);
  });
});
