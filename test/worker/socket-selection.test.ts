// Which transport carries a request, seen from the origin: only the socket
// transport can hand an IP origin the client's Host (fetch() sets Host from
// the URL). Worker var EDGELB_TRANSPORT and the Service policy both override
// the default, which is auto (IP literal → socket).
import { describe, expect, inject, it } from "vitest";
import type { Env } from "../../worker/env/index.ts";
import type { TransportName } from "../../worker/snapshot/schema.ts";
import { edgeWithService, type Echo } from "./helpers.ts";

const o = inject("socketOrigins");
const HOST = "shop.example.com";
const nodes = o.nodes.map((n) => ({ name: n.name, address: n.address, healthy: true }));

async function hostSeenByOrigin(vars: Partial<Env>, policy?: TransportName): Promise<string> {
  const edge = await edgeWithService(
    { hostnames: [HOST], nodePort: o.nodePort, ...(policy ? { policy: { transport: policy } } : {}) },
    nodes,
    vars,
  );
  const res = await edge.request(HOST, "/");
  expect(res.status).toBe(200);
  return ((await res.json()) as Echo).headers.host!;
}

const viaFetch = /^127\.0\.93\.1[123]:\d+$/;

describe("transport selection, end to end", () => {
  it("auto (the default) sends IP origins over the socket transport", async () => {
    expect(await hostSeenByOrigin({})).toBe(HOST);
    expect(await hostSeenByOrigin({ EDGELB_TRANSPORT: "auto" })).toBe(HOST);
  });

  it("EDGELB_TRANSPORT=fetch moves them to fetch()", async () => {
    expect(await hostSeenByOrigin({ EDGELB_TRANSPORT: "fetch" })).toMatch(viaFetch);
  });

  it("a Service's policy wins over the worker var, both ways", async () => {
    expect(await hostSeenByOrigin({ EDGELB_TRANSPORT: "fetch" }, "socket")).toBe(HOST);
    expect(await hostSeenByOrigin({ EDGELB_TRANSPORT: "socket" }, "fetch")).toMatch(viaFetch);
    expect(await hostSeenByOrigin({ EDGELB_TRANSPORT: "fetch" }, "auto")).toBe(HOST);
  });
});
