// What a client receives on the wire from the deployed worker, over every
// transport: a download keeps the origin's Content-Length, and a body the
// origin cuts short reaches the client as a failed read, never as a complete
// (shorter) response. Served by test/worker/edge-http.setup.ts.
import { beforeAll, describe, expect, inject, it } from "vitest";
import type { WireRequest, WireResponse } from "./edge-http.setup.ts";
import type { GatewaySectionInput } from "../../worker/snapshot/gateway.ts";
import { control, lab, nodesOf, service, snapshot, TOKEN } from "./helpers.ts";
import { TRANSPORTS } from "./transports.ts";
import { until } from "./websocket-client.ts";

const { client, cluster, gzipOrigin } = inject("edgeHttp");
const raw = inject("socketOrigins").raw;

async function wire(req: WireRequest): Promise<WireResponse> {
  const res = await fetch(`${client}/request`, { method: "POST", body: JSON.stringify(req) });
  const json = (await res.json()) as WireResponse & { error?: string };
  if (!res.ok) throw new Error(json.error);
  return json;
}

// Local services, so each host reaches exactly the origin it names.
const onNode = (node: string) => ({ trafficPolicy: "Local" as const, endpoints: [{ node, weight: 1 }] });

beforeAll(async () => {
  const services = TRANSPORTS.flatMap((t) => [
    service({ name: `lab-${t}`, hostnames: [`lab-${t}.wire.test`], nodePort: lab.nodePort, ...onNode(lab.nodes[0]!.name), policy: { transport: t } }),
    service({ name: `raw-${t}`, hostnames: [`raw-${t}.wire.test`], nodePort: raw.port, ...onNode("raw"), policy: { transport: t } }),
    service({ name: `gate-${t}`, hostnames: [`gate-${t}.wire.test`], nodePort: lab.lab.port, ...onNode("lab"), policy: { transport: t } }),
    service({ name: `gzip-${t}`, hostnames: [`gzip-${t}.wire.test`], nodePort: gzipOrigin.port, ...onNode("gzip"), policy: { transport: t } }),
  ]);
  const origins = [
    { name: "raw", address: raw.address, healthy: true },
    { name: "lab", address: lab.lab.address, healthy: true },
    { name: "gzip", address: gzipOrigin.address, healthy: true },
  ];
  // Gateway API routes: one without filters, one that edits request fields, one that rewrites the path (the
  // last two forward a new Request built from the client's).
  const gwRoute = (name: string, filters: GatewaySectionInput["routes"][number]["rules"][number]["filters"]) => ({
    namespace: "gw",
    name,
    creationTimestamp: "2026-12-01T10:00:00Z",
    gateway: "gw/gw",
    listener: "http",
    hostnames: [`gw-${name}.wire.test`],
    rules: [{ ...(filters ? { filters } : {}), backendRefs: [{ namespace: "gw", name: "v1", port: 8080 }] }],
  });
  const gateway: GatewaySectionInput = {
    backends: [{ namespace: "gw", name: "v1", port: 8080, nodePort: lab.nodePort, ...onNode(lab.nodes[0]!.name) }],
    routes: [
      gwRoute("plain", undefined),
      gwRoute("hdr", [{ type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "X-Set", value: "1" }] } }]),
      gwRoute("rw", [{ type: "URLRewrite", urlRewrite: { path: { type: "ReplaceFullPath", replaceFullPath: "/one" } } }]),
    ],
  };
  const snap = { ...snapshot(cluster, [...nodesOf(lab.nodes), ...origins], services), gateway };
  const pushed = await wire({
    host: "localhost",
    path: `/__edgelb/v1/clusters/${cluster}`,
    method: "PUT",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(snap),
  });
  if (pushed.status !== 200) throw new Error(`push to the wire edge failed: ${pushed.status} ${pushed.text}`);
});

describe.each(TRANSPORTS)("on the wire, over the %s transport", (transport) => {
  it("a download keeps its Content-Length and arrives whole", async () => {
    const res = await wire({ host: `lab-${transport}.wire.test`, path: "/stream?bytes=300000" });
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe("300000");
    expect(res.headers["transfer-encoding"]).toBeUndefined();
    expect(res).toMatchObject({ bytes: 300_000, outcome: "complete" });
  });

  it("a GET with Content-Length: 0 is proxied, not a 500", async () => {
    const res = await wire({ host: `lab-${transport}.wire.test`, path: "/", headers: { "content-length": "0" } });
    expect(res.status).toBe(200);
  });

  it("a HEAD keeps the Content-Length of the body it describes", async () => {
    const res = await wire({ host: `lab-${transport}.wire.test`, path: "/stream?bytes=1234", method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe("1234");
    expect(res).toMatchObject({ bytes: 0, outcome: "complete" });
  });

  it("a body the origin cuts short fails the client's read instead of ending cleanly", async () => {
    // The origin promises 100 bytes, sends 10 and closes.
    const res = await wire({ host: `raw-${transport}.wire.test`, path: "/raw/truncated-length" });
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBe("100");
    expect(res.bytes).toBeLessThan(100);
    expect(res.outcome).toMatch(/^aborted/);
  });

  it("a GET that carries a body is refused with 400, not forwarded without it", async () => {
    const res = await wire({
      host: `lab-${transport}.wire.test`,
      path: "/echo",
      method: "GET",
      headers: { "content-length": "5", "content-type": "text/plain" },
      body: "hello",
    });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^edgelb: bad request: a GET request must not carry a body \(request [\w-]+\)\n$/);
  });

  it("a body without a length still arrives whole", async () => {
    // An open gate: the lab origin answers chunked, "first\n" then "last\n".
    const gate = `wire-${transport}-${Date.now()}`;
    await control(`/gates/${gate}/open`);
    const res = await wire({ host: `gate-${transport}.wire.test`, path: `/gate/${gate}` });
    expect(res.status).toBe(200);
    // Over sockets a chunked answer that came whole with its head is handed over with its length.
    // (Whether it came whole depends on the origin's segmentation; either way the length is true.)
    if (transport === "fetch") expect(res.headers["content-length"]).toBeUndefined();
    else expect([undefined, "11"]).toContain(res.headers["content-length"]);
    expect(res).toMatchObject({ text: "first\nlast\n", outcome: "complete" });
  });

  // The edge leaves the fields the runtime writes itself (Connection, Keep-Alive, TE, Trailer,
  // Upgrade, Transfer-Encoding) to the runtime: none of the origin's may reach the client.
  for (const method of ["GET", "HEAD"]) {
    it(`no hop-by-hop field of the origin's reaches the client (${method})`, async () => {
      const res = await wire({ host: `raw-${transport}.wire.test`, path: "/raw/hop-fields", method });
      expect(res.status).toBe(200);
      expect(res.headers["x-kept"]).toBe("yes");
      for (const name of ["keep-alive", "x-hop", "proxy-connection", "proxy-authenticate", "trailer", "upgrade", "te", "x-edgelb-gate"]) {
        expect(res.headers[name], name).toBeUndefined();
      }
      expect(String(res.headers.connection ?? "")).not.toMatch(/x-hop/i);
      if (method === "HEAD") expect(res.headers["transfer-encoding"]).toBeUndefined();
      else expect(res.text).toBe("ok");
      // A copy (fields taken out), still without X-Request-Id: a 200 is not echoed by default.
      expect(res.headers["x-request-id"]).toBeUndefined();
    });
  }

  it("a gzip body reaches the client encoded exactly once", async () => {
    const res = await wire({ host: `gzip-${transport}.wire.test`, path: "/gzip", headers: { "accept-encoding": "gzip" } });
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBe("gzip");
    expect(res).toMatchObject({ gunzipped: gzipOrigin.text, outcome: "complete" });
    // The socket transport relays the origin's encoded bytes, and their length;
    // fetch() decodes them and workerd encodes again (without a length).
    if (transport === "socket") expect(res.headers["content-length"]).toBe(String(gzipOrigin.encodedBytes));
  });
});

describe("on the wire, a socket answer that came whole with its head", () => {
  // Issue 14: a chunked answer that came whole with its head is decoded at once and handed
  // to the client as bytes (no stream per request): it arrives with its length.
  it("chunked: reaches the client decoded, with a Content-Length", async () => {
    const res = await wire({ host: "raw-socket.wire.test", path: "/raw/small-chunked" });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json");
    expect(res.headers["transfer-encoding"]).toBeUndefined();
    expect(res.headers["trailer"]).toBeUndefined();
    expect(res.headers["content-length"]).toBe("16");
    expect(res).toMatchObject({ text: '{"a":"b","c":42}', outcome: "complete" });
  });

  it("a whole answer's connection is closed once the request is done, even when the origin ignores Connection: close", async () => {
    // The edge leaves such a socket to the runtime, which ends a request's sockets with the request.
    const rawControl = inject("socketOrigins").control;
    const id = `wire-whole-${Date.now()}`;
    const res = await wire({ host: "raw-socket.wire.test", path: `/raw/keep-open-whole?id=${id}` });
    expect(res).toMatchObject({ status: 200, text: "hello", outcome: "complete" });
    const open = async () => ((await (await fetch(`${rawControl}/raw/stats`)).json()) as { keepOpenById: Record<string, boolean> }).keepOpenById[id];
    await until(open, (o) => o === false, "the origin's connection to be closed");
  });

  it("chunked, to a HEAD: keeps its rule, no body", async () => {
    const res = await wire({ host: "raw-socket.wire.test", path: "/raw/small-chunked", method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers["transfer-encoding"]).toBeUndefined();
    expect(res).toMatchObject({ bytes: 0, outcome: "complete" });
  });
});

describe("on the wire, a natively piped socket body", () => {
  const rawControl = inject("socketOrigins").control;
  const open = async (id: string) => ((await (await fetch(`${rawControl}/raw/stats`)).json()) as { infiniteById: Record<string, boolean> }).infiniteById[id];

  // Issue 14: after the head, Content-Length and close-delimited bodies are
  // piped from the socket natively; the client leaving must still hang up on
  // the origin (the runtime ends the request's sockets with the request).
  for (const [framing, path] of [
    ["Content-Length", "/raw/infinite-length"],
    ["close-delimited", "/raw/infinite"],
  ] as const) {
    it(`closes the origin's connection when the client goes away mid-body (${framing})`, async () => {
      const id = `wire-leave-${framing}-${Date.now()}`;
      const res = await wire({ host: "raw-socket.wire.test", path: `${path}?id=${id}`, leaveAfterBytes: 256 * 1024 });
      expect(res).toMatchObject({ status: 200, outcome: "left" });
      expect(res.bytes).toBeGreaterThanOrEqual(256 * 1024);
      expect(await until(() => open(id), (v) => v === false, "the origin's connection to close")).toBe(false);
    });
  }
});

describe("on the wire, a Gateway API route", () => {
  // rv-proxy s10 1: a route with request filters built a new Request with the client's body, which workerd
  // makes empty but not null for a GET with Content-Length: 0, and `new Request` threw (500).
  it.each(["plain", "hdr", "rw"])("%s: a GET or HEAD with Content-Length: 0 is proxied, a GET with a body gets the proxy's 400", async (name) => {
    const host = `gw-${name}.wire.test`;
    expect((await wire({ host, path: "/" })).status).toBe(200);
    const get = await wire({ host, path: "/", headers: { "content-length": "0" } });
    expect(get.status, get.text.slice(0, 200)).toBe(200);
    const head = await wire({ host, path: "/", method: "HEAD", headers: { "content-length": "0" } });
    expect(head.status, head.text.slice(0, 200)).toBe(200);
    const body = await wire({ host, path: "/echo", headers: { "content-length": "5", "content-type": "text/plain" }, body: "hello" });
    expect(body.status).toBe(400);
    expect(body.text).toMatch(/^edgelb: bad request: a GET request must not carry a body \(request [\w-]+\)\n$/);
  });
});
