// The socket transport: HTTP/1.1 spoken over connect() from cloudflare:sockets,
// one connection per request (`Connection: close`), for origins that fetch()
// cannot reach in production (bare IPs, custom ports).
import type { OriginRequest, Transport } from "../types.ts";
import { MalformedResponseError, ResponseTimeoutError, UpstreamResetError } from "../types.ts";
import {
  type Connect,
  type Connection,
  describe,
  message,
  openConnection,
  readResponseHead,
  type HeadResult,
  type StartedRequest,
  startRequest,
  startedHeadFailed,
  startedHeadIn,
} from "./connection.ts";
import { openHedged, readHedgedHead } from "./hedged-connect.ts";
import { fieldOf, hostPort, requestFraming, serializeRequestHead } from "./request-head.ts";
import { pathAndQuery } from "../target/index.ts";
import { sendBody } from "./request-body.ts";
import { toResponse, wholeResponse } from "./response-body.ts";
import { type ResponseEvent, type ResponseHead, ResponseParser } from "./response-parser.ts";
import { isWebSocketUpgrade, upgradeWebSocket, type WebSocketRelayOptions } from "./websocket/upgrade.ts";

export interface SocketTransportOptions {
  connect: Connect;
  /** Largest response head accepted (status line + fields). */
  maxHeadBytes?: number;
  /** Where failures that happen after the Response was returned are reported. */
  log?: TransportLog;
  /**
   * Longest silence inside a response body before it is cut off. Long on
   * purpose: event streams and slow downloads pause; only a dead origin
   * should hit it (default 5 minutes).
   */
  bodyIdleTimeoutMs?: number;
  /**
   * Slowest natively piped Content-Length body, in bytes per second: it should
   * end within responseTimeoutMs + length ÷ this rate after its head (default
   * 64 KiB/s, as over fetch()); a close-delimited one within bodyIdleTimeoutMs.
   * Past that it stops counting as in flight (origin.body_stalled, warn).
   */
  minBodyRate?: number;
  /** Memory cap and keepalive of relayed WebSockets. */
  webSocket?: WebSocketRelayOptions;
}

export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 5 * 60_000;
export const DEFAULT_MIN_BODY_RATE = 64 * 1024;

/** Same shape as the worker's Logger (worker/log), so the app can pass its own. */
export type TransportLog = (level: "warn" | "error", event: string, fields: Record<string, unknown>) => void;

const consoleLog: TransportLog = (level, event, fields) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, event, transport: "socket", ...fields }));

export function createSocketTransport(opts: SocketTransportOptions): Transport {
  const log = opts.log ?? consoleLog;
  return {
    name: "socket",
    // Not async: the promise sendHttp returns is handed on, not wrapped in another.
    send(req: OriginRequest): Promise<Response> {
      if (isWebSocketUpgrade(req.request)) {
        return upgradeWebSocket(req, opts.connect, log, opts.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS, opts.webSocket);
      }
      return sendHttp(req, opts, log);
    },
  };
}

/**
 * Methods a second run of cannot harm (RFC 9110 §9.2.2), the only ones that
 * take startRequest's fast start: the runtime sends a queued head as soon as
 * the connection is up, natively, and the isolate may learn of the open only
 * after the connect deadline has called it a connect timeout (ConnectError:
 * retried anywhere, free of the retry budget). Other methods write only once
 * the open is known (review rv-proxy s7 1).
 */
const REPEATABLE = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/**
 * Safe methods (RFC 9110 §9.2.1), the only ones that take the fast start under
 * a connect hedge: a hedge's loser that opens late may get the queued head too,
 * so the request may reach two nodes (see hedged-connect.ts).
 */
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

function sendHttp(req: OriginRequest, opts: SocketTransportOptions, log: TransportLog): Promise<Response> {
  const { request } = req;
  if (req.hedge === undefined && request.body === null && REPEATABLE.has(request.method)) {
    // Most requests: no body, no hedge, idempotent. Connect, write and read at once (see
    // startRequest), with no closure or options object made before the answer is in.
    let conn: StartedRequest;
    const parser = new ResponseParser({ method: request.method, maxHeadBytes: opts.maxHeadBytes });
    try {
      const fields = request.fields;
      // Serialized before connecting: a head that cannot be written safely opens no connection.
      const head = serializeRequestHead({
        method: request.method,
        target: pathAndQuery(request.url),
        headers: fields === undefined ? request.headers : undefined,
        fields,
        defaultHost: hostPort(req.origin.address, req.origin.port),
        framing: requestFraming(request.method, EMPTY_FIELDS, false),
        connection: "close",
      });
      conn = startRequest(opts.connect, req.origin, head, req.connectTimeoutMs, req.responseTimeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
    return sendStarted(conn, parser, req, opts, log);
  }
  return sendOther(req, opts, log);
}

/** No request body read: requestFraming without a body looks only at the method. */
const EMPTY_FIELDS: Readonly<Record<string, string>> = Object.freeze({});

/** The answer to a request started by startRequest. */
async function sendStarted(
  conn: StartedRequest,
  parser: ResponseParser,
  req: OriginRequest,
  opts: SocketTransportOptions,
  log: TransportLog,
): Promise<Response> {
  // readStartedHead inlined: one async layer fewer per request.
  let found: HeadResult | undefined;
  try {
    do found = startedHeadIn(conn, parser, await conn.reader.read());
    while (found === undefined);
  } catch (e) {
    return startedHeadFailed(conn, parser, e);
  }
  return respond(conn, parser, found.head, found.pending, req, opts, log, true);
}

/** Requests with a body, a connect hedge, or a method a second run of could harm. */
async function sendOther(
  req: OriginRequest,
  opts: SocketTransportOptions,
  log: TransportLog,
): Promise<Response> {
  let { origin } = req;
  const { request } = req;
  const fields = request.fields;
  const framing = requestFraming(request.method, fields ?? request.headers, request.body !== null);
  const headFor = (o: typeof origin, headers?: Headers) =>
    serializeRequestHead({
      method: request.method,
      target: pathAndQuery(request.url),
      // A hedge's own Headers (a gate's signature) win; `request.headers` is read only without a record.
      headers: headers ?? (fields === undefined ? request.headers : undefined),
      fields: headers === undefined ? fields : undefined,
      defaultHost: hostPort(o.address, o.port),
      framing,
      connection: "close",
    });
  const hasHost = () => (fields !== undefined ? fieldOf(fields, "host") !== undefined : request.headers.has("host"));
  // Serialized before connecting: a head that cannot be written safely opens no connection.
  let head = headFor(origin);
  const parserOptions = { method: request.method, maxHeadBytes: opts.maxHeadBytes };
  const parser = new ResponseParser(parserOptions);
  const bodyless = request.body === null || framing.kind === "none";
  if (req.hedge !== undefined && bodyless && SAFE.has(request.method)) {
    // Hedged, bodyless and safe: the same fast start on each node the hedge tries (see readHedgedHead).
    const hedge = req.hedge;
    const secondHead = async (o: typeof origin): Promise<Uint8Array> => {
      // The hedge's node: its own headers (a gate's signature), else its own default Host.
      const headers = hedge.headersFor ? await hedge.headersFor(o).catch(() => undefined) : undefined;
      if (headers !== undefined) return headFor(o, headers);
      return hasHost() ? head : headFor(o);
    };
    const won = await readHedgedHead(opts.connect, origin, head, secondHead, req.connectTimeoutMs, req.responseTimeoutMs, hedge, parser, parserOptions);
    return respond(won.conn, won.parser, won.head, won.pending, req, opts, log, true);
  }
  const conn = req.hedge
    ? await openHedged(opts.connect, origin, req.connectTimeoutMs, req.hedge)
    : await openConnection(opts.connect, origin, req.connectTimeoutMs);
  if (conn.origin !== origin) {
    // The hedge's node answered first: the request goes there, under its own default Host.
    origin = conn.origin;
    const headers = req.hedge?.headersFor ? await req.hedge.headersFor(origin).catch(() => undefined) : undefined;
    if (headers !== undefined) {
      try {
        head = headFor(origin, headers);
      } catch (e) {
        conn.close();
        throw e;
      }
    } else if (!hasHost()) head = headFor(origin);
  }
  const hasBody = request.body !== null && framing.kind !== "none";
  if (!hasBody) {
    // Not awaited: the read below starts at once (one suspension fewer per request),
    // and a failed write ends it, reported like any connection lost before a response
    // (UpstreamResetError). The response deadline also bounds a write that never ends.
    conn.writer.write(head).catch(() => conn.close());
  } else {
    try {
      await conn.writer.write(head);
    } catch (e) {
      // Part of the head may have gone out: not a ConnectError (see ../types.ts).
      conn.close();
      throw new UpstreamResetError(`cannot send to ${describe(origin)}: ${message(e)}`, origin, { cause: e });
    }
  }
  // The body goes up while the response is awaited: an origin may answer
  // (413, 401) before reading it all. The response deadline starts once it is sent.
  let requestError: unknown;
  // No body (most requests): no upload task, and the response deadline starts now.
  const bodySent = !hasBody
    ? undefined
    : sendBody(conn, request.body!, framing, { stallTimeoutMs: req.responseTimeoutMs }).catch((e: unknown) => {
        requestError =
          e instanceof ResponseTimeoutError ? e : new Error(`request body to ${describe(origin)} failed: ${message(e)}`, { cause: e });
        conn.close();
      });
  const { head: responseHead, pending } = await readResponseHead(
    conn,
    parser,
    req.responseTimeoutMs,
    () => requestError,
    bodySent,
  );
  return respond(conn, parser, responseHead, pending, req, opts, log);
}

/** The client's Response for a parsed head; its body follows from the same connection. */
function respond(
  conn: Connection,
  parser: ResponseParser,
  responseHead: ResponseHead,
  pending: ResponseEvent[],
  req: OriginRequest,
  opts: SocketTransportOptions,
  log: TransportLog,
  /** Nothing is being sent (no request body): a whole answer's socket may be left to the runtime. */
  bodyless = false,
): Response {
  const origin = conn.origin;
  if (responseHead.framing.kind === "upgrade") {
    conn.close();
    throw new MalformedResponseError(`${describe(origin)} answered 101 Switching Protocols to a plain request`, origin);
  }
  // The usual small answer, whole with its head: no BodyOptions or closures made for it.
  const onEnd = req.onBodyRelay?.();
  const whole = wholeResponse(conn, responseHead, pending, bodyless, onEnd);
  if (whole !== undefined) return whole;
  const idleTimeoutMs = opts.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS;
  const minRate = opts.minBodyRate ?? DEFAULT_MIN_BODY_RATE;
  return toResponse(conn, parser, responseHead, pending, {
    idleTimeoutMs,
    onError: (error) => {
      log("error", "origin.body_failed", { node: origin.node, error: error.message });
      req.onBodyFailed?.(error);
    },
    onEnd,
    pipeDeadlineMs: (framing) =>
      framing.kind === "length" ? req.responseTimeoutMs + Math.ceil((framing.length * 1000) / minRate) : idleTimeoutMs,
    leaveWholeToRuntime: bodyless,
    onPipeStalled: (why) =>
      log("warn", "origin.body_stalled", { node: origin.node, error: `response body from ${describe(origin)}: ${why}` }),
  });
}
