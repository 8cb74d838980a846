// The gate's relay of the app's answer (issue 15, the gate's CPU): the common answer (CRLF head, one
// Content-Length) takes a one-pass path and one write; what the edge sees must not change with it.
// Addresses: 127.113.1.x (gt15's range this session).
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, metricsText, metricValue, nodeName, SECRET_1, signature, type TestGate } from "./harness.ts";

const A = "127.113.1.11";
let gate: TestGate;
let app: net.Server;
let appPort: number;
let connections = 0;
/** What the app answers to each request it reads. */
let answer: (socket: net.Socket) => void = () => undefined;

beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  app = net.createServer((socket) => {
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
  await new Promise<void>((r) => app.listen(0, A, r));
  appPort = (app.address() as AddressInfo).port;
});
afterAll(async () => {
  await gate?.close();
  await new Promise((r) => app?.close(r));
});

const get = async (target: string, close: boolean) =>
  `GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await signature({ node: nodeName(A), nodePort: appPort, target })}\r\n${close ? "Connection: close\r\n" : ""}\r\n`;

/** Sends the bytes on one connection and reads until the gate closes it; "stalled" if it has not within 3 s. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(gate.port, A, () => socket.write(bytes));
    let text = "";
    const stalled = setTimeout(() => {
      socket.destroy();
      resolve(`stalled after: ${text}`);
    }, 3_000);
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(stalled);
      resolve(text);
    });
  });
}

describe("the app's answer through the gate", () => {
  it("an empty answer (Content-Length: 0) ends its exchange at once: the next request on the connection is answered, the app's connection reused", async () => {
    for (const eol of ["\r\n", "\n"]) {
      // CRLF takes the one-pass relay, bare LF the full parser: both must see the answer complete.
      answer = (s) => s.write(`HTTP/1.1 201 Created${eol}Content-Length: 0${eol}X-App: 1${eol}${eol}`);
      const first = connections;
      const text = await exchange((await get("/empty", false)) + (await get("/empty", true)));
      expect(text).not.toMatch(/^stalled/);
      expect(text.match(/HTTP\/1\.1 201 Created\r\n/g)).toHaveLength(2);
      expect(text.endsWith("connection: close\r\n\r\n")).toBe(true);
      expect(connections).toBeLessThanOrEqual(first + 1);
    }
  });

  it("a body that arrives in pieces after its head is relayed whole, and the app's connection is reused after it", async () => {
    answer = (s) => {
      s.write("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\nhel");
      setImmediate(() => s.write("lo wo"));
      setTimeout(() => s.write("rld"), 5);
    };
    const first = connections;
    const text = await exchange((await get("/pieces", false)) + (await get("/pieces", true)));
    expect(text).toBe("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello worldHTTP/1.1 200 OK\r\nContent-Length: 11\r\nconnection: close\r\n\r\nhello world");
    expect(connections).toBeLessThanOrEqual(first + 1);
  });

  it("a chunked answer (Node's http server's usual one), whole or in pieces, is relayed as sent and the app's connection reused after it", async () => {
    answer = (s) => {
      s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n5\r\nhel");
      setImmediate(() => s.write("lo\r\n6\r\n world\r\n"));
      setTimeout(() => s.write("0\r\n\r\n"), 5);
    };
    const first = connections;
    const text = await exchange((await get("/pieces", false)) + (await get("/pieces", true)));
    const body = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    expect(text).toBe(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body}HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n${body}`);
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    expect(await exchange((await get("/whole", false)) + (await get("/whole", true)))).toBe("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nconnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    expect(connections).toBeLessThanOrEqual(first + 1);
  });

  it("keeps the app's fields byte for byte (spacing, case, repeats, obs-text), drops its connection fields and any forged gate marker", async () => {
    answer = (s) => s.write("HTTP/1.1 418 I'm a teapot\r\nX-Edgelb-Gate-Cause: refused\r\nSet-Cookie: a=1\r\nset-cookie:b=2  \r\nX-Name: caf\xe9\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\ncontent-length: 3\r\n\r\ntea", "latin1");
    expect(await exchange(await get("/teapot", true))).toBe("HTTP/1.1 418 I'm a teapot\r\nSet-Cookie: a=1\r\nset-cookie:b=2  \r\nX-Name: caf\xe9\r\ncontent-length: 3\r\nconnection: close\r\n\r\ntea");
  });
});

describe("the gate's metrics", () => {
  it("count a forwarded request once and report the replay cache's size at the scrape", async () => {
    const before = await metricsText(gate);
    answer = (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    expect(await exchange(await get("/counted", true))).toMatch(/\r\n\r\nok$/);
    const after = await metricsText(gate);
    const forwarded = `edgelb_gate_forwarded_total{kind="http"}`;
    expect(metricValue(after, forwarded)).toBe(metricValue(before, forwarded) + 1);
    expect(metricValue(after, "edgelb_gate_replay_cache_entries")).toBe(metricValue(before, "edgelb_gate_replay_cache_entries") + 1);
    expect(metricValue(after, "edgelb_gate_request_duration_seconds_count")).toBe(metricValue(before, "edgelb_gate_request_duration_seconds_count") + 1);
  });
});
