import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CLIENT_FORWARDING,
  clientEdit,
  clientResponseHeaders,
  edgeFacts,
  forClient,
  forwardedValue,
  isFieldName,
  isFieldValue,
  announcesBody,
  edgeFactsFrom,
  isHeaderFault,
  isWebSocketFrom,
  isWebSocketRequest,
  originFields,
  readClientFields,
  requestIdFrom,
  originHeadersOf,
  originHeadersFromClient,
  originFieldsFrom,
  copyClientHeaders,
  originRequestHeaders,
  newRequestId,
  requestIdOf,
  stripHopByHop,
} from "./headers.ts";

function originHeaders(req: Request, websocket = false, forwarded = true): Headers {
  const h = originRequestHeaders(req, edgeFacts(req, "rid"), websocket, forwarded);
  if (!(h instanceof Headers)) throw new Error(h.fault);
  return h;
}

/**
 * Fields the runtime's HTTP layer writes itself, whatever a Response holds (workerd's kj-http:
 * connection-level fields; Transfer-Encoding except in answer to a HEAD): what the client receives
 * of a Response is its fields without these. test/worker/wire.test.ts checks it on the wire.
 */
const WRITTEN_BY_RUNTIME = ["connection", "keep-alive", "te", "trailer", "upgrade", "transfer-encoding"];
const onWire = (h: Headers, method = "GET"): [string, string][] =>
  [...h].filter(([k]) => !WRITTEN_BY_RUNTIME.includes(k) || (method === "HEAD" && k === "transfer-encoding"));

describe("hop-by-hop headers", () => {
  it("are removed from responses too, with any header the Connection field names", () => {
    const upstream = new Response("x", {
      headers: { connection: "close, x-trace-hop", "x-trace-hop": "1", "keep-alive": "timeout=5", "content-type": "text/plain", "set-cookie": "a=1", "proxy-connection": "keep-alive" },
    });
    const h = clientResponseHeaders(upstream, "rid");
    expect(onWire(h).map(([k]) => k).sort()).toEqual(["content-type", "set-cookie", "x-request-id"]);
  });

  it("are taken out of the response's own copy in place: every other field kept with all its values, one X-Request-Id", () => {
    // Reference: the field-by-field copy the proxy made before it edited the Response's own headers.
    const reference = (from: Headers, rid: string): [string, string][] => {
      const named = new Set((from.get("connection") ?? "").split(",").map((s) => s.trim().toLowerCase()));
      const out = new Headers();
      for (const [k, v] of from) if (!HOP.includes(k) && !named.has(k) && k !== "x-edgelb-gate") out.append(k, v);
      if (!out.has("x-request-id")) out.set("x-request-id", rid);
      return [...out];
    };
    const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"];
    const name = fc.constantFrom(...HOP, "x-edgelb-gate", "x-request-id", "set-cookie", "content-type", "x-trace-hop", "etag", "vary");
    // Non-empty: two empty values combine to ", ", which a field-by-field copy trimmed to "," (the runtime's copy keeps it).
    const value = fc.string({ minLength: 1, maxLength: 12 }).filter(isFieldValue).map((v) => v.trim()).filter((v) => v !== "");
    const connection = fc.array(fc.constantFrom("close", "keep-alive", "x-trace-hop", "X-Request-Id", "etag", " Vary ", "a b", ""), { maxLength: 3 }).map((a) => a.join(","));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, value), { maxLength: 12 }),
        fc.option(connection, { nil: undefined }),
        fc.constantFrom("GET", "HEAD", "POST"),
        (fields, conn, method) => {
          const upstream = new Headers();
          for (const [k, v] of fields) if (k !== "connection") upstream.append(k, v);
          if (conn !== undefined) upstream.set("connection", conn);
          const client = new Response(null, { headers: upstream });
          forClient(client.headers, "rid", method);
          expect(onWire(client.headers, method)).toEqual(reference(upstream, "rid"));
        },
      ),
    );
  });

  it("clientEdit says 'nothing to change' exactly when forClient would leave what the client receives as it was", () => {
    const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"];
    const name = fc.constantFrom(...HOP, "x-edgelb-gate", "x-request-id", "set-cookie", "content-type", "x-trace-hop", "etag");
    const value = fc.string({ minLength: 1, maxLength: 8 }).filter(isFieldValue).map((v) => v.trim()).filter((v) => v !== "");
    const connection = fc.array(fc.constantFrom("close", "keep-alive", "x-trace-hop", "X-Request-Id", "etag", "a b", ""), { maxLength: 3 }).map((a) => a.join(","));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), fc.option(connection, { nil: undefined }), fc.constantFrom("GET", "HEAD"), (fields, conn, method) => {
        const upstream = new Headers();
        for (const [k, v] of fields) if (k !== "connection") upstream.append(k, v);
        if (conn !== undefined) upstream.set("connection", conn);
        const copy = new Response(null, { headers: upstream }).headers;
        forClient(copy, "rid", method);
        const unchanged = JSON.stringify(onWire(copy, method)) === JSON.stringify(onWire(upstream, method));
        expect(clientEdit(upstream, method) === undefined).toBe(unchanged);
      }),
    );
  });

  it("a Connection naming only Keep-Alive (any case, padded) takes the short way with the same result both ways", () => {
    for (const conn of ["keep-alive", "Keep-Alive", " keep-alive\t", "KEEP-ALIVE"]) {
      // Response: Node's usual head. Nothing to change when the origin echoed X-Request-Id; else only the id added.
      const echoed = new Headers({ connection: conn, "keep-alive": "timeout=5", "x-request-id": "rid", "content-type": "text/plain" });
      expect(clientEdit(echoed, "GET")).toBeUndefined();
      expect(clientEdit(new Headers({ connection: conn, "keep-alive": "timeout=5" }), "GET")).toEqual({ drop: [], addRequestId: true });
      // Request: the same fields as a Connection that named something else would leave.
      const req = new Request("https://app.example.com/", { headers: { connection: conn, "keep-alive": "1", accept: "*/*" } });
      expect([...originHeaders(req)].map(([k]) => k)).toEqual(["accept", "forwarded", "host", "x-forwarded-host", "x-forwarded-proto", "x-request-id"]);
    }
    // Not the short way: a list naming a copied field still drops it.
    const req = new Request("https://app.example.com/", { headers: { connection: "keep-alive, accept", accept: "*/*" } });
    expect(originHeaders(req).has("accept")).toBe(false);
    expect(clientEdit(new Headers({ connection: "keep-alive, x-hop", "x-hop": "1", "x-request-id": "r" }), "GET")).toEqual({ drop: ["x-hop"], addRequestId: false });
  });

  it("a client's own x-edgelb-signature never reaches an origin (only the edge signs; direct mode sends the copy as is)", () => {
    const req = new Request("https://app.example.com/", { headers: { "x-edgelb-signature": "v3;k=forged", accept: "*/*" } });
    const h = originHeaders(req);
    expect(h.get("x-edgelb-signature")).toBeNull();
    expect(h.get("accept")).toBe("*/*");
  });

  it("are removed from requests, with any header the client's Connection field names", () => {
    const req = new Request("https://a/", { headers: { connection: "x-trace-hop", "x-trace-hop": "1", te: "trailers", accept: "*/*" } });
    const h = originHeaders(req);
    expect(h.has("x-trace-hop")).toBe(false);
    expect(h.has("te")).toBe(false);
    expect(h.get("accept")).toBe("*/*");
  });

  it("keep Upgrade and Connection for a WebSocket handshake", () => {
    const req = new Request("https://ws.example.com/chat", {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "k", "keep-alive": "1" },
    });
    const h = originHeaders(req, true);
    expect(h.get("upgrade")).toBe("websocket");
    expect(h.get("connection")).toBe("Upgrade");
    expect(h.get("sec-websocket-key")).toBe("k");
    expect(h.has("keep-alive")).toBe(false);
    expect(stripHopByHop(new Headers({ upgrade: "websocket" })).has("upgrade")).toBe(false);
  });
});

describe("request id", () => {
  it("keeps a sane incoming id and replaces an unusable one", () => {
    expect(requestIdOf(new Request("https://a/", { headers: { "x-request-id": "req-42" } }))).toBe("req-42");
    const long = requestIdOf(new Request("https://a/", { headers: { "x-request-id": "x".repeat(201) } }));
    expect(long).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
    expect(requestIdOf(new Request("https://a/", { headers: { "x-request-id": "has space" } }))).not.toBe("has space");
  });
});

describe("forwarding headers", () => {
  it("omit the client address when the edge does not know it (local development)", () => {
    const req = new Request("http://app.local:8787/", { headers: { "x-forwarded-for": "6.6.6.6", host: "app.local:8787" } });
    const h = originHeaders(req);
    expect(h.has("x-forwarded-for")).toBe(false);
    expect(h.get("x-forwarded-proto")).toBe("http");
    expect(h.get("x-forwarded-host")).toBe("app.local:8787");
    expect(h.get("forwarded")).toBe('host="app.local:8787";proto=http');
    expect(h.get("host")).toBe("app.local:8787");
  });

  it("leave Forwarded out unless asked for (EDGELB_FORWARDED), a client's own included", () => {
    const req = new Request("https://shop.example.com/", { headers: { forwarded: "for=6.6.6.6;host=evil", "cf-connecting-ip": "203.0.113.7", host: "shop.example.com" } });
    const h = originHeaders(req, false, false);
    expect(h.has("forwarded")).toBe(false);
    expect([h.get("x-forwarded-for"), h.get("x-forwarded-host"), h.get("x-forwarded-proto")]).toEqual(["203.0.113.7", "shop.example.com", "https"]);
  });

  it("drop every client-supplied forwarding header and set the edge's own", () => {
    const forged = Object.fromEntries(CLIENT_FORWARDING.map((n) => [n, "6.6.6.6"]));
    const req = new Request("https://shop.example.com/", { headers: { ...forged, "cf-connecting-ip": "2001:db8::1", host: "shop.example.com" } });
    const h = originHeaders(req);
    for (const name of ["true-client-ip", "x-client-ip", "x-original-url", "x-original-forwarded-for", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server", "x-forwarded-ssl", "x-forwarded-scheme"]) {
      expect(h.has(name), name).toBe(false);
    }
    expect(h.get("x-forwarded-for")).toBe("2001:db8::1");
    expect(h.get("x-real-ip")).toBe("2001:db8::1");
    expect(h.get("forwarded")).toBe('for="[2001:db8::1]";host=shop.example.com;proto=https');
  });

  it("write a Forwarded value that parses back to the edge's facts (property)", () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
    const ipv6 = fc.ipV6();
    const host = fc.string({ minLength: 1, maxLength: 40 }).filter(isFieldValue);
    fc.assert(
      fc.property(fc.option(fc.oneof(ipv4, ipv6), { nil: undefined }), host, fc.constantFrom("http", "https"), (clientIp, h, proto) => {
        const parsed = parseForwarded(forwardedValue({ clientIp, host: h, proto }));
        expect(parsed.for).toBe(clientIp === undefined ? undefined : clientIp.includes(":") ? `[${clientIp}]` : clientIp);
        expect(parsed.host).toBe(h);
        expect(parsed.proto).toBe(proto);
        // The same host right after with the other scheme (the value of the last host is reused).
        const other = proto === "http" ? "https" : "http";
        expect(parseForwarded(forwardedValue({ clientIp, host: h, proto: other })).proto).toBe(other);
        expect(parseForwarded(forwardedValue({ clientIp: undefined, host: h, proto })).host).toBe(h);
      }),
    );
  });
});

/** A strict RFC 7239 forwarded-element parser, for the property above. */
function parseForwarded(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  const pair = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=(?:([!#$%&'*+\-.^_`|~0-9A-Za-z]+)|"((?:[^"\\]|\\.)*)")(;|$)/;
  let rest = value;
  while (rest.length > 0) {
    const m = pair.exec(rest);
    if (!m) throw new Error(`unparseable Forwarded: ${value}`);
    out[m[1]!] = m[2] ?? m[3]!.replace(/\\(.)/g, "$1");
    rest = rest.slice(m[0].length);
  }
  return out;
}

describe("request guard", () => {
  it("refuses names that are not tokens and values with control characters, and says which", () => {
    const req = new Request("https://a/", { headers: { "x-evil": "a\u0001b" } });
    expect(originRequestHeaders(req, edgeFacts(req, "rid"), false)).toEqual({ fault: "header x-evil holds a control character", name: "x-evil" });
    const named = new Request("https://a/", { headers: { "x\u00e9": "b" } });
    expect(originRequestHeaders(named, edgeFacts(named, "rid"), false)).toMatchObject({ fault: "a header name is not a valid token" });
  });

  it("lets tab and any non-ASCII code point through, refuses C0 controls and DEL (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 30 }), (value) => {
        const bad = [...value].some((ch) => {
          const c = ch.codePointAt(0)!;
          return (c < 0x20 && c !== 0x09) || c === 0x7f;
        });
        expect(isFieldValue(value)).toBe(!bad);
      }),
    );
    expect(isFieldValue("\u010d\u010a")).toBe(true);
  });

  it("takes exactly the RFC 9110 token characters in names (property)", () => {
    const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    fc.assert(
      fc.property(fc.string({ unit: "binary", minLength: 1, maxLength: 20 }), (name) => {
        expect(isFieldName(name)).toBe([...name].every((ch) => tchar.includes(ch)));
      }),
    );
    expect(isFieldName("")).toBe(false);
  });
});

describe("generated request ids", () => {
  it("are unique within an isolate and share its random prefix (no UUID per request)", () => {
    const ids = Array.from({ length: 1000 }, () => newRequestId());
    expect(new Set(ids).size).toBe(1000);
    expect(new Set(ids.map((id) => id.split("-")[0])).size).toBe(1);
    expect(ids[0]).toMatch(/^[0-9a-f]{16}-[0-9a-z]+$/);
  });
});

describe("origin fields as a plain record (what fetch() is given)", () => {
  // Reference: the Headers object the proxy built for every request before, field by field.
  const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"];
  const reference = (req: Request, rid: string): [string, string][] => {
    const named = new Set((req.headers.get("connection") ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean));
    const skip = new Set([...HOP, ...CLIENT_FORWARDING, "host", "x-request-id", "x-edgelb-test-cf", "x-edgelb-signature"]);
    const out = new Headers();
    for (const [k, v] of req.headers) if (!skip.has(k) && !named.has(k)) out.append(k, v);
    const facts = edgeFacts(req, rid);
    out.append("host", facts.host);
    if (facts.clientIp) {
      out.append("x-forwarded-for", facts.clientIp);
      out.append("x-real-ip", facts.clientIp);
    }
    out.append("x-forwarded-proto", facts.proto);
    out.append("x-forwarded-host", facts.host);
    out.append("forwarded", forwardedValue(facts));
    out.append("x-request-id", rid);
    return [...out];
  };

  it("holds exactly the fields the field-by-field Headers held, and converts to the same Headers", () => {
    const name = fc.constantFrom(...HOP, ...CLIENT_FORWARDING, "host", "x-request-id", "x-edgelb-signature", "cf-connecting-ip", "accept", "cookie", "x-trace-hop", "__proto__", "constructor", "123", "content-length");
    const value = fc.string({ minLength: 1, maxLength: 12 }).filter(isFieldValue).map((v) => v.trim()).filter((v) => v !== "");
    const connection = fc.array(fc.constantFrom("close", "keep-alive", "x-trace-hop", "Accept", "cookie", ""), { maxLength: 3 }).map((a) => a.join(","));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 12 }), fc.option(connection, { nil: undefined }), (given, conn) => {
        const h = new Headers({ host: "shop.example.com" });
        for (const [k, v] of given) h.append(k, v);
        if (conn !== undefined) h.set("connection", conn);
        const req = new Request("https://shop.example.com/x", { headers: h });
        const rec = originFields(req, edgeFacts(req, "rid"), false, true);
        if (isHeaderFault(rec)) throw new Error(rec.fault);
        // An own, enumerable property per field, whatever its name ("__proto__" included).
        expect(Object.getPrototypeOf(rec)).toBe(Object.prototype);
        const expected = reference(req, "rid");
        expect([...originHeadersOf(rec)]).toEqual(expected);
        // What fetch() does with the record: the same fields.
        expect([...new Headers(rec)]).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses what the request guard refuses, as originRequestHeaders does", () => {
    const req = new Request("https://shop.example.com/", { headers: { "x-evil": "a\u0001b" } });
    expect(originFields(req, edgeFacts(req, "rid"), false)).toEqual({ fault: "header x-evil holds a control character", name: "x-evil" });
    expect(isHeaderFault(originFields(req, edgeFacts(req, "rid"), false))).toBe(true);
  });
});

describe("origin fields as a copy of the client's Headers (fetch(), many fields)", () => {
  const HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authenticate", "proxy-authorization"];
  // Values compared without leading and trailing whitespace, which is not part of a field value (RFC 9110
  // §5.5): a repeated empty field reads ", " from the copy and "," from the record (whose value went through
  // a Headers once more), the same list either way.
  const sorted = (h: Headers) => [...h].map(([k, v]) => [k, v.trim()]).sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));

  it("holds exactly the record's fields and values, whatever the client sent (property)", () => {
    // Set-Cookie left out: a request carrying it is nonsense; the record joins it, a Headers copy keeps it apart.
    const name = fc.constantFrom(...HOP, ...CLIENT_FORWARDING, "host", "x-request-id", "x-edgelb-signature", "x-edgelb-test-cf", "cf-connecting-ip", "accept", "cookie", "x-trace-hop", "__proto__", "constructor", "123", "content-length", "user-agent");
    const value = fc.oneof(fc.constant(""), fc.string({ minLength: 1, maxLength: 12 }).filter(isFieldValue).map((v) => v.trim()));
    const token = fc.constantFrom("close", "keep-alive", "x-trace-hop", "Accept", "cookie", "X-Forwarded-Proto", "host", "", "cf-connecting-ip", "__proto__", "x-edgelb-signature", "x-forwarded-for", "forwarded", "x-request-id", "\u212Aeep-alive", "a b", '"');
    const connection = fc.array(token, { maxLength: 4 }).map((a) => a.join(","));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, value), { maxLength: 14 }),
        fc.option(connection, { nil: undefined }),
        fc.boolean(),
        fc.option(fc.constantFrom("origin.internal", "shop.example.com"), { nil: undefined }),
        fc.constantFrom("rid", "given-id"),
        (given, conn, forwarded, originHost, rid) => {
          const h = new Headers({ host: "shop.example.com" });
          for (const [k, v] of given) h.append(k, v);
          if (conn !== undefined) h.set("connection", conn);
          if (rid === "given-id") h.set("x-request-id", rid);
          const read = readClientFields(h);
          fc.pre(read.fault === undefined && read.upgrade === null);
          const facts = edgeFactsFrom(read, "https://shop.example.com/x", requestIdFrom(read), originHost);
          const rec = originFieldsFrom(read, facts, false, forwarded);
          if (isHeaderFault(rec)) throw new Error(rec.fault);
          const before = [...h];
          const copy = originHeadersFromClient(h, read, facts, forwarded);
          expect(sorted(copy)).toEqual(sorted(new Headers(rec)));
          // The client's own Headers are not touched.
          expect([...h]).toEqual(before);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("is chosen from about two copied fields, one more for each field it must delete", () => {
    const read = (fields: Record<string, string>) => readClientFields(new Headers(fields));
    // A load generator's request: Host alone, or Host and Connection: keep-alive.
    expect(copyClientHeaders(read({ host: "a" }))).toBe(false);
    expect(copyClientHeaders(read({ host: "a", connection: "keep-alive", accept: "*/*" }))).toBe(false);
    expect(copyClientHeaders(read({ host: "a", accept: "*/*", "user-agent": "x" }))).toBe(true);
    // Fields the edge sets replace the client's (no delete): Cloudflare's own X-Forwarded-Proto costs nothing.
    expect(copyClientHeaders(read({ host: "a", accept: "*/*", "user-agent": "x", "x-forwarded-proto": "https", "x-request-id": "r" }))).toBe(true);
    // A browser's request through Cloudflare.
    const browser = read({
      host: "shop.example.com", accept: "text/html", "accept-encoding": "gzip, br", "accept-language": "en", "user-agent": "Mozilla/5.0",
      cookie: "a=b", "sec-fetch-mode": "navigate", "sec-fetch-site": "none", "cf-connecting-ip": "203.0.113.7", "cf-ray": "1-FRA",
      "x-forwarded-proto": "https", "x-real-ip": "203.0.113.7", connection: "keep-alive",
    });
    expect(browser.copiedCount).toBe(9);
    expect(copyClientHeaders(browser)).toBe(true);
    // A request carrying Set-Cookie stays on the record (one joined line, as before).
    expect(copyClientHeaders(read({ host: "a", accept: "*/*", "user-agent": "x", "set-cookie": "a=b" }))).toBe(false);
  });
});

describe("the one pass over the client's fields", () => {
  it("reads what the field-by-field lookups read: request id, edge facts, WebSocket, an announced body", () => {
    const name = fc.constantFrom("host", "x-request-id", "cf-connecting-ip", "upgrade", "connection", "content-length", "transfer-encoding", "accept", "x-forwarded-for");
    const value = fc.oneof(
      fc.constantFrom("websocket", "WebSocket, h2c", "0", " 0 ", "12", "chunked", "abc-123", "203.0.113.9", " 2001:db8::1 ", "shop.example.com:8443", "a b"),
      fc.string({ minLength: 1, maxLength: 10 }).filter(isFieldValue).map((v) => v.trim()).filter((v) => v !== ""),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 10 }), fc.boolean(), (given, https) => {
        const h = new Headers();
        for (const [k, v] of given) h.append(k, v);
        const req = new Request(`${https ? "https" : "http"}://url.example.com:8080/p?q=1`, { headers: h });
        const read = readClientFields(req.headers);
        const given_id = req.headers.get("x-request-id");
        const id = requestIdFrom(read);
        // A valid client id is kept as is; otherwise both make a new one.
        if (given_id !== null && /^[\x21-\x7e]{1,200}$/.test(given_id)) expect(id).toBe(given_id);
        else expect(id).not.toBe(given_id);
        expect(edgeFactsFrom(read, req.url, id)).toEqual(edgeFacts(req, id));
        expect(edgeFactsFrom(read, req.url, id, "inner.example.com")).toEqual(edgeFacts(req, id, undefined, "inner.example.com"));
        expect(isWebSocketFrom(read)).toBe(isWebSocketRequest(req));
        const length = req.headers.get("content-length");
        expect(announcesBody(read)).toBe((length !== null && length.trim() !== "0") || req.headers.has("transfer-encoding"));
      }),
      { numRuns: 300 },
    );
  });
});
