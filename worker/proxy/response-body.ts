// The origin's response body goes to the client through a native pipe.
// workerd sends a JavaScript stream chunked, without Content-Length, and (in
// Miniflare) can end that chunked response cleanly when the origin's body
// fails, so a truncated download would look complete. A FixedLengthStream
// keeps Content-Length on the wire and aborts the client's response when the
// origin sends fewer bytes than it promised.

/** Statuses that never carry a body; their Content-Length describes something else. */
const BODYLESS = new Set([204, 304]);

/** True when the body carries a Content-Encoding (gzip, br, …). */
export function isEncoded(headers: Headers): boolean {
  const encoding = headers.get("content-encoding")?.trim().toLowerCase();
  return !!encoding && encoding !== "identity";
}

/**
 * How workerd must treat an encoded body on the way out. `raw`: the body
 * holds the origin's bytes as sent (socket transport), already encoded, so
 * workerd must not encode them again. fetch() hands over decoded bytes, which
 * workerd re-encodes as the Content-Encoding header says.
 */
export function encodeBodyFor(headers: Headers, raw: boolean): "manual" | "automatic" {
  return raw && isEncoded(headers) ? "manual" : "automatic";
}

/**
 * The body length the client will receive, when the origin declared it and
 * the bytes pass through as they are. A body fetch() decoded is re-encoded
 * by workerd on the way out, so its declared length is not the client's.
 */
export function declaredLength(headers: Headers, raw = false): number | undefined {
  if (!raw && isEncoded(headers)) return undefined;
  // Headers.get joins repeated fields with ", ", which this rejects.
  const value = headers.get("content-length")?.trim();
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * The body to hand the client. `finished` runs once when the origin's body has
 * been relayed, has failed or the client went away (in-flight bookkeeping).
 * `raw`: the body holds the origin's bytes as sent (see encodeBodyFor).
 * `relayed`: the transport already relays the body natively and reports its
 * end itself (socket): it is handed on as is, and `finished` is not called here.
 */
export function relayBody(
  method: string,
  upstream: Response,
  finished: () => void,
  raw = false,
  relayed = false,
): ReadableStream<Uint8Array> | null {
  const body = upstream.body;
  if (body === null || method === "HEAD" || BODYLESS.has(upstream.status)) {
    // Nothing to relay; an empty stream some transports attach is let go.
    body?.cancel().catch(() => {});
    finished();
    return null;
  }
  if (relayed) return body;
  const length = declaredLength(upstream.headers, raw);
  const { readable, writable } = length === undefined ? new IdentityTransformStream() : new FixedLengthStream(length);
  // Native pipe: workerd moves the bytes without running JavaScript per chunk.
  // The source must not be another transform stream's readable (workerd: "Inter-
  // TransformStream pipeTo() is not implemented"): a transport that hands one
  // over relays it itself (`relayed`).
  // A short or broken origin body errors the pipe, which aborts the client's
  // response; a client that went away cancels the origin's body. Either way
  // the pipe settles once, and the origin stops counting as in flight.
  body.pipeTo(writable).then(finished, finished);
  return readable;
}
