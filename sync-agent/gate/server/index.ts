// The node gate's internet-facing listener. Every request must carry a valid
// edge signature (verify/); anything else gets a bare 403 and the connection
// is closed without reading its body. A signed request loses the signature
// header and goes to the NodePort it names, on this node, streaming both ways
// (WebSocket upgrades included) over keep-alive connections. Unsigned
// `GET /healthz` says whether a key is loaded.
//
// Against a hostile peer: node's HTTP parser refuses Content-Length together
// with Transfer-Encoding and conflicting lengths (400), the body is re-framed
// towards the NodePort (no framing header is passed through as sent), request
// heads must arrive within headersTimeoutMs, and only origin-form targets with
// exactly one Host pass.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { GATE_REFUSED, GATE_REFUSED_HEADER, GATE_UPSTREAM_UNREACHABLE, SIGNATURE_HEADER } from "../../../worker/snapshot/signing.ts";
import type { GateMetrics, UpstreamErrorKind } from "../metrics/index.ts";
import type { ReplayCache } from "../replay/index.ts";
import { hasSignature, verify, type KeyLookup, type RejectReason } from "../verify/index.ts";

export interface GateServerOptions {
  keys: KeyLookup;
  replay: ReplayCache;
  metrics: GateMetrics;
  log: Logger;
  /** Where the NodePorts are reached: "127.0.0.1" (localhost mode) or the node's own address. */
  upstreamHost: string;
  /** This node's name: only requests signed for it pass. */
  nodeName: string;
  /** This node's edgelb cluster: only requests signed for it pass. */
  clusterName: string;
  maxSkewS: number;
  ports: { min: number; max: number };
  /** A request head must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** Idle keep-alive connections from the edge close after this. */
  keepAliveTimeoutMs: number;
  /** Connecting to the NodePort gives up after this. */
  connectTimeoutMs: number;
  /** Open connections at most (further ones are refused by the kernel backlog / closed at once). */
  maxConnections?: number;
  now?: () => number;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);
const FORBIDDEN = "forbidden\n";
const RAW_FORBIDDEN = `HTTP/1.1 403 Forbidden\r\n${GATE_REFUSED_HEADER}: ${GATE_REFUSED}\r\ncontent-type: text/plain\r\ncontent-length: ${FORBIDDEN.length}\r\nconnection: close\r\n\r\n${FORBIDDEN}`;

/**
 * Sends the last bytes and then lets go of the socket for good. A plain end() only half-closes: a
 * peer that never sends its FIN (allowHalfOpen) would pin the file descriptor forever. Destroyed once
 * the bytes are flushed, or after 1 s if the peer does not read them.
 */
export function endAndRelease(socket: Duplex, data?: string): void {
  const timer = setTimeout(() => socket.destroy(), 1_000);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.on("error", () => socket.destroy());
  if (data === undefined) socket.end(() => socket.destroy());
  else socket.end(data, () => socket.destroy());
}

/** The request's headers for the NodePort: signature and hop-by-hop fields dropped, repeated fields kept. */
export function upstreamHeaders(rawHeaders: readonly string[], upgrade: boolean): string[] {
  const out: string[] = [];
  let named: Set<string> | undefined;
  let chunked = false;
  let upgradeValue: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (lower === "connection") {
      named ??= new Set();
      for (const token of rawHeaders[i + 1]!.split(",")) named.add(token.trim().toLowerCase());
    } else if (lower === "transfer-encoding") chunked = true;
    else if (lower === "upgrade") upgradeValue = rawHeaders[i + 1];
  }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower === SIGNATURE_HEADER || (named?.has(lower) && lower !== "upgrade")) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  // node's parser already de-chunked the body: it is chunked again, by node, on the way out.
  if (chunked) out.push("Transfer-Encoding", "chunked");
  if (upgrade && upgradeValue !== undefined) out.push("Connection", "Upgrade", "Upgrade", upgradeValue);
  return out;
}

/**
 * The response's headers for the edge: hop-by-hop fields dropped (node frames the body again), and the
 * gate's own refusal marker: only the gate may say "gate refused", never the app behind it.
 */
export function downstreamHeaders(rawHeaders: readonly string[], keep?: "upgrade"): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i]!.toLowerCase();
    if (lower === GATE_REFUSED_HEADER) continue;
    if (HOP_BY_HOP.has(lower) && !(keep && (lower === "upgrade" || lower === "connection"))) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return out;
}

function errorKind(err: NodeJS.ErrnoException, connected: boolean): UpstreamErrorKind {
  if (err.code === "ETIMEDOUT" || err.message === "connect timeout") return connected ? "timeout" : "connect";
  return connected ? "reset" : "connect";
}

export function createGateServer(o: GateServerOptions): http.Server {
  const now = o.now ?? Date.now;
  // Keep-alive towards the NodePorts: one TCP handshake per many requests.
  const agent = new http.Agent({ keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 256, scheduling: "lifo" });
  let lastUpstreamWarn = 0;

  const decide = (req: IncomingMessage) => {
    return verify(
      { method: req.method ?? "", target: req.url ?? "", rawHeaders: req.rawHeaders },
      { keys: o.keys, replay: o.replay, nowS: Math.floor(now() / 1000), maxSkewS: o.maxSkewS, ports: o.ports, nodeName: o.nodeName, clusterName: o.clusterName },
    );
  };

  const rejected = (req: IncomingMessage, reason: RejectReason) => {
    o.metrics.rejected.inc({ reason });
    o.metrics.replayEntries.set(o.replay.size);
    // debug: a scan of the internet would otherwise fill the log; the counter has every one.
    o.log.debug({ event: "gate.rejected", reason, remote: req.socket.remoteAddress, method: req.method?.slice(0, 16) }, `Refused a request (${reason}).`);
  };

  const upstreamFailed = (kind: UpstreamErrorKind, nodePort: number, err: Error) => {
    o.metrics.upstreamErrors.inc({ kind });
    // At most one line a second: a dead NodePort under load would flood the log.
    const t = now();
    if (t - lastUpstreamWarn >= 1_000) {
      lastUpstreamWarn = t;
      o.log.warn({ event: "gate.upstream_failed", kind, nodePort, upstream: o.upstreamHost, error: err.message }, `Forwarding to ${o.upstreamHost}:${nodePort} failed (${kind}: ${err.message}).`);
    }
  };

  /** Starts the upstream request and arms the connect timeout. */
  const open = (req: IncomingMessage, nodePort: number, upgrade: boolean) => {
    const up = http.request({
      host: o.upstreamHost,
      port: nodePort,
      method: req.method,
      path: req.url,
      headers: upstreamHeaders(req.rawHeaders, upgrade),
      setHost: false,
      // An upgraded connection leaves the pool for good: give it its own.
      agent: upgrade ? false : agent,
    });
    const state = { connected: false };
    up.on("socket", (socket) => {
      if (!socket.connecting) {
        state.connected = true;
        return;
      }
      const timer = setTimeout(() => up.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })), o.connectTimeoutMs);
      socket.once("connect", () => {
        state.connected = true;
        clearTimeout(timer);
      });
      socket.once("close", () => clearTimeout(timer));
    });
    return { up, state };
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    if (req.url === "/healthz" && (req.method === "GET" || req.method === "HEAD") && !hasSignature(req.rawHeaders)) {
      const ok = o.keys.size > 0;
      res.writeHead(ok ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(`${JSON.stringify({ status: ok ? "ok" : "no key loaded", keyLoaded: ok })}\n`);
      return;
    }
    const verdict = decide(req);
    if (!verdict.ok) {
      rejected(req, verdict.reason);
      // Not a byte of the body is read: answer, then close.
      res.shouldKeepAlive = false;
      res.writeHead(403, { [GATE_REFUSED_HEADER]: GATE_REFUSED, "content-type": "text/plain", "content-length": FORBIDDEN.length, connection: "close" });
      res.end(FORBIDDEN, () => req.socket.destroySoon());
      req.socket.setTimeout(1_000, () => req.socket.destroy());
      return;
    }
    o.metrics.replayEntries.set(o.replay.size);
    const { up, state } = open(req, verdict.nodePort, false);
    // Expect: 100-continue went on to the NodePort: its 100 comes back to the edge.
    up.on("information", (info) => {
      if (info.statusCode === 100) res.writeContinue();
    });
    up.on("response", (upRes) => {
      o.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      o.metrics.forwarded.inc({ kind: "http" });
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, downstreamHeaders(upRes.rawHeaders));
      upRes.pipe(res);
      upRes.on("error", () => res.destroy());
      upRes.on("aborted", () => res.destroy());
    });
    up.on("error", (err: NodeJS.ErrnoException) => {
      upstreamFailed(errorKind(err, state.connected), verdict.nodePort, err);
      if (!res.headersSent && !state.connected) {
        res.shouldKeepAlive = false;
        // Never connected: not a byte reached the NodePort. Said so (only the gate can: an app's
        // x-edgelb-gate is stripped), so the edge retries elsewhere as for a refused connection.
        res.writeHead(502, { [GATE_REFUSED_HEADER]: GATE_UPSTREAM_UNREACHABLE, "content-type": "text/plain", "content-length": 12, connection: "close" });
        res.end("bad gateway\n");
      } else {
        // The NodePort took the request and then dropped it (a hung node coming back, a crashed app):
        // the edge sees the connection cut, as it would talking to the node directly. A made-up 502
        // would pass for the app's own answer: the edge would relay "bad gateway" to the user once its
        // retry budget is spent, and count it as a 5xx streak rather than a failed connection.
        req.socket.destroy();
      }
    });
    // The edge went away: so does the request to the NodePort.
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    const verdict = decide(req);
    if (!verdict.ok) {
      rejected(req, verdict.reason);
      endAndRelease(socket, RAW_FORBIDDEN);
      return;
    }
    o.metrics.replayEntries.set(o.replay.size);
    const started = process.hrtime.bigint();
    const { up, state } = open(req, verdict.nodePort, true);
    up.on("upgrade", (upRes, upSocket, upHead) => {
      o.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      o.metrics.forwarded.inc({ kind: "websocket" });
      socket.write(rawHead(upRes, downstreamHeaders(upRes.rawHeaders, "upgrade")));
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.on("error", () => socket.destroy());
      socket.on("error", () => upSocket.destroy());
      upSocket.on("close", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
      upSocket.pipe(socket).pipe(upSocket);
    });
    up.on("response", (upRes) => {
      // Not upgraded: relay the answer as a close-delimited response.
      o.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      o.metrics.forwarded.inc({ kind: "http" });
      socket.write(rawHead(upRes, [...downstreamHeaders(upRes.rawHeaders), "Connection", "close"]));
      upRes.pipe(socket, { end: false });
      upRes.on("end", () => endAndRelease(socket));
      upRes.on("error", () => socket.destroy());
    });
    up.on("error", (err: NodeJS.ErrnoException) => {
      upstreamFailed(errorKind(err, state.connected), verdict.nodePort, err);
      // Dropped after it connected: cut, as for a plain request (see onRequest).
      if (state.connected) socket.destroy();
      else endAndRelease(socket, `HTTP/1.1 502 Bad Gateway\r\n${GATE_REFUSED_HEADER}: ${GATE_UPSTREAM_UNREACHABLE}\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nbad gateway\n`);
    });
    socket.on("close", () => up.destroy());
    up.end();
  };

  const server = http.createServer(
    {
      headersTimeout: o.headersTimeoutMs,
      // Bodies may stream for long (uploads, long polls): only the head has a deadline.
      requestTimeout: 0,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // How often the head deadline is checked (node's default, 30 s, would let a slowloris stay that long).
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(o.headersTimeoutMs / 2))),
      maxHeaderSize: 16 * 1024,
    },
    onRequest,
  );
  server.on("upgrade", onUpgrade);
  if (o.maxConnections !== undefined) server.maxConnections = o.maxConnections;
  // A connection that sends nothing at all: the head deadline counts from the first byte in some node
  // versions, so an idle socket before the first byte is closed after the same deadline.
  server.on("connection", (socket: import("node:net").Socket) => {
    const idle = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, o.headersTimeoutMs);
    idle.unref();
    socket.once("data", () => clearTimeout(idle));
    socket.once("close", () => clearTimeout(idle));
  });
  // Expect: 100-continue: no "100 Continue" before the signature is checked (a refused body is never invited).
  server.on("checkContinue", onRequest);
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // A malformed head (smuggling attempt, bad framing) or a head that came too slowly.
    if (socket.writable && !socket.destroyed) {
      const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : "400 Bad Request";
      endAndRelease(socket, `HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    } else socket.destroy();
  });
  server.on("close", () => agent.destroy());
  return server;
}

/** A status line and header block for a raw socket; values come from node's parser (no CR/LF). */
function rawHead(res: IncomingMessage, headers: string[]): string {
  let out = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ""}\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${out}\r\n`;
}
