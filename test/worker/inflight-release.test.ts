// Every way a proxied request can end gives its origin's in-flight count back
// (issue 14: in-flight accounting now ends at a pipe's completion, at the head
// for small Content-Length bodies over fetch(), or at a relay's end): a leak
// would skew least-request for the isolate's life. Over each transport, a mix
// of HEAD, 204, a 5xx retried on every node, small and large Content-Length
// bodies, a chunked body, and downloads the client abandons; then every
// origin's in-flight count returns to 0.
import { describe, expect, it } from "vitest";
import { edgeWithService, lab, nodesOf, until, type TestEdge } from "./helpers.ts";

function inFlightTotal(edge: TestEdge): number {
  return edge.status().clusters.flatMap((c) => c.nodes.flatMap((n) => n.origins.map((o) => o.inFlight))).reduce((a, b) => a + b, 0);
}

for (const transport of ["fetch", "socket"] as const) {
  describe(`in-flight accounting over the ${transport} transport`, () => {
    it("returns to 0 after every kind of answer, including abandoned downloads", async () => {
      const host = `inflight-${transport}.example.com`;
      const e = await edgeWithService({ hostnames: [host], nodePort: lab.nodePort, policy: { algorithm: "least-request" } }, nodesOf(lab.nodes), { EDGELB_TRANSPORT: transport });
      const drain = async (res: Response) => {
        await res.arrayBuffer();
        return res.status;
      };
      expect(await drain(await e.request(host, "/"))).toBe(200); // chunked JSON
      expect(await drain(await e.request(host, "/", { method: "HEAD" }))).toBe(200);
      expect(await drain(await e.request(host, "/status/204"))).toBe(204);
      expect(await drain(await e.request(host, "/status/503"))).toBe(503); // retried on every node, then passed on
      expect(await drain(await e.request(host, "/stream?bytes=1000"))).toBe(200); // small Content-Length
      expect(await drain(await e.request(host, "/stream?bytes=1048576"))).toBe(200); // large Content-Length
      // Downloads the client abandons after the first bytes (large and chunked).
      for (const path of ["/stream?bytes=8388608", "/"]) {
        const res = await e.request(host, path);
        const reader = res.body!.getReader();
        await reader.read();
        await reader.cancel();
      }
      await until(() => (inFlightTotal(e) === 0 ? true : undefined), "every origin's in-flight count back to 0");
      expect(inFlightTotal(e)).toBe(0);
    });
  });
}
