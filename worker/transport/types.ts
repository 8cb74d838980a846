// The seam between the proxy (which decides where a request goes and retries)
// and the way bytes reach an origin. fetch() works for hostname origins; bare
// IP origins need HTTP/1.1 over connect() in production (see DESIGN.md).

/** One concrete backend: a node's address and the Service's NodePort. */
export interface Origin {
  /** Kubernetes node name, used for ejection bookkeeping and logs. */
  node: string;
  /** IPv4, IPv6 (without brackets) or hostname. */
  address: string;
  port: number;
  scheme: "http" | "https";
}

/**
 * What a transport reads of the request. A Request has all of it; the proxy
 * passes a plain object so that no Request is built per attempt.
 */
export interface OutgoingRequest {
  readonly method: string;
  /** Its path and query are sent; its host part is ignored (transports use `origin`). */
  readonly url: string;
  readonly headers: Headers;
  /**
   * The same fields as a plain record, when the proxy has them so: a transport that hands the
   * fields to the runtime (fetch) passes this instead, and `headers` is then built only if read.
   */
  readonly fields?: Readonly<Record<string, string>>;
  /**
   * The same fields as a Headers object copied from the client's, when the proxy built one because that
   * is cheaper for fetch() than the record (copyClientHeaders): fetch() takes it before `fields`.
   */
  readonly fetchHeaders?: Headers;
  /** The path and query of `url`, when the proxy has read them already (saves a parse per attempt). */
  readonly target?: string;
  readonly body: ReadableStream<Uint8Array> | null;
}

export interface OriginRequest {
  origin: Origin;
  /**
   * The request to send, already rewritten by the proxy: its URL carries the
   * path and query (its host part is ignored by transports, which use
   * `origin`), headers are final (Host included), body is a stream or null.
   */
  request: OutgoingRequest;
  /**
   * Called when this transport starts relaying a WebSocket itself (socket transport); the
   * transport calls the returned function once when the relay ends. So the proxy counts an open
   * WebSocket as in flight until then. A transport that hands the WebSocket to the runtime
   * (fetch) never calls it.
   */
  onWebSocketRelay?: () => () => void;
  /**
   * Called when this transport relays the response body itself, natively (socket); the
   * transport calls the returned function once when the body is done with (relayed in full,
   * failed, or the client went away). The proxy then hands that body to the client as is
   * (workerd cannot pipe one transform stream into another) and keeps the origin counted
   * as in flight until then. A transport that never calls it returns a body the proxy pipes.
   * The returned function takes how the body ended: "complete" (or nothing) when it was relayed
   * in full, which credits the node; "released" when it stopped counting without being seen
   * whole (its deadline passed, or its pipe broke: a stalled or cut origin, or a client that
   * left or reads slowly, which a native pipe cannot tell apart), which credits no one.
   */
  onBodyRelay?: () => (ended?: "complete" | "released") => void;
  /**
   * Called when the origin's body fails after its head was handed over (cut short, malformed,
   * stalled), before the relay's end; never for a client that went away. Lets the proxy count
   * the failure toward the node's ejection. Only transports that relay the body themselves call it.
   */
  onBodyFailed?: (error: Error) => void;
  /**
   * Called by a transport that returns the runtime's own Response (fetch), with what it read of it:
   * each getter is a call into the runtime, so the proxy takes them from here rather than reading
   * them again. Called only for the very Response that send() then returns, unchanged.
   */
  onHead?: (response: Response, status: number, headers: Headers, body: ReadableStream<Uint8Array> | null) => void;
  /** Give up with a ConnectError when no connection is established in time. */
  connectTimeoutMs: number;
  /**
   * Happy Eyeballs across nodes (RFC 8305's Connection Attempt Delay): a transport that sees its
   * connect phase (socket) starts a second connection to `hedge.next()` when the first has not
   * opened within `hedge.delayMs`, and sends the request over whichever opens first. Transports
   * that cannot see the connect phase (fetch) ignore it.
   */
  hedge?: ConnectHedge;
  /**
   * Give up with a ResponseTimeoutError when no response head arrives this
   * long after the request body was sent in full (the upload itself may take
   * longer), or when the origin stops taking the body for this long.
   */
  responseTimeoutMs: number;
}

/**
 * One request's connect hedge (worker/proxy/hedge). A request with a body or an unsafe method
 * is written only once its connection opened: it goes over one node only. A bodyless GET, HEAD
 * or OPTIONS has its head queued on each attempt (the socket fast start): a loser that opens
 * late may carry it too before it is closed; the answer is read from the winner only.
 */
export interface ConnectHedge {
  /** How long the first connect may stay unopened before the second starts. */
  readonly delayMs: number;
  /** Called once, when the first connect is that slow: the second origin, or undefined for none. */
  next(): Origin | undefined;
  /**
   * Every connect attempt's outcome: opened after `ms`, or failed with `error`. `used`: the
   * request goes over this connection (or this attempt's error is the one thrown); an attempt
   * that lost the race is reported here only, and its connection (if it opens) is closed unused.
   */
  settled(origin: Origin, outcome: { ms: number; error?: ConnectError; used: boolean }): void;
  /** Keeps the request's context alive until a losing attempt settles (ctx.waitUntil). */
  keepAlive(done: Promise<unknown>): void;
  /**
   * The request's headers for the second origin when they differ from the first's (a node gate's
   * signature names its node); awaited before any byte is written to it (before its connect
   * starts when the request takes the fast start, see socket/hedged-connect.ts).
   */
  headersFor?(origin: Origin): Promise<Headers | undefined>;
}

export interface Transport {
  readonly name: "fetch" | "socket";
  send(req: OriginRequest): Promise<Response>;
}

// The error contract (the proxy's retry rule depends on it):
// - ConnectError: certainly no byte of the request was written to the origin
//   (refused, connect timeout, TLS handshake failure, DNS, a destination the
//   runtime refuses). The request cannot have run: any method may be retried
//   on another node.
// - Anything that happens after a request byte may have been written is NOT a
//   ConnectError: UpstreamResetError (the connection failed while sending, or
//   before a response head), ResponseTimeoutError (no head in time after the
//   body was sent), MalformedResponseError (bytes that are not HTTP/1.1). The
//   origin may have acted on the request: retry only idempotent methods.
// - InvalidRequestHeadError: the request itself cannot be written safely
//   (smuggling attempt); thrown before any connection. Answer 400.
// - Any other error is a fault of the request's own body (its stream failed,
//   or it is shorter/longer than its Content-Length): not the node's fault.
// When unsure, a transport must pick the non-ConnectError class: a POST run
// twice costs more than a failover that did not happen.

/**
 * Certainly nothing of the request reached the origin (refused, connect
 * timeout, TLS handshake failure, DNS). Safe to try another node, any method.
 */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
  /** No answer to the connect within the connect timeout (a blackholed node), as opposed to refused or reset. */
  readonly timedOut: boolean;
  constructor(
    message: string,
    readonly origin: Origin,
    options?: { cause?: unknown; timedOut?: boolean },
  ) {
    super(message, options);
    this.timedOut = options?.timedOut ?? false;
  }
}

/**
 * The connection failed after request bytes may have been written (reset or
 * closed while sending or before a response head), or a fetch() failed in a
 * way that cannot tell. The origin may have run the request: retry only
 * idempotent methods.
 */
export class UpstreamResetError extends Error {
  override readonly name = "UpstreamResetError";
  constructor(
    message: string,
    readonly origin: Origin,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * No response head within responseTimeoutMs after the request body was sent
 * in full (the deadline does not run during a slow upload), or the origin
 * stopped taking the request body for that long. The request may have run.
 */
export class ResponseTimeoutError extends Error {
  override readonly name = "ResponseTimeoutError";
  constructor(
    message: string,
    readonly origin: Origin,
  ) {
    super(message);
  }
}

/** The origin answered with bytes that are not valid HTTP/1.1. Becomes a 502. */
export class MalformedResponseError extends Error {
  override readonly name = "MalformedResponseError";
  constructor(
    message: string,
    readonly origin: Origin,
  ) {
    super(message);
  }
}

/**
 * The request cannot be written to an origin without changing its meaning: a
 * field name that is not an RFC 9110 token, or a CR, LF or NUL in a name,
 * value, method or target (what request smuggling needs). Thrown before any
 * connection is opened; the proxy answers 400.
 */
export class InvalidRequestHeadError extends Error {
  override readonly name = "InvalidRequestHeadError";
}
