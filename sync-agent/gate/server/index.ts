// The node gate's internet-facing listener: a forwarder on raw TCP sockets.
// Every request must carry a valid edge signature (verify/); anything else
// gets a bare 403 and the connection is closed without reading its body. A
// signed request loses the signature header and goes to the NodePort it names,
// on this node, streaming both ways (WebSocket upgrades included) over pooled
// keep-alive connections. Unsigned `GET /healthz` says whether a key is loaded.
//
// Why not node:http: every edge request arrives on a new connection (a
// Workers connect() socket cannot outlive its request), and with Node's HTTP
// server and client the gate took 1.5-1.8x this forwarder's CPU per request
// (docs/gate.md#costs-and-limits). Here the request head is parsed
// strictly (request-head/), rewritten and sent in one write; the response is
// relayed as the NodePort sent it, with only its head rewritten and its framing
// followed to know where it ends, so the connection can go back to the pool:
// the common answer in one pass (response-head/), anything else by the
// worker's own response parser and chunked decoder.
//
// Against a hostile peer: heads are bounded and must arrive within
// headersTimeoutMs; bare LF/CR, obsolete folding, Content-Length with
// Transfer-Encoding, several Content-Lengths and bad chunk sizes are refused
// with 400; a chunked body is decoded and chunked again towards the NodePort
// (no framing reaches the app as the client wrote it); only origin-form targets
// with exactly one Host pass (verify/).
import net from "node:net";
import type { Logger } from "pino";
import { ChunkedDecoder } from "../../../worker/transport/socket/chunked.ts";
import { findHeadEnd, ResponseParser, type ResponseHead } from "../../../worker/transport/socket/response-parser.ts";
import { GATE_CAUSE_HEADER, GATE_REFUSED, GATE_REFUSED_HEADER, GATE_UPSTREAM_UNREACHABLE, SIGNATURE_HEADER } from "../../../worker/snapshot/signing.ts";
import type { GateMetrics, UpstreamErrorKind } from "../metrics/index.ts";
import type { ReplayCache } from "../replay/index.ts";
import { parseRequestHead, RequestHeadError, sameName, type ParsedRequestHead } from "../request-head/index.ts";
import { plainResponse, type PlainResponse } from "../response-head/index.ts";
import { createEdgeServer, type EdgePath, type EdgeSink, type EdgeSocket } from "../edge-socket/index.ts";
import { UpstreamPool } from "../upstream-pool/index.ts";
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
  /** Open connections at most (further ones are closed at once). */
  maxConnections?: number;
  /** How connections from the edge are read and written (edge-socket/): "net" unless told. */
  edge?: EdgePath;
  /**
   * Builds the listening server around the gate's per-connection logic: createEdgeServer(edge) unless
   * told. Tests hand connections in through `accept` with a socket whose behaviour they choose (a
   * client that never reads, a write queue that never drains), which a real socket cannot be made to
   * show on demand.
   */
  edgeServer?: (accept: (socket: EdgeSocket) => EdgeSink, acceptFailed: (err: Error) => void) => net.Server;
  now?: () => number;
}

/** A net.Server with the two calls the gate's drain needs (as node:http's server has them). */
export interface GateServer extends net.Server {
  /** Closes connections with no request in flight. */
  closeIdleConnections(): void;
  /** Closes every connection. */
  closeAllConnections(): void;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);
/** The names always dropped towards the NodePort, by length: a name of another length needs no comparing. */
const DROPPED_BY_LENGTH = new Map<number, string[]>();
for (const n of [...HOP_BY_HOP, SIGNATURE_HEADER]) DROPPED_BY_LENGTH.set(n.length, [...(DROPPED_BY_LENGTH.get(n.length) ?? []), n]);
function isOneOf(name: string, lowers: readonly string[]): boolean {
  for (const l of lowers) if (sameName(name, l)) return true;
  return false;
}
const FORBIDDEN = "forbidden\n";
const RAW_FORBIDDEN = `HTTP/1.1 403 Forbidden\r\n${GATE_REFUSED_HEADER}: ${GATE_REFUSED}\r\ncontent-type: text/plain\r\ncontent-length: ${FORBIDDEN.length}\r\nconnection: close\r\n\r\n${FORBIDDEN}`;
/** The gate's 502 when it could not connect to the NodePort; `cause` says whether it was refused or timed out. */
const rawUnreachable = (cause: "refused" | "connect-timeout") =>
  `HTTP/1.1 502 Bad Gateway\r\n${GATE_REFUSED_HEADER}: ${GATE_UPSTREAM_UNREACHABLE}\r\n${GATE_CAUSE_HEADER}: ${cause}\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nbad gateway\n`;
const REFUSED_HEAD: Record<400 | 408 | 431, string> = {
  400: "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
  408: "HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
  431: "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
};
/** A NodePort's response head larger than this is refused (as the worker's socket transport does). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
const MAX_REQUEST_HEAD_BYTES = 16 * 1024;
/** Idle connections to each NodePort kept for reuse, and for how long (under Node's 5 s keep-alive default). */
const POOL = { maxIdlePerPort: 256, maxIdleMs: 4_000 };

/**
 * Sends the last bytes and then lets go of the socket for good. A plain end() only half-closes: a
 * peer that never sends its FIN (allowHalfOpen) would pin the file descriptor forever. Destroyed once
 * the bytes are flushed, or after 1 s if the peer does not read them.
 */
export function endAndRelease(socket: EdgeSocket, data?: string): void {
  const timer = setTimeout(() => socket.destroy(), 1_000);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  socket.on("error", () => socket.destroy());
  if (data === undefined) socket.end(() => socket.destroy());
  else socket.end(data, "latin1", () => socket.destroy());
}

/** The request's headers for the NodePort: signature and hop-by-hop fields dropped, repeated fields kept. */
export function upstreamHeaders(rawHeaders: readonly string[], upgrade: boolean): string[] {
  const out: string[] = [];
  let named: Set<string> | undefined;
  let namedLengths: Set<number> | undefined;
  let chunked = false;
  let upgradeValue: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // Only names as long as one of these three are compared.
    if (name.length !== 10 && name.length !== 17 && name.length !== 7) continue;
    if (sameName(name, "connection")) {
      for (const token of rawHeaders[i + 1]!.split(",")) {
        const t = token.trim().toLowerCase();
        // Hop-by-hop names are dropped anyway; any other token ("close" too) drops the field it names.
        if (t === "" || HOP_BY_HOP.has(t)) continue;
        (named ??= new Set()).add(t);
        (namedLengths ??= new Set()).add(t.length);
      }
    } else if (sameName(name, "transfer-encoding")) chunked = true;
    else if (sameName(name, "upgrade")) upgradeValue = rawHeaders[i + 1];
  }
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const dropped = DROPPED_BY_LENGTH.get(name.length);
    if (dropped !== undefined && isOneOf(name, dropped)) continue;
    // A name the Connection field listed (rare): lowercased to look it up.
    if (named !== undefined && namedLengths!.has(name.length) && named.has(name.toLowerCase())) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  // The gate decodes a chunked body and chunks it again on the way out.
  if (chunked) out.push("Transfer-Encoding", "chunked");
  if (upgrade && upgradeValue !== undefined) out.push("Connection", "Upgrade", "Upgrade", upgradeValue);
  return out;
}

/**
 * Fields of the response never relayed to the edge: connection-management fields (the gate manages both
 * connections) and the gate's own refusal marker: only the gate may say "gate refused", never the app
 * behind it. The body's framing fields stay: the body is relayed as the NodePort framed it.
 */
function dropDownstream(lower: string, upgrade: boolean): boolean {
  if (lower === GATE_REFUSED_HEADER || lower === GATE_CAUSE_HEADER || lower === "keep-alive" || lower === "proxy-connection") return true;
  if (lower === "connection" || lower === "upgrade") return !upgrade;
  return false;
}

/**
 * The NodePort's response head as the edge gets it: the status line and fields as sent (bytes
 * unchanged, line ends normalised to CRLF), minus what dropDownstream names, plus
 * `connection: close` when the gate closes the edge's connection after it.
 */
export function rewriteResponseHead(head: string, opts: { upgrade: boolean; close: boolean }): string {
  const lines = head.split("\n");
  let out = `HTTP/1.1${stripCr(lines[0]!).slice(8)}\r\n`;
  for (let i = 1; i < lines.length; i++) {
    const line = stripCr(lines[i]!);
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (dropDownstream(line.slice(0, colon).toLowerCase(), opts.upgrade)) continue;
    out += `${line}\r\n`;
  }
  return `${out}${opts.close ? "connection: close\r\n" : ""}\r\n`;
}

function stripCr(line: string): string {
  return line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line;
}

/** The request head for the NodePort, one string (written in one go, latin1: bytes as received). */
function requestHeadFor(head: ParsedRequestHead): string {
  const headers = upstreamHeaders(head.rawHeaders, head.upgrade);
  let out = `${head.method} ${head.target} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${out}\r\n`;
}

/** A response to HEAD has no body whatever its head says (the parser reads the method case-insensitively too). */
function isHead(method: string): boolean {
  return method.length === 4 && method.toUpperCase() === "HEAD";
}

function healthAnswer(ok: boolean, method: string, close: boolean): string {
  const body = `${JSON.stringify({ status: ok ? "ok" : "no key loaded", keyLoaded: ok })}\n`;
  return (
    `HTTP/1.1 ${ok ? "200 OK" : "503 Service Unavailable"}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: ${body.length}\r\n` +
    `${close ? "connection: close\r\n" : ""}\r\n${method === "HEAD" ? "" : body}`
  );
}

interface Upstream extends net.Socket {
  /** The edge connection whose request this connection carries; null while idle in the pool. */
  owner: EdgeConnection | null;
  /** The TCP handshake completed (a failure before it means no byte reached the app). */
  established: boolean;
  lastError: Error | undefined;
}

/** What the connections share: options, pool, metrics. */
interface Context {
  o: GateServerOptions;
  now: () => number;
  pool: UpstreamPool;
  connections: Set<EdgeConnection>;
  /** The forwarded counter's children, bound once (prom-client hashes a label set on every inc). */
  forwarded: { http: { inc(): void }; websocket: { inc(): void } };
  /** The server is draining: no connection goes back to the pool, none waits for a next request. */
  closing: boolean;
  rejected(socket: EdgeSocket, method: string, reason: RejectReason): void;
  upstreamFailed(kind: UpstreamErrorKind, nodePort: number, err: Error): void;
}

// Where a connection from the edge is.
const HEAD = 0; // waiting for, or reading, a request head
const BODY = 1; // streaming the request body to the NodePort
const SENT = 2; // request sent; later bytes (a pipelined request) wait
const TUNNEL = 3; // after a 101: raw bytes both ways
const CLOSING = 4; // answered for the last time

// Where the response from the NodePort is.
const R_HEAD = 0;
const R_LENGTH = 1;
const R_CHUNKED = 2;
const R_CLOSE = 3;
const R_DONE = 4;

/**
 * The one read buffer of every connection to a NodePort (net's `onread`): no buffer allocated per read,
 * no stream machinery per answer. Bytes in it live until the read callback returns (onUpstreamRead).
 */
const UPSTREAM_READS = Buffer.allocUnsafe(64 * 1024);
function onUpstreamRead(this: Upstream, n: number): boolean {
  if (this.owner) this.owner.onUpstreamRead(UPSTREAM_READS, n);
  else this.destroy(); // bytes from an idle connection answer nothing that was asked
  // Reading goes on unless the relay paused it (backpressure): returning false would pause it here.
  return true;
}

/** What backpressure() pauses and waits on: either side's connection. */
interface Flow {
  pause(): unknown;
  resume(): unknown;
  once(event: "drain", fn: () => void): unknown;
}

class EdgeConnection implements EdgeSink {
  state = HEAD;
  /** Bytes received and not yet used: a partial head, or a pipelined request. */
  pending: Buffer | undefined;
  /**
   * When the wait for a head ends (Date.now() ms; 0: no wait running). Checked by one interval for
   * all connections (see createGateServer), as node:http does: a timer per connection cost CPU on every request.
   */
  deadline = 0;
  /** The client sent its FIN, or asked to close: no further request. */
  edgeDone = false;
  // The exchange in flight.
  up: Upstream | undefined;
  nodePort = 0;
  method = "";
  upgrade = false;
  started = 0n;
  reqRemaining = 0;
  reqChunked: ChunkedDecoder | undefined;
  rPhase = R_DONE;
  rBuf: Buffer | undefined;
  rRemaining = 0;
  rChunked: ChunkedDecoder | undefined;
  /** The edge's connection closes once this response is relayed. */
  closeAfter = false;
  /** The NodePort's connection cannot be reused (it said close, or sent more than its response). */
  upDirty = false;
  responseStarted = false;
  /** The keep-alive idle timer runs (no byte of a next request yet). */
  sinceResponse = false;
  /** Reading is paused until the client takes an unflushed answer. */
  awaitingDrain = false;

  constructor(
    readonly socket: EdgeSocket,
    readonly ctx: Context,
  ) {
    ctx.connections.add(this);
    this.arm(ctx.o.headersTimeoutMs);
  }

  get idle(): boolean {
    return this.state === HEAD && this.up === undefined && this.pending === undefined;
  }

  arm(ms: number): void {
    this.deadline = Date.now() + ms;
  }

  onTimeout(): void {
    this.deadline = 0;
    // The last answer was not taken within the deadline (a client that never reads): let go (rv-gate 1).
    if (this.state === CLOSING) {
      this.socket.destroy();
      return;
    }
    if (this.state !== HEAD || this.up) return;
    // Nothing at all, or idle between requests: just close. A head begun and not finished: 408.
    if (this.pending === undefined) this.socket.destroy();
    else this.refuse(408);
  }

  onData(chunk: Buffer): void {
    switch (this.state) {
      case HEAD:
        if (this.pending === undefined && this.sinceResponse) {
          // The first byte of a request after an idle keep-alive period: the head deadline starts now.
          this.sinceResponse = false;
          this.arm(this.ctx.o.headersTimeoutMs);
        }
        this.pending = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
        this.readHeads();
        return;
      case BODY:
        this.requestBody(chunk);
        return;
      case SENT:
        // A pipelined request: read once this response is done.
        this.pending = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
        this.socket.pause();
        return;
      case TUNNEL:
        if (!this.up!.write(chunk)) this.backpressure(this.socket, this.up!);
        return;
      default:
    }
  }

  readHeads(): void {
    while (this.state === HEAD && this.pending !== undefined) {
      if (this.socket.writableNeedDrain) {
        // An answer is still unflushed: no next request is read until the client takes it (rv-proxy 1: a
        // client pipelining unsigned GET /healthz and never reading grew the gate's memory without bound).
        this.socket.pause();
        if (!this.awaitingDrain) {
          this.awaitingDrain = true;
          this.socket.once("drain", () => {
            this.awaitingDrain = false;
            if (this.state !== HEAD) return;
            this.socket.resume();
            this.readHeads();
          });
        }
        // A client that never reads is let go like a slow head (408, then closed).
        if (this.deadline === 0) this.arm(this.ctx.o.headersTimeoutMs);
        return;
      }
      let head: ParsedRequestHead | null;
      try {
        head = parseRequestHead(this.pending, MAX_REQUEST_HEAD_BYTES);
      } catch (err) {
        this.refuse(err instanceof RequestHeadError ? err.status : 400);
        return;
      }
      if (head === null) return;
      this.deadline = 0;
      this.pending = head.headBytes < this.pending.length ? this.pending.subarray(head.headBytes) : undefined;
      if (head.close) this.edgeDone = true;
      this.onHead(head);
    }
    if (this.state === HEAD && !this.edgeDone && this.deadline === 0) {
      // Between requests: idle for at most the keep-alive timeout; a head begun must end within the head deadline.
      this.sinceResponse = this.pending === undefined;
      this.arm(this.sinceResponse ? this.ctx.o.keepAliveTimeoutMs : this.ctx.o.headersTimeoutMs);
    }
  }

  /** A malformed head (smuggling attempt, bad framing) or one that came too slowly: answer and close. */
  refuse(status: 400 | 408 | 431): void {
    this.close(REFUSED_HEAD[status]);
  }

  /**
   * The last answer (if any), then the connection is let go. `read`: every byte the client sent was read
   * (it sent its FIN, or asked to close after a request read whole); the socket is then destroyed as soon
   * as the answer is flushed, like node:http's destroySoon, with no timer. Otherwise endAndRelease.
   */
  close(last?: string, read = false): void {
    this.state = CLOSING;
    this.deadline = 0;
    this.pending = undefined;
    if (!this.socket.writable || this.socket.destroyed) this.socket.destroy();
    else if (read) {
      // Nothing more to read: no pause (it is a syscall). Once the kernel holds the whole answer, close()
      // alone sends it and then the FIN (one syscall, not shutdown then close); else once it is flushed.
      if (last !== undefined) this.socket.write(last, "latin1");
      this.socket.uncork();
      if (this.socket.writableLength === 0) this.socket.destroy();
      else {
        this.socket.destroySoon();
        // A client that never reads must not hold the connection (an fd and a --max-connections slot) for
        // good: it gets as long as a head may take to take the rest of its last answer (rv-gate 1).
        this.arm(this.ctx.o.headersTimeoutMs);
      }
    } else {
      // Not a byte more of what the client sends is read.
      this.socket.pause();
      endAndRelease(this.socket, last);
    }
  }

  onHead(head: ParsedRequestHead): void {
    const { o } = this.ctx;
    if (head.target === "/healthz" && (head.method === "GET" || head.method === "HEAD") && head.framing.kind === "none" && !hasSignature(head.rawHeaders)) {
      const answer = healthAnswer(o.keys.size > 0, head.method, this.edgeDone);
      if (this.edgeDone) this.close(answer, this.pending === undefined);
      else this.socket.write(answer, "latin1");
      return;
    }
    const verdict = verify(
      { method: head.method, target: head.target, rawHeaders: head.rawHeaders },
      { keys: o.keys, replay: o.replay, nowS: Math.floor(this.ctx.now() / 1000), maxSkewS: o.maxSkewS, ports: o.ports, nodeName: o.nodeName, clusterName: o.clusterName },
    );
    if (!verdict.ok) {
      this.ctx.rejected(this.socket, head.method, verdict.reason);
      // Not a byte of the body is read: answer, then close.
      this.close(RAW_FORBIDDEN);
      return;
    }
    this.forward(head, verdict.nodePort);
  }

  forward(head: ParsedRequestHead, nodePort: number): void {
    this.started = process.hrtime.bigint();
    this.nodePort = nodePort;
    this.method = head.method;
    this.upgrade = head.upgrade;
    this.closeAfter = this.edgeDone || head.upgrade;
    this.upDirty = false;
    this.responseStarted = false;
    this.rPhase = R_HEAD;
    this.rBuf = undefined;
    // An upgraded connection leaves the pool for good: it gets its own.
    const up = (!head.upgrade && (this.ctx.pool.take(nodePort) as Upstream | undefined)) || this.connect(nodePort);
    up.owner = this;
    this.up = up;
    const text = requestHeadFor(head);
    this.state = BODY;
    // Bytes after an upgrade's head belong to the new protocol: they go through once the NodePort accepts it.
    if (head.upgrade) this.state = SENT;
    else if (head.framing.kind === "length") this.reqRemaining = head.framing.length;
    else if (head.framing.kind === "chunked") this.reqChunked = new ChunkedDecoder();
    else this.state = SENT;
    const body = this.pending;
    if (body === undefined || this.state === SENT) {
      up.write(text, "latin1");
      if (body !== undefined) this.socket.pause();
      return;
    }
    this.pending = undefined;
    up.cork();
    up.write(text, "latin1");
    this.requestBody(body);
    up.uncork();
  }

  /** The NodePort's connection: a fresh one (connect timeout armed) unless the pool had one. */
  connect(nodePort: number): Upstream {
    const up = net.connect({ host: this.ctx.o.upstreamHost, port: nodePort, noDelay: true, onread: { buffer: UPSTREAM_READS, callback: onUpstreamRead } }) as Upstream;
    up.owner = null;
    up.established = false;
    up.lastError = undefined;
    const ms = this.ctx.o.connectTimeoutMs;
    // Checked once more after the loop's poll phase: a process that was not scheduled for longer than the
    // timeout runs its timers before the I/O that completed meanwhile, so a connection the kernel
    // established in time would otherwise be dropped as timed out.
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (!up.established) up.destroy(Object.assign(new Error(`no connection within ${ms} ms`), { code: "ETIMEDOUT" }));
      });
    }, ms);
    up.once("connect", () => {
      up.established = true;
      clearTimeout(timer);
    });
    up.on("error", (err) => {
      up.lastError = err;
    });
    up.on("close", () => {
      clearTimeout(timer);
      up.owner?.onUpstreamClose(up);
    });
    return up;
  }

  /** Request body bytes from the edge, by the head's framing; bytes after it are a pipelined request. */
  requestBody(chunk: Buffer): void {
    const up = this.up!;
    let rest: Buffer | undefined;
    let ok = true;
    if (this.reqChunked === undefined) {
      const n = Math.min(this.reqRemaining, chunk.length);
      ok = up.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.reqRemaining -= n;
      if (n < chunk.length) rest = chunk.subarray(n);
      if (this.reqRemaining === 0) this.state = SENT;
    } else {
      const r = this.reqChunked.feed(chunk);
      // Decoded and chunked again: the NodePort sees framing the gate wrote, never the client's.
      if (r.data.length > 0) up.cork();
      for (const d of r.data) {
        if (d.length === 0) continue;
        up.write(`${d.length.toString(16)}\r\n`, "latin1");
        up.write(d);
        ok = up.write("\r\n", "latin1");
      }
      if (r.data.length > 0) up.uncork();
      if (r.error) {
        this.badRequestBody();
        return;
      }
      if (r.done) {
        ok = up.write("0\r\n\r\n", "latin1");
        this.reqChunked = undefined;
        this.state = SENT;
        if (r.rest.length > 0) rest = Buffer.from(r.rest.buffer, r.rest.byteOffset, r.rest.length);
      }
    }
    if (rest !== undefined) {
      this.pending = rest;
      this.socket.pause();
    } else if (!ok) this.backpressure(this.socket, up);
  }

  /** A malformed chunked body: the request to the NodePort is abandoned, the edge gets 400 if nothing was answered yet. */
  badRequestBody(): void {
    this.releaseUpstream(false);
    if (this.responseStarted) this.socket.destroy();
    else this.refuse(400);
  }

  /** `from` is paused until `to` has room again. */
  backpressure(from: Flow, to: Flow): void {
    from.pause();
    to.once("drain", () => {
      // The edge stays paused while a pipelined request waits for this response.
      if (this.state !== CLOSING && !(from === this.socket && this.pending !== undefined)) from.resume();
    });
  }

  /**
   * `n` bytes from the NodePort in the shared read buffer, valid only until this returns. The one-pass
   * relay of an answer's head reads them in place (it relays a copy); everything else may keep bytes past
   * this call (a write the edge has not taken yet, a partial head), so it gets a copy of its own: a later
   * read for another request must never show through (test/gate/read-buffer.test.ts).
   */
  onUpstreamRead(buf: Buffer, n: number): void {
    if (this.rPhase === R_HEAD && this.rBuf === undefined && !this.upgrade && !isHead(this.method)) {
      const view = buf.subarray(0, n);
      const end = findHeadEnd(view, 0);
      const plain = end === -1 ? null : plainResponse(view, end, this.closeAfter || this.state === BODY, MAX_RESPONSE_HEAD_BYTES);
      // Safe in place: plainResponse copies what it relays, and the chunked decoder copies a line it must keep.
      if (plain !== null) {
        this.relayPlain(plain);
        return;
      }
    }
    this.onUpstreamData(Buffer.from(buf.subarray(0, n)));
  }

  onUpstreamData(chunk: Buffer): void {
    if (this.rPhase === R_HEAD) {
      // The common answer, whole head in one read: relayed without the full parser, in one write.
      if (this.rBuf === undefined && !this.upgrade && !isHead(this.method)) {
        const end = findHeadEnd(chunk, 0);
        const plain = end === -1 ? null : plainResponse(chunk, end, this.closeAfter || this.state === BODY, MAX_RESPONSE_HEAD_BYTES);
        if (plain !== null) {
          this.relayPlain(plain);
          return;
        }
      }
      this.rBuf = this.rBuf === undefined ? chunk : Buffer.concat([this.rBuf, chunk]);
      this.responseHeads();
      return;
    }
    if (this.state === TUNNEL) {
      if (!this.socket.write(chunk)) this.backpressure(this.up!, this.socket);
      return;
    }
    this.responseBody(chunk);
  }

  responseHeads(): void {
    while (this.rBuf !== undefined) {
      const end = findHeadEnd(this.rBuf, 0);
      if (end === -1) {
        if (this.rBuf.length > MAX_RESPONSE_HEAD_BYTES) this.upstreamBroken(new Error("response head too large"));
        return;
      }
      const headBytes = this.rBuf.subarray(0, end);
      const rest = this.rBuf.subarray(end);
      this.rBuf = rest.length > 0 ? rest : undefined;
      let head: ResponseHead | undefined;
      try {
        for (const e of new ResponseParser({ method: this.method, maxHeadBytes: MAX_RESPONSE_HEAD_BYTES }).feed(headBytes)) if (e.kind === "head") head = e.head;
      } catch (err) {
        this.upstreamBroken(err as Error);
        return;
      }
      if (head === undefined) {
        // An interim response: a 100 Continue goes on to the edge (it sent Expect), others are dropped.
        if (headBytes[9] === 0x31 && headBytes[10] === 0x30 && headBytes[11] === 0x30) this.socket.write(headBytes);
        continue;
      }
      this.rBuf = undefined;
      this.responseHead(head, headBytes, rest);
      return;
    }
  }

  /** A plainResponse: head and the body bytes that came with it, in one write; the latency is observed after it. */
  relayPlain(plain: PlainResponse): void {
    // Read first: responseDone may start a pipelined request's exchange.
    const started = this.started;
    this.responseStarted = true;
    if (plain.dirty) this.upDirty = true;
    const chunked = plain.length === -1;
    this.rRemaining = chunked ? 0 : plain.length - plain.bodyBytes;
    const ok = this.socket.write(plain.out);
    if (chunked ? plain.chunked === undefined : this.rRemaining === 0) this.responseDone();
    else {
      this.rPhase = chunked ? R_CHUNKED : R_LENGTH;
      this.rChunked = plain.chunked;
      if (!ok) this.backpressure(this.up!, this.socket);
    }
    this.ctx.forwarded.http.inc();
    this.ctx.o.metrics.latency.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  responseHead(head: ResponseHead, headBytes: Buffer, rest: Buffer): void {
    const { metrics } = this.ctx.o;
    metrics.latency.observe(Number(process.hrtime.bigint() - this.started) / 1e9);
    this.responseStarted = true;
    const up = this.up!;
    const framing = head.framing;
    if (framing.kind === "upgrade") {
      if (!this.upgrade) {
        this.upstreamBroken(new Error("101 to a request that asked for no upgrade"));
        return;
      }
      this.ctx.forwarded.websocket.inc();
      this.state = TUNNEL;
      this.rPhase = R_DONE;
      this.socket.cork();
      this.socket.write(rewriteResponseHead(headBytes.toString("latin1"), { upgrade: true, close: false }), "latin1");
      if (rest.length > 0) this.socket.write(rest);
      this.socket.uncork();
      if (this.pending !== undefined) up.write(this.pending);
      this.pending = undefined;
      this.socket.resume();
      return;
    }
    this.ctx.forwarded.http.inc();
    if (head.version === "1.0" || head.headers.some(([n, v]) => n === "connection" && /(^|,)\s*close\s*(,|$)/i.test(v))) this.upDirty = true;
    if (framing.kind === "close") this.closeAfter = true;
    // A Content-Length of 0 is a whole answer already (waiting for body bytes would hang the exchange).
    this.rPhase = framing.kind === "length" ? (framing.length === 0 ? R_DONE : R_LENGTH) : framing.kind === "chunked" ? R_CHUNKED : framing.kind === "close" ? R_CLOSE : R_DONE;
    if (framing.kind === "length") this.rRemaining = framing.length;
    else if (framing.kind === "chunked") this.rChunked = new ChunkedDecoder();
    const text = rewriteResponseHead(headBytes.toString("latin1"), { upgrade: false, close: this.closeAfter || this.state === BODY });
    if (this.rPhase === R_DONE || rest.length === 0) {
      const ok = this.socket.write(text, "latin1");
      if (this.rPhase === R_DONE) {
        if (rest.length > 0) this.upDirty = true;
        this.responseDone();
      } else if (!ok) this.backpressure(up, this.socket);
      return;
    }
    this.socket.cork();
    this.socket.write(text, "latin1");
    this.responseBody(rest);
    this.socket.uncork();
  }

  /** Response body bytes, relayed as they came; the framing says where the response ends. */
  responseBody(chunk: Buffer): void {
    let ok: boolean;
    if (this.rPhase === R_LENGTH) {
      const n = Math.min(this.rRemaining, chunk.length);
      ok = this.socket.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.rRemaining -= n;
      if (n < chunk.length) this.upDirty = true;
      if (this.rRemaining === 0) {
        this.responseDone();
        return;
      }
    } else if (this.rPhase === R_CHUNKED) {
      const r = this.rChunked!.feed(chunk);
      if (r.error) {
        this.upstreamBroken(r.error);
        return;
      }
      const used = chunk.length - r.rest.length;
      ok = this.socket.write(used === chunk.length ? chunk : chunk.subarray(0, used));
      if (r.done) {
        if (r.rest.length > 0) this.upDirty = true;
        this.rChunked = undefined;
        this.responseDone();
        return;
      }
    } else ok = this.socket.write(chunk);
    if (!ok) this.backpressure(this.up!, this.socket);
  }

  /** The whole response is relayed: the NodePort's connection goes back to the pool, the edge's waits for its next request. */
  responseDone(): void {
    this.rPhase = R_DONE;
    const requestSent = this.state === SENT;
    this.releaseUpstream(requestSent && !this.upDirty && !this.upgrade);
    if (this.closeAfter || !requestSent || this.ctx.closing) {
      // The app answered before the request's body was all there: the rest of it cannot be told from a next request.
      this.close(undefined, requestSent && this.pending === undefined);
      return;
    }
    this.state = HEAD;
    if (this.edgeDone && this.pending === undefined) {
      this.close(undefined, true);
      return;
    }
    this.socket.resume();
    this.readHeads();
  }

  /** Lets go of the NodePort's connection: back to the pool, or closed. */
  releaseUpstream(reuse: boolean): void {
    const up = this.up;
    if (!up) return;
    this.up = undefined;
    up.owner = null;
    this.reqChunked = undefined;
    this.rChunked = undefined;
    if (up.isPaused()) up.resume();
    if (reuse && !this.ctx.closing) this.ctx.pool.put(this.nodePort, up);
    else up.destroy();
  }

  /** The NodePort's answer is not HTTP the gate can relay: the edge's connection is cut, as when the node drops it. */
  upstreamBroken(err: Error): void {
    this.ctx.upstreamFailed("reset", this.nodePort, err);
    this.releaseUpstream(false);
    this.socket.destroy();
  }

  onUpstreamClose(up: Upstream): void {
    if (this.up !== up) return;
    if (this.state === TUNNEL) {
      this.releaseUpstream(false);
      this.socket.destroy();
      return;
    }
    if (this.rPhase === R_CLOSE) {
      // A body delimited by the connection's close: complete now.
      this.releaseUpstream(false);
      this.close();
      return;
    }
    const err = up.lastError ?? new Error("connection closed before the response was complete");
    const timedOut = (err as NodeJS.ErrnoException).code === "ETIMEDOUT";
    const kind: UpstreamErrorKind = !up.established ? (timedOut ? "connect_timeout" : "connect") : timedOut ? "timeout" : "reset";
    this.ctx.upstreamFailed(kind, this.nodePort, err);
    this.releaseUpstream(false);
    if (!up.established && !this.responseStarted) {
      // Never connected: not a byte reached the NodePort. Said so (only the gate can: an app's
      // x-edgelb-gate is stripped), so the edge retries elsewhere as for a refused connection.
      this.close(rawUnreachable(timedOut ? "connect-timeout" : "refused"));
    } else {
      // The NodePort took the request and then dropped it (a hung node coming back, a crashed app):
      // the edge sees the connection cut, as it would talking to the node directly. A made-up 502
      // would pass for the app's own answer.
      this.socket.destroy();
    }
  }

  /** The edge sent its FIN: no further request comes. */
  onEnd(): void {
    this.edgeDone = true;
    if (this.state === HEAD && this.up === undefined) this.close(undefined, this.pending === undefined);
    else if (this.state === BODY) this.socket.destroy(); // the body was cut short
    else if (this.state === TUNNEL) this.up?.end();
  }

  onClose(): void {
    this.ctx.connections.delete(this);
    this.deadline = 0;
    this.state = CLOSING;
    // The edge went away: so does the request to the NodePort.
    this.releaseUpstream(false);
  }
}

export function createGateServer(o: GateServerOptions): GateServer {
  const now = o.now ?? Date.now;
  let lastUpstreamWarn = 0;
  const pool = new UpstreamPool({ ...POOL, now });
  const ctx: Context = {
    o,
    now,
    pool,
    closing: false,
    connections: new Set<EdgeConnection>(),
    forwarded: { http: o.metrics.forwarded.labels({ kind: "http" }), websocket: o.metrics.forwarded.labels({ kind: "websocket" }) },
    rejected(socket, method, reason) {
      o.metrics.rejected.inc({ reason });
      // debug: a scan of the internet would otherwise fill the log; the counter has every one.
      o.log.debug({ event: "gate.rejected", reason, remote: socket.remoteAddress, method: method.slice(0, 16) }, `Refused a request (${reason}).`);
    },
    upstreamFailed(kind, nodePort, err) {
      o.metrics.upstreamErrors.inc({ kind });
      // At most one line a second: a dead NodePort under load would flood the log.
      const t = now();
      if (t - lastUpstreamWarn >= 1_000) {
        lastUpstreamWarn = t;
        o.log.warn({ event: "gate.upstream_failed", kind, nodePort, upstream: o.upstreamHost, error: err.message }, `Forwarding to ${o.upstreamHost}:${nodePort} failed (${kind}: ${err.message}).`);
      }
    },
  };
  let lastAcceptWarn = 0;
  const acceptFailed = (err: Error) => {
    // At most one line a second: a flood of failing accepts would flood the log.
    const t = now();
    if (t - lastAcceptWarn < 1_000) return;
    lastAcceptWarn = t;
    o.log.warn({ event: "gate.accept_failed", error: err.message }, `Accepting a connection failed (${err.message}); the gate goes on listening.`);
  };
  const accept = (socket: EdgeSocket): EdgeSink => new EdgeConnection(socket, ctx);
  const server = (o.edgeServer ? o.edgeServer(accept, acceptFailed) : createEdgeServer(o.edge ?? "net", accept, acceptFailed)) as GateServer;
  if (o.maxConnections !== undefined) server.maxConnections = o.maxConnections;
  const sweep = setInterval(() => pool.sweep(), 1_000);
  sweep.unref();
  // Head and keep-alive deadlines, for all connections at once (as often as node:http checks its own).
  const deadlines = setInterval(
    () => {
      const t = Date.now();
      for (const c of ctx.connections) if (c.deadline !== 0 && c.deadline <= t) c.onTimeout();
    },
    Math.max(50, Math.min(1_000, Math.floor(o.headersTimeoutMs / 2))),
  );
  deadlines.unref();
  server.closeIdleConnections = () => {
    ctx.closing = true;
    pool.destroy();
    for (const c of ctx.connections) if (c.idle) c.socket.destroy();
  };
  server.closeAllConnections = () => {
    for (const c of ctx.connections) c.socket.destroy();
  };
  server.on("close", () => {
    clearInterval(sweep);
    clearInterval(deadlines);
    pool.destroy();
  });
  return server;
}
