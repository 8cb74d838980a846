// The client's Response: built as a copy of the origin's only when a field must change (X-Request-Id
// added to a 5xx, or to every answer with EDGELB_ECHO_REQUEST_ID=always; a hop-by-hop field or the
// gate's marker taken out; an affinity cookie set). Otherwise the origin's own Response is handed on.
import { describe, expect, it } from "vitest";
import type { OriginRequest, Transport } from "../../worker/transport/types.ts";
import { edgeWithService } from "./helpers.ts";

const nodes = [
  { name: "n1", address: "192.0.2.1", healthy: true },
  { name: "n2", address: "192.0.2.2", healthy: true },
];

/**
 * A transport that answers with what `answer` builds and keeps every Response it gave. Like the
 * fetch transport with a small body, it hands the body over as is (onBodyRelay, released at once).
 */
function origin(answer: (req: OriginRequest) => Response): { transports: { fetch: Transport; socket: Transport }; given: Response[] } {
  const given: Response[] = [];
  const t = (name: "fetch" | "socket"): Transport => ({
    name,
    send: async (req) => {
      const res = answer(req);
      given.push(res);
      req.onBodyRelay?.()?.();
      return res;
    },
  });
  return { transports: { fetch: t("fetch"), socket: t("socket") }, given };
}

/** What the origin saw as the request's id (the edge sends one on every request). */
const sentId = (req: OriginRequest) => (req.request.fields ? req.request.fields["x-request-id"] : req.request.headers.get("x-request-id"))!;

describe("the client's Response", () => {
  it("is the origin's own when the origin echoed X-Request-Id and sent no hop-by-hop field: no copy", async () => {
    const { transports, given } = origin((req) => new Response("hello", { headers: { "content-type": "text/plain", "x-request-id": sentId(req), etag: '"v1"' } }));
    const e = await edgeWithService({ hostnames: ["echo.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("echo.example.com", "/", { headers: { "x-request-id": "client-id-1" } });
    expect(res).toBe(given.at(-1));
    expect(res.headers.get("x-request-id")).toBe("client-id-1");
    expect(res.headers.get("etag")).toBe('"v1"');
    expect(await res.text()).toBe("hello");
  });

  it("is the origin's own when it set no X-Request-Id and is not a 5xx (EDGELB_ECHO_REQUEST_ID=errors, the default): no copy", async () => {
    const { transports, given } = origin(() => new Response("hello", { status: 404, headers: { "content-type": "text/plain", etag: '"v1"' } }));
    const e = await edgeWithService({ hostnames: ["plain.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("plain.example.com", "/", { headers: { "x-request-id": "client-id-2" } });
    expect(res).toBe(given.at(-1));
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toBeNull();
  });

  it("is a copy with X-Request-Id added to a 5xx whose origin set none, every other field kept", async () => {
    const { transports, given } = origin(() => new Response("broken", { status: 500, headers: { "content-type": "text/plain", etag: '"v1"' } }));
    const e = await edgeWithService({ hostnames: ["plain.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("plain.example.com", "/", { headers: { "x-request-id": "client-id-3" } });
    expect(res).not.toBe(given.at(-1));
    expect(res.status).toBe(500);
    expect(res.headers.get("x-request-id")).toBe("client-id-3");
    expect(res.headers.get("etag")).toBe('"v1"');
    expect(await res.text()).toBe("broken");
  });

  it("is a copy with X-Request-Id added to every answer whose origin set none with EDGELB_ECHO_REQUEST_ID=always", async () => {
    const { transports, given } = origin(() => new Response("hello", { headers: { "content-type": "text/plain", etag: '"v1"' } }));
    const e = await edgeWithService({ hostnames: ["plain.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch", EDGELB_ECHO_REQUEST_ID: "always" }, { transports });
    const res = await e.request("plain.example.com", "/", { headers: { "x-request-id": "client-id-2" } });
    expect(res).not.toBe(given.at(-1));
    expect(res.headers.get("x-request-id")).toBe("client-id-2");
    expect(res.headers.get("etag")).toBe('"v1"');
    expect(await res.text()).toBe("hello");
  });

  it("is a copy without the hop-by-hop fields even when the origin echoed X-Request-Id", async () => {
    const { transports, given } = origin(
      (req) => new Response("hello", { headers: { "x-request-id": sentId(req), "proxy-connection": "keep-alive", connection: "x-hop", "x-hop": "1", "x-kept": "yes" } }),
    );
    const e = await edgeWithService({ hostnames: ["hop.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("hop.example.com", "/");
    expect(res).not.toBe(given.at(-1));
    expect(res.headers.has("proxy-connection")).toBe(false);
    expect(res.headers.has("x-hop")).toBe(false);
    expect(res.headers.get("x-kept")).toBe("yes");
  });

  it("is a copy carrying the affinity cookie when the client has none, even when the origin echoed X-Request-Id", async () => {
    const { transports, given } = origin((req) => new Response("hello", { headers: { "x-request-id": sentId(req) } }));
    const e = await edgeWithService({ hostnames: ["sticky.example.com"], nodePort: 30080, policy: { affinity: "cookie" } }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("sticky.example.com", "/");
    expect(res).not.toBe(given.at(-1));
    expect(res.headers.get("set-cookie")).toMatch(/^edgelb_affinity=/);
  });
});

describe("the origin request handed to a transport", () => {
  it("is the plain record of fields for the socket transport too, with no Headers object built", async () => {
    let seen: OriginRequest | undefined;
    const { transports } = origin((req) => {
      seen = req;
      return new Response("ok", { headers: { "x-request-id": sentId(req) } });
    });
    const e = await edgeWithService({ hostnames: ["rec.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "socket" }, { transports });
    const res = await e.request("rec.example.com", "/", { headers: { "x-request-id": "rec-1", accept: "text/html" } });
    expect(res.status).toBe(200);
    expect(seen!.request.fields).toMatchObject({ host: "rec.example.com", accept: "text/html", "x-request-id": "rec-1", "x-forwarded-host": "rec.example.com" });
  });

  it("has no accessor of its own (V8 builds such literals on a slow path, per attempt); its Headers are built once, on read, from the fields", async () => {
    const seen: OriginRequest[] = [];
    const { transports } = origin((req) => {
      seen.push(req);
      return new Response("ok", { headers: { "x-request-id": sentId(req) } });
    });
    const e = await edgeWithService({ hostnames: ["lazy.example.com"], nodePort: 30080 }, nodes, { EDGELB_TRANSPORT: "fetch" }, { transports });
    const res = await e.request("lazy.example.com", "/", { headers: { "x-request-id": "lazy-1", accept: "text/html" } });
    expect(res.status).toBe(200);
    const request = seen[0]!.request;
    expect(Object.getOwnPropertyDescriptor(request, "headers"), "an own `headers` property (the per-attempt getter literal)").toBeUndefined();
    const headers = request.headers;
    expect(Object.fromEntries(headers)).toEqual({ ...request.fields });
    expect(headers.get("x-request-id")).toBe("lazy-1");
    expect(request.headers, "built once").toBe(headers);
  });
});
