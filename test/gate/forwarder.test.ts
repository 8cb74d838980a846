// The gate's raw-socket forwarder (issue 15, the gate's CPU): what a client and an app see through it.
// Requests are parsed strictly and refused when two parsers could read them differently, bodies arrive
// whole however they are cut, pipelined requests are answered in order, and the app's answer is
// relayed as sent (its framing followed to know where it ends). Addresses: 127.101.1.x (gt15's range).
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, metricsText, metricValue, nodeName, SECRET_1, signature, type TestGate } from "./harness.ts";

const A = "127.101.1.11";
let gate: TestGate;
/** What the app (an http server) received: method, url, headers, body. */
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string; complete: boolean }[] = [];
let app: http.Server;
let appPort: number;

beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  app = http.createServer((req, res) => {
    const entry = { method: req.method!, url: req.url!, headers: req.headers, body: "", complete: false };
    seen.push(entry);
    req.setEncoding("latin1");
    req.on("data", (d: string) => (entry.body += d));
    req.on("end", () => {
      entry.complete = true;
      res.setHeader("x-app", "1");
      res.end(`${req.method} ${req.url} ${entry.body.length}`);
    });
  });
  await new Promise<void>((r) => app.listen(0, A, r));
  appPort = (app.address() as AddressInfo).port;
});
afterAll(async () => {
  await gate?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
});

const sign = (method: string, target: string, port = appPort) => signature({ node: nodeName(A), nodePort: port, method, target });

/** Writes the pieces one after another (each its own write) and reads until the gate closes or `done` says enough. */
function exchange(pieces: (string | Buffer)[], done: (text: string) => boolean = () => false, address = A, port = gate.port): Promise<{ text: string; closed: boolean; reset: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, address);
    let text = "";
    let reset = false;
    socket.setEncoding("latin1");
    socket.on("connect", async () => {
      for (const p of pieces) {
        if (socket.destroyed) return;
        socket.write(p);
        await new Promise((r) => setImmediate(r));
      }
    });
    socket.on("data", (d: string) => {
      text += d;
      if (done(text)) {
        socket.destroy();
        resolve({ text, closed: false, reset });
      }
    });
    socket.on("error", () => (reset = true));
    socket.on("close", () => resolve({ text, closed: true, reset }));
  });
}

const responses = (text: string) => text.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean);

describe("the gate's forwarder", () => {
  it("refuses framing that two parsers could read differently, even signed: 400, connection closed, nothing reaches the app", async () => {
    const before = seen.length;
    const heads = [
      (s: string) => `POST / HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${s}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
      (s: string) => `POST / HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${s}\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
      (s: string) => `POST / HTTP/1.1\nHost: app.example.com\n${SIGNATURE_HEADER}: ${s}\nContent-Length: 1\n\nx`,
      (s: string) => `POST / HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${s}\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ];
    for (const head of heads) {
      const res = await exchange([head(await sign("POST", "/"))]);
      expect(res.text).toMatch(/^HTTP\/1\.1 400 /);
      expect(res.closed).toBe(true);
    }
    expect(seen.length).toBe(before);
  });

  it("a bad chunk size in a signed body: 400 and closed, and the app never gets a complete request", async () => {
    const before = seen.length;
    const res = await exchange([`POST /chunks HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("POST", "/chunks")}\r\nTransfer-Encoding: chunked\r\n\r\n`, "3\r\nabc\r\n", "zz\r\nGET /admin HTTP/1.1\r\n\r\n"]);
    expect(res.text).toMatch(/^HTTP\/1\.1 400 /);
    expect(res.closed).toBe(true);
    expect(seen.slice(before).filter((s) => s.complete)).toEqual([]);
    expect(seen.slice(before).map((s) => s.url)).not.toContain("/admin");
  });

  it("answers pipelined signed requests in order, each reaching the app once", async () => {
    const before = seen.length;
    const one = `GET /one HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", "/one")}\r\n\r\n`;
    const two = `POST /two HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("POST", "/two")}\r\nContent-Length: 3\r\n\r\nabc`;
    const three = `GET /three HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", "/three")}\r\nConnection: close\r\n\r\n`;
    const res = await exchange([one + two + three]);
    const answers = responses(res.text);
    expect(answers.map((a) => a.slice(a.lastIndexOf("\r\n\r\n") + 4))).toEqual(["GET /one 0", "POST /two 3", "GET /three 0"]);
    expect(res.closed).toBe(true);
    expect(seen.slice(before).map((s) => s.url)).toEqual(["/one", "/two", "/three"]);
  });

  it("bodies trickled a byte at a time arrive whole: Content-Length as sent, chunked decoded and chunked again", async () => {
    const before = seen.length;
    const body = "hello, trickled world";
    const sized = `POST /sized HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("POST", "/sized")}\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r1 = await exchange([sized, ...body], (t) => t.endsWith(`POST /sized ${body.length}`));
    expect(r1.text).toMatch(/^HTTP\/1\.1 200 /);
    const chunkedBody = `5;ext=1\r\nhello\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\nX-Trailer: t\r\n\r\n`;
    const chunked = `POST /chunked HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("POST", "/chunked")}\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const r2 = await exchange([chunked, ...chunkedBody], (t) => t.endsWith(`POST /chunked ${body.length}`));
    expect(r2.text).toMatch(/^HTTP\/1\.1 200 /);
    const [s1, s2] = seen.slice(before);
    expect(s1).toMatchObject({ body, complete: true });
    expect(s1!.headers["content-length"]).toBe(String(body.length));
    expect(s2).toMatchObject({ body, complete: true });
    expect(s2!.headers["transfer-encoding"]).toBe("chunked");
  });

  it("a signed head cut at any bytes is read as the same request", async () => {
    const sig = await sign("GET", "/cut");
    const head = `GET /cut HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${sig}\r\nConnection: close\r\n\r\n`;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: head.length - 1 }), { maxLength: 4 }), async (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), head.length];
        // Each run must be signed anew: the gate refuses a nonce it has seen.
        const fresh = head.replace(sig, await sign("GET", "/cut"));
        const res = await exchange(at.slice(1).map((end, i) => fresh.slice(at[i], end)));
        expect(res.text).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nGET \/cut 0$/);
      }),
      { numRuns: 15 },
    );
  });
});

describe("the app's answer through the forwarder", () => {
  let raw: net.Server;
  let rawPort: number;
  let connections = 0;
  /** What the raw app answers to the next request. */
  let answer: (socket: net.Socket) => void = () => undefined;

  beforeAll(async () => {
    raw = net.createServer((socket) => {
      connections++;
      let buf = "";
      socket.setEncoding("latin1");
      socket.on("data", (d: string) => {
        buf += d;
        while (buf.includes("\r\n\r\n")) {
          buf = buf.slice(buf.indexOf("\r\n\r\n") + 4);
          answer(socket);
        }
      });
      socket.on("error", () => socket.destroy());
    });
    await new Promise<void>((r) => raw.listen(0, A, r));
    rawPort = (raw.address() as AddressInfo).port;
  });
  afterAll(async () => new Promise((r) => raw.close(r)));

  const get = async (target: string, close = true) =>
    `GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", target, rawPort)}\r\n${close ? "Connection: close\r\n" : ""}\r\n`;

  it("relays the body as the app framed it (chunk extensions, trailers) and drops only connection fields and a forged gate marker", async () => {
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Edgelb-Gate: refused\r\nKeep-Alive: timeout=5\r\nX-Case: Kept\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n");
    const res = await exchange([await get("/framed")]);
    expect(res.text).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Case: Kept\r\nconnection: close\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n");
  });

  it("an answer cut short (Content-Length 10, 4 bytes, then closed): the edge's connection is cut, counted as a reset", async () => {
    const resets = metricValue(await metricsText(gate), `edgelb_gate_upstream_errors_total{kind="reset"}`);
    answer = (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd");
    const res = await exchange([await get("/short")]);
    expect(res.closed).toBe(true);
    // The edge got the head and the 4 bytes, never a complete answer: it cannot mistake it for one.
    expect(res.text).toMatch(/\r\n\r\nabcd$/);
    expect(metricValue(await metricsText(gate), `edgelb_gate_upstream_errors_total{kind="reset"}`)).toBe(resets + 1);
  });

  it("reuses the app's connection only when its answer ended cleanly and did not say close", async () => {
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    const first = connections;
    for (let i = 0; i < 3; i++) expect((await exchange([await get(`/keep${i}`)])).text).toMatch(/\r\n\r\nok$/);
    expect(connections).toBe(first + 1);
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    for (let i = 0; i < 2; i++) expect((await exchange([await get(`/close${i}`)])).text).toMatch(/\r\n\r\nok$/);
    // The first of these reused the kept connection; the second needed a new one.
    expect(connections).toBe(first + 2);
    // Bytes after the end of an answer: that connection is out of step and is not reused either.
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil");
    expect((await exchange([await get("/extra")])).text).toMatch(/\r\n\r\nok$/);
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    expect((await exchange([await get("/after-extra")])).text).toMatch(/\r\n\r\nok$/);
    expect(connections).toBe(first + 4);
  });

  it("a body delimited by the app's close is relayed whole, and the edge's connection closes after it", async () => {
    answer = (s) => {
      s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil");
      setImmediate(() => s.end(" the end"));
    };
    const res = await exchange([await get("/eof", false)]);
    expect(res.closed).toBe(true);
    expect(res.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n\r\nuntil the end$/);
  });
});
