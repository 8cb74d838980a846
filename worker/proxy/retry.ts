// When a failed attempt may go to another node (nginx proxy_next_upstream
// without non_idempotent, Envoy, HAProxy): a connection that failed before any
// request byte was written, whatever the method; after bytes were written, and
// on a 502/503/504 answer, only idempotent methods — and only when the body can
// be sent again. A Service may opt in to retrying every method.

/** RFC 9110 §9.2.2 idempotent methods (TRACE aside: never proxied usefully). */
export const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

export type FailureStage =
  /** Nothing reached the origin (refused, connect timeout, TLS failure). */
  | "before-send"
  /** Bytes went out: the origin may have acted on the request (reset, timeout, malformed answer). */
  | "after-send"
  /** The origin answered 502, 503 or 504. */
  | "status";

export interface RetryQuestion {
  method: string;
  stage: FailureStage;
  /** The same body can be sent again (none, or buffered). */
  replayable: boolean;
  /** The Service opted in with edgelb.dev/retry-non-idempotent: "true". */
  retryNonIdempotent: boolean;
  websocket: boolean;
}

/** Why a failed attempt is not tried elsewhere, or undefined when it may be. */
export function retryRefusal(q: RetryQuestion): string | undefined {
  // Nothing reached the node: the proxy says "before-send" for a streamed body only when no byte of it was read.
  if (q.stage === "before-send") return undefined;
  if (!q.replayable) return "the request body cannot be sent again";
  // A handshake (a GET) that got no answer may go elsewhere; one the node answered with a 5xx is passed on.
  if (q.websocket && q.stage === "status") return "the node answered the WebSocket handshake";
  if (!IDEMPOTENT.has(q.method) && !q.retryNonIdempotent) return `${q.method} is not idempotent and may have run`;
  return undefined;
}
