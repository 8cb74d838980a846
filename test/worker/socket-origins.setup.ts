// Loopback origins for the socket transport's tests, started in Node before
// the worker project runs (tests inside workerd reach them over TCP):
// - three simulated nodes (127.0.93.11-13) serving one NodePort, plus a dead
//   address (127.0.93.14) where nothing listens;
// - a raw TCP origin (127.0.93.20) answering `/raw/<case>` with hand-written,
//   often malformed, bytes;
// - a WebSocket origin (127.0.93.21) that echoes and, on command, fragments,
//   pings and closes;
// - a control endpoint (127.0.93.1) through which tests change a node's
//   behaviour and read what the origins observed;
// - a recording origin (127.11.0.20) that keeps every byte each connection
//   sent, by `/rec/<id>`, and answers as the query says (see startRecorder).
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { WebSocketServer } from "ws";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { jsonServer } from "./json-server.ts";

const NET = "127.0.93";

export interface SocketOrigins {
  nodes: { name: string; address: string }[];
  nodePort: number;
  /** An address where nothing listens on nodePort (connection refused). */
  deadAddress: string;
  raw: { address: string; port: number };
  ws: { address: string; port: number };
  /** Records the first byte each connection sends (0x16 opens a TLS handshake), then hangs up. */
  tlsProbe: { address: string; port: number };
  /** An HTTP origin on the IPv6 loopback, answering with the Host it received. */
  v6: { address: string; port: number };
  /** Records the bytes of each connection under the id in its path `/rec/<id>`; read them at `${control}/rec/<id>`. */
  recorder: { address: string; port: number };
  control: string;
}

/** What the recording origin saw on one connection (base64), and whether it has closed. */
export interface Recording {
  raw: string;
  closed: boolean;
}

declare module "vitest" {
  export interface ProvidedContext {
    socketOrigins: SocketOrigins;
  }
}

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

interface RawRequest {
  head: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  /** Raw bytes of head and body as received. */
  raw: Buffer;
}

interface RawStats {
  infiniteSent: number;
  infiniteOpen: boolean;
  infiniteConnections: number;
  /** Open or not, by the `id` query parameter of the request (`/raw/infinite?id=…`). */
  infiniteById: Record<string, boolean>;
  /** `/raw/keep-open-whole?id=…`: open or not, by id. */
  keepOpenById: Record<string, boolean>;
}

const stats: RawStats = { infiniteSent: 0, infiniteOpen: false, infiniteConnections: 0, infiniteById: {}, keepOpenById: {} };

/** An endless body (close-delimited unless `framing` says otherwise), sent only as fast as the socket drains. */
function infinite(s: net.Socket, framing: string, req: RawRequest): void {
  const id = new URLSearchParams(req.path.split("?")[1] ?? "").get("id");
  if (id !== null) stats.infiniteById[id] = true;
  stats.infiniteSent = 0;
  stats.infiniteOpen = true;
  stats.infiniteConnections++;
  s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n${framing}\r\n`);
  const block = Buffer.alloc(64 * 1024, 0x62);
  const pump = () => {
    while (!s.destroyed) {
      stats.infiniteSent += block.length;
      if (!s.write(block)) return void s.once("drain", pump);
    }
  };
  s.on("close", () => {
    stats.infiniteOpen = false;
    if (id !== null) stats.infiniteById[id] = false;
  });
  pump();
}

/** The raw origin's `pattern` body: byte i is i * 7 mod 251 (no period a framing bug could hide in). */
function patternBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7) % 251;
  return out;
}

/** Canned answers; each gets the socket and the parsed request. */
const RAW_CASES: Record<string, (s: net.Socket, req: RawRequest) => void> = {
  "bad-status": (s) => s.end("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"),
  "not-http": (s) => s.end("SSH-2.0-OpenSSH_9.6\r\n"),
  "oversized-head": (s) => {
    s.write("HTTP/1.1 200 OK\r\n");
    for (let i = 0; i < 100; i++) s.write(`X-Filler-${i}: ${"x".repeat(1000)}\r\n`);
    s.end("Content-Length: 0\r\n\r\n");
  },
  "conflicting-length": (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!"),
  "bad-chunk": (s) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n"),
  "truncated-length": (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"),
  "truncated-chunked": (s) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
  "close-now": (s) => s.end(),
  // A small chunked answer complete in one write (head, three chunks, the last chunk, a trailer).
  "small-chunked": (s) =>
    s.end(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
        "9\r\n{\"a\":\"b\",\r\n4;ext=1\r\n\"c\":\r\n3\r\n42}\r\n0\r\nX-Sum: 7\r\n\r\n",
    ),
  // Bytes above 0x7F (obs-text): Latin-1 in the reason phrase, UTF-8 in a field value.
  "obs-text": (s) =>
    s.end(
      Buffer.concat([
        Buffer.from("HTTP/1.1 200 Tr\xe8s bien\r\nContent-Disposition: attachment; filename=", "latin1"),
        Buffer.from("naïve-€.txt\r\nContent-Length: 2\r\n\r\nok", "utf8"),
      ]),
    ),
  reset: (s) => s.resetAndDestroy(),
  silent: () => {},
  // A node killed while the request is in flight: the connection is reset, no answer.
  killed: (s) => s.destroy(),
  // Ignores `Connection: close`: the body is complete but the connection stays open.
  "keep-open": (s) => {
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
    setTimeout(() => s.write("lo"), 50);
  },
  // The same, whole in one write; its connection is tracked by `id` (keepOpenById) until the edge closes it.
  "keep-open-whole": (s, req) => {
    const id = new URLSearchParams(req.path.split("?")[1] ?? "").get("id");
    if (id !== null) {
      stats.keepOpenById[id] = true;
      s.on("close", () => (stats.keepOpenById[id] = false));
    }
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  },
  // An event stream that sends one event and then goes quiet for good.
  "stall-chunked": (s) =>
    s.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nd\r\ndata: first\n\n\r\n"),
  // A chunked body that is not an event stream, stalling after its first chunk.
  "stall-chunked-json": (s) => s.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[1\r\n"),
  "stall-body": (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes!"),
  // A large Content-Length body (past the native-pipe threshold) that stalls after its first bytes.
  "stall-large": (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\nten bytes!"),
  interim: (s) =>
    s.end(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal",
    ),
  // A large Content-Length body (past the native-pipe threshold) cut short: 256 KiB of 1 MiB.
  "truncated-large": (s) => {
    s.write("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n");
    s.end(Buffer.alloc(256 * 1024, 0x61));
  },
  // Every hop-by-hop field (and one its Connection names) and the gate's marker: none may reach a client.
  "hop-fields": (s, req) =>
    s.end(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: secret\r\n" +
        "Proxy-Connection: keep-alive\r\nProxy-Authenticate: Basic realm=x\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nTE: trailers\r\n" +
        "X-Edgelb-Gate: refused\r\nX-Kept: yes\r\n" +
        (req.method === "HEAD" ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: 2\r\n\r\nok"),
    ),
  "close-delimited": (s) => s.end("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the origin closes"),
  // A valid response dribbled out a few bytes at a time, chunked, with trailers.
  dribble: (s) => {
    const body =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nTrailer: X-Sum\r\n\r\n" +
      "6\r\nhello \r\n6;x=y\r\nworld!\r\n0\r\nX-Sum: 42\r\n\r\n";
    let i = 0;
    const next = () => {
      if (s.destroyed) return;
      if (i >= body.length) return void s.end();
      s.write(body.slice(i, i + 3));
      i += 3;
      setTimeout(next, 1);
    };
    next();
  },
  // The exact bytes the transport put on the wire, as the response body.
  "echo-raw": (s, req) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${req.raw.length}\r\n\r\n`);
    s.end(req.raw);
  },
  // `?bytes=N&framing=length|close`: N bytes of patternBytes (byte i = i * 7 mod 251), the head
  // and the first bytes in one write (so they arrive in one read), then the rest; then the origin closes.
  pattern: (s, req) => {
    const q = new URLSearchParams(req.path.split("?")[1] ?? "");
    const body = patternBytes(Number(q.get("bytes")));
    const framing = q.get("framing") === "close" ? "" : `Content-Length: ${body.length}\r\n`;
    s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\n${framing}\r\n`), body.subarray(0, 1000)]));
    setTimeout(() => s.end(body.subarray(1000)), 5);
  },
  // An endless body sent only as fast as the socket drains: measures backpressure.
  infinite: (s, req) => infinite(s, "", req),
  // The same with a Content-Length it never reaches (1 TiB): the natively piped Content-Length path.
  "infinite-length": (s, req) => infinite(s, "Content-Length: 1099511627776\r\n", req),
  "ws-refuse": (s) => s.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nforbidden"),
  "ws-bad-accept": (s) =>
    s.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ),
  "ws-extension": (s, req) =>
    s.write(wsAccept(req, "Sec-WebSocket-Extensions: permessage-deflate\r\n")),
  // Handshake, one text frame, then a masked frame (servers must not mask).
  "ws-masked-frame": (s, req) => {
    s.write(wsAccept(req));
    s.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // "hi"
    s.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]));
  },
  // Handshake, then never reads again: what the worker sends piles up.
  "ws-deaf": (s, req) => {
    s.write(wsAccept(req));
    s.pause();
  },
  // Handshake, one text frame, then TCP goes away without a close frame.
  "ws-drop": (s, req) => {
    s.write(wsAccept(req));
    s.write(Buffer.from([0x81, 0x03, 0x62, 0x79, 0x65]), () => setTimeout(() => s.destroy(), 20));
  },
};

function wsAccept(req: RawRequest, extra = ""): string {
  const accept = createHash("sha1")
    .update((req.headers["sec-websocket-key"] ?? "") + WS_GUID)
    .digest("base64");
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;
}

/** Reads one request (head, then the body by its framing) and hands it to its case. */
function startRawOrigin(address: string): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let req: RawRequest | undefined;
    let answered = false;
    const tryAnswer = () => {
      if (answered) return;
      if (!req) {
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buf.subarray(0, end).toString("latin1");
        const [requestLine = "", ...lines] = head.split("\r\n");
        const [method = "", target = ""] = requestLine.split(" ");
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const c = l.indexOf(":");
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        req = { head, method, path: target, headers, raw: buf };
      }
      req.raw = buf;
      const headEnd = buf.indexOf("\r\n\r\n") + 4;
      const body = buf.subarray(headEnd);
      const cl = req.headers["content-length"];
      if (cl !== undefined && body.length < Number(cl)) return;
      if (req.headers["transfer-encoding"] === "chunked" && !body.toString("latin1").endsWith("0\r\n\r\n")) return;
      answered = true;
      const name = req.path.replace(/^\/raw\//, "").split("?")[0] ?? "";
      const handler = RAW_CASES[name];
      if (!handler) return void s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n`);
      handler(s, req);
    };
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      tryAnswer();
    });
  });
  return listen(server, address);
}

/**
 * The recording origin. Each connection's bytes are kept under the id in the
 * first request's path (`/rec/<id>`), all of them, until it closes: a
 * smuggled second request shows up there. The query says when and what to answer:
 * - (default) `200`, empty, as soon as the first head is complete;
 * - `answer=body`: `200` with `{"bodyBytes":n}` once the whole body arrived
 *   (Content-Length, or chunked up to its last chunk);
 * - `answer=never`: nothing; with `pause=1` it also stops reading after the head;
 * - `answer=script&b=<base64url>&split=<n>`: those bytes in writes of n bytes, then close.
 */
function startRecorder(address: string, recordings: Map<string, { raw: Buffer; closed: boolean }>): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    let rec: { raw: Buffer; closed: boolean } | undefined;
    let query = new URLSearchParams();
    let answered = false;
    let buf = Buffer.alloc(0);
    s.on("close", () => {
      if (rec) rec.closed = true;
    });
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const headEnd = buf.indexOf("\r\n\r\n");
      if (headEnd === -1) return;
      if (!rec) {
        const line = buf.subarray(0, buf.indexOf("\r\n")).toString("latin1");
        const target = line.split(" ")[1] ?? "";
        const url = new URL(target, "http://recorder");
        query = url.searchParams;
        rec = { raw: buf, closed: false };
        recordings.set(url.pathname.replace(/^\/rec\//, ""), rec);
      }
      rec.raw = buf;
      if (answered) return;
      const mode = query.get("answer") ?? "head";
      if (mode === "never") {
        if (query.get("pause") === "1") s.pause();
        return;
      }
      if (mode === "script") {
        answered = true;
        const bytes = Buffer.from(query.get("b") ?? "", "base64url");
        const split = Math.max(1, Number(query.get("split") ?? bytes.length) || 1);
        const writeFrom = (i: number) => {
          if (s.destroyed) return;
          if (i >= bytes.length) return void s.end();
          s.write(bytes.subarray(i, i + split), () => setImmediate(() => writeFrom(i + split)));
        };
        return writeFrom(0);
      }
      if (mode === "body") {
        const head = buf.subarray(0, headEnd).toString("latin1").toLowerCase();
        const body = buf.subarray(headEnd + 4);
        const cl = /\r\ncontent-length: *(\d+)/.exec(head);
        let bodyBytes: number | undefined;
        if (cl) bodyBytes = body.length >= Number(cl[1]) ? Number(cl[1]) : undefined;
        else if (head.includes("\r\ntransfer-encoding: chunked")) bodyBytes = dechunkedLength(body);
        else bodyBytes = 0;
        if (bodyBytes === undefined) return;
        answered = true;
        const json = JSON.stringify({ bodyBytes });
        // One request per connection: a fetch() client must not reuse it.
        return void s.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${json.length}\r\n\r\n${json}`);
      }
      answered = true;
      // Stays open (every later byte is recorded), but a fetch() client must not reuse it.
      s.write("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    });
  });
  return listen(server, address);
}

/** Data bytes of a complete chunked body, or undefined while its last chunk has not arrived. */
function dechunkedLength(body: Buffer): number | undefined {
  let i = 0;
  let total = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", i);
    if (eol === -1) return undefined;
    const size = parseInt(body.subarray(i, eol).toString("latin1"), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) return body.subarray(eol, eol + 4).toString("latin1") === "\r\n\r\n" ? total : undefined;
    total += size;
    i = eol + 2 + size + 2;
    if (i > body.length) return undefined;
  }
}

interface WsObserved {
  lastClose: { code: number; reason: string } | null;
  /** Pings the origin received (the relay's keepalive). */
  pings: number;
}

async function startWsOrigin(address: string, observed: WsObserved): Promise<{ server: http.Server; wss: WebSocketServer }> {
  const server = http.createServer((_req, res) => res.writeHead(426).end("WebSocket only\n"));
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => [...protocols][0] ?? false,
  });
  wss.on("connection", (ws, upgrade) => {
    ws.on("close", (code, reason) => {
      observed.lastClose = { code, reason: reason.toString() };
    });
    ws.on("pong", (payload) => ws.send(`pong:${payload.toString()}`));
    ws.on("ping", () => observed.pings++);
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      let m: RegExpExecArray | null;
      if ((m = /^fragment:(text|binary):(\d+):(\d+)$/.exec(text))) {
        const [frames, bytes] = [Number(m[2]), Number(m[3])];
        const payload = Buffer.alloc(bytes);
        for (let i = 0; i < bytes; i++) payload[i] = m[1] === "text" ? 0x61 + (i % 26) : i % 251;
        const step = Math.ceil(bytes / frames);
        for (let i = 0; i < frames; i++) {
          const part = payload.subarray(i * step, Math.min(bytes, (i + 1) * step));
          ws.send(part, { binary: m[1] === "binary", fin: i === frames - 1 });
          // Control frames may sit between fragments of a message.
          if (i === 0) ws.ping("mid-message");
        }
      } else if ((m = /^close:(\d{4})$/.exec(text))) {
        ws.close(Number(m[1]), "bye from origin");
      } else if (text === "ping") {
        ws.ping("are you there");
      } else if (text === "handshake") {
        ws.send(JSON.stringify({ headers: upgrade.headers, url: upgrade.url, protocol: ws.protocol }));
      } else {
        ws.send(data, { binary: isBinary });
      }
    });
  });
  return { server: await listen(server, address), wss };
}

function listen<T extends net.Server>(server: T, address: string, port = 0): Promise<T> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, address, () => resolve(server));
  });
}

export default async function setup(project: TestProject) {
  const nodes = await Promise.all(
    ["a", "b", "c"].map((n, i) => SimNode.start({ name: `sock-${n}`, address: `${NET}.${11 + i}`, healthzPort: 0 })),
  );
  const nodePort = await nodes[0]!.servePort(0);
  await Promise.all(nodes.slice(1).map((n) => n.servePort(nodePort)));
  const raw = await startRawOrigin(`${NET}.20`);
  const rawSockets = new Set<net.Socket>();
  raw.on("connection", (s) => {
    rawSockets.add(s);
    s.on("close", () => rawSockets.delete(s));
  });
  const recordings = new Map<string, { raw: Buffer; closed: boolean }>();
  const recorder = await startRecorder("127.11.0.20", recordings);
  const recorderSockets = new Set<net.Socket>();
  recorder.on("connection", (s) => {
    recorderSockets.add(s);
    s.on("close", () => recorderSockets.delete(s));
  });
  const observed: WsObserved = { lastClose: null, pings: 0 };
  const ws = await startWsOrigin(`${NET}.21`, observed);

  const v6 = await listen(
    http.createServer((req, res) => res.writeHead(200, { "content-type": "text/plain" }).end(`host=${req.headers.host}`)),
    "::1",
  );

  const firstBytes: number[] = [];
  const tlsProbe = await listen(
    net.createServer((s) => {
      s.on("error", () => {});
      s.once("data", (d: Buffer) => {
        firstBytes.push(d[0]!);
        s.destroy();
      });
    }),
    `${NET}.22`,
  );

  const control = jsonServer((req, body, json) => {
    const m = /^\/nodes\/([^/]+)\/behavior$/.exec(req.url ?? "");
    if (m && req.method === "POST") {
      const node = nodes.find((n) => n.name === m[1]);
      if (!node) return json(404, { error: "no such node" });
      node.setBehavior(JSON.parse(body)).then(
        () => json(200, { ok: true }),
        (e: Error) => json(500, { error: e.message }),
      );
      return;
    }
    if (req.url === "/raw/stats") return json(200, stats);
    if (req.url === "/ws/observed") return json(200, observed);
    const rec = /^\/rec\/([^/?]+)$/.exec(req.url ?? "");
    if (rec) {
      const r = recordings.get(rec[1]!);
      return r ? json(200, { raw: r.raw.toString("base64"), closed: r.closed }) : json(404, { error: "nothing recorded" });
    }
    if (req.url === "/tls-probe") return json(200, { firstBytes });
    json(404, { error: "unknown control path" });
  });
  await listen(control, `${NET}.1`);

  const port = (s: net.Server) => (s.address() as AddressInfo).port;
  project.provide("socketOrigins", {
    nodes: nodes.map((n) => ({ name: n.name, address: n.address })),
    nodePort,
    deadAddress: `${NET}.14`,
    raw: { address: `${NET}.20`, port: port(raw) },
    ws: { address: `${NET}.21`, port: port(ws.server) },
    v6: { address: "::1", port: port(v6) },
    tlsProbe: { address: `${NET}.22`, port: port(tlsProbe) },
    recorder: { address: "127.11.0.20", port: port(recorder) },
    control: `http://${NET}.1:${port(control)}`,
  });

  return async () => {
    for (const s of rawSockets) s.destroy();
    for (const s of recorderSockets) s.destroy();
    await Promise.all([
      ...nodes.map((n) => n.stop()),
      new Promise((r) => raw.close(r)),
      new Promise((r) => tlsProbe.close(r)),
      new Promise((r) => recorder.close(r)),
      new Promise((r) => {
        v6.closeAllConnections();
        v6.close(r);
      }),
      new Promise((r) => {
        for (const c of ws.wss.clients) c.terminate();
        ws.wss.close();
        ws.server.closeAllConnections();
        ws.server.close(r);
      }),
      new Promise((r) => {
        control.closeAllConnections();
        control.close(r);
      }),
    ]);
  };
}
