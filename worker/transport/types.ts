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

export interface OriginRequest {
  origin: Origin;
  /**
   * The request to send, already rewritten by the proxy: its URL carries the
   * path and query (its host part is ignored by transports, which use
   * `origin`), headers are final (Host included), body is a stream or null.
   */
  request: Request;
  /** Give up with a ConnectError when no connection is established in time. */
  connectTimeoutMs: number;
  /** Give up with a ResponseTimeoutError when no response head arrives in time. */
  responseTimeoutMs: number;
}

export interface Transport {
  readonly name: "fetch" | "socket";
  send(req: OriginRequest): Promise<Response>;
}

/**
 * The origin could not be reached before any byte of a response arrived
 * (refused, reset, DNS, connect timeout). The proxy may retry another node.
 */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
  constructor(
    message: string,
    readonly origin: Origin,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Connected, but no response head within responseTimeoutMs. Not retried (the request may have run). */
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

/** The origin reset or closed the connection after request bytes went out: the request may have run. */
export class UpstreamResetError extends Error {
  override readonly name = "UpstreamResetError";
  constructor(message: string, readonly origin: Origin, options?: { cause?: unknown }) {
    super(message, options);
  }
}
