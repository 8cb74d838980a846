// What workerd's fetch() does with fields, against real origins on loopback (socket-origins.setup.ts): the facts
// the fetch path's field work rests on, each shown here so that a runtime that changed would fail a test, not
// silently change what clients or origins get.
//  - fetch() passes every hop-by-hop field of an origin's answer on to the worker: none can be assumed absent,
//    so the client's copy must look each up (worker/proxy/headers.ts clientEdit: Connection and the fields it
//    names, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, the gate's marker; Transfer-Encoding
//    for a HEAD) — the runtime itself writes only Connection, Keep-Alive, TE, Trailer, Upgrade and (but for
//    a HEAD) Transfer-Encoding on the wire (test/worker/wire.test.ts).
//  - fetch() sends the Host of its URL whatever Host its init names: the fetch transport's record carries none
//    (worker/proxy/headers.ts originFieldsFrom), as a Host there would only be converted and dropped.
import { describe, expect, inject, it } from "vitest";

const o = inject("socketOrigins");
const raw = `http://${o.raw.address}:${o.raw.port}`;
const node = `${o.nodes[0]!.address}:${o.nodePort}`;

describe("workerd's fetch(): the fields it passes on and the Host it sends", () => {
  for (const method of ["GET", "HEAD"]) {
    it(`passes every hop-by-hop field of the origin's answer to the worker (${method})`, async () => {
      const res = await fetch(`${raw}/raw/hop-fields`, { method });
      await res.body?.cancel();
      const h = res.headers;
      expect(h.get("connection")).toBe("keep-alive, X-Hop");
      expect(h.get("x-hop")).toBe("secret");
      expect(h.get("keep-alive")).toBe("timeout=5");
      expect(h.get("proxy-connection")).toBe("keep-alive");
      expect(h.get("proxy-authenticate")).toBe("Basic realm=x");
      expect(h.get("trailer")).toBe("X-Sum");
      expect(h.get("upgrade")).toBe("h2c");
      expect(h.get("te")).toBe("trailers");
      expect(h.get("x-edgelb-gate")).toBe("refused");
      // A HEAD's answer keeps its Transfer-Encoding (the one the runtime would send on as given); a GET's here
      // has a Content-Length.
      if (method === "HEAD") expect(h.get("transfer-encoding")).toBe("chunked");
      else expect(h.get("content-length")).toBe("2");
    });
  }

  it("sends its URL's Host, not the one its init names", async () => {
    const inits: Record<string, string>[] = [{ host: "app.example.com", "x-probe": "1" }, { "x-probe": "1" }];
    for (const headers of inits) {
      const res = await fetch(`http://${node}/`, { headers });
      const echo = (await res.json()) as { headers: Record<string, string> };
      expect(echo.headers.host).toBe(node);
      expect(echo.headers["x-probe"]).toBe("1");
    }
  });
});
