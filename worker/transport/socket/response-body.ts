// Turns a parsed response head and the rest of the connection into a web
// Response whose body is pulled from the socket only as fast as the client
// reads it (no unbounded buffering), and errors when the origin cuts it short.
import { MalformedResponseError } from "../types.ts";
import { type Connection, describe, message, withTimeout } from "./connection.ts";
import { HttpParseError } from "./http-error.ts";
import type { ResponseEvent, ResponseHead, ResponseParser } from "./response-parser.ts";

// Fields about the origin connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "trailer",
  "upgrade",
]);

/** End-to-end response fields; `also` drops more (e.g. the WebSocket handshake's). */
export function responseHeaders(head: ResponseHead, also: readonly string[] = []): Headers {
  const listed = new Set(
    head.headers
      .filter(([n]) => n === "connection")
      .flatMap(([, v]) => v.split(","))
      .map((t) => t.trim().toLowerCase()),
  );
  const headers = new Headers();
  for (const [name, value] of head.headers) {
    if (HOP_BY_HOP.has(name) || listed.has(name) || also.includes(name)) continue;
    headers.append(name, value);
  }
  return headers;
}

export interface BodyOptions {
  /** Longest silence tolerated between two body reads. */
  idleTimeoutMs: number;
  /** Called once when the body cannot be completed (truncated, malformed, stalled). */
  onError: (error: Error) => void;
}

export function toResponse(
  conn: Connection,
  parser: ResponseParser,
  head: ResponseHead,
  pending: ResponseEvent[],
  opts: BodyOptions,
): Response {
  let init: ResponseInit;
  try {
    init = { status: head.status, statusText: head.statusText, headers: responseHeaders(head) };
    if (head.framing.kind === "none") {
      conn.close();
      return new Response(null, init);
    }
    new Response(null, init); // the runtime's own checks on status text and field values
  } catch (e) {
    conn.close();
    throw new MalformedResponseError(`response head from ${describe(conn.origin)} rejected: ${message(e)}`, conn.origin);
  }
  // Hand the body over through a native stream, as fetch() would: workerd then
  // sends Content-Length when it is known, and aborts the client's response
  // when the origin's body breaks (an erroring JS stream can end like a
  // complete chunked body). pipeTo keeps the socket reads paced by the client.
  const sink =
    head.framing.kind === "length" ? new FixedLengthStream(head.framing.length) : new IdentityTransformStream();
  bodyStream(conn, parser, pending, opts)
    .pipeTo(sink.writable)
    .catch(() => {}); // already reported through onError, and seen by the client as a broken body
  return new Response(sink.readable, init);
}

export function bodyStream(
  conn: Connection,
  parser: ResponseParser,
  pending: ResponseEvent[],
  opts: BodyOptions,
): ReadableStream<Uint8Array> {
  const origin = conn.origin;
  const queue = [...pending];
  return new ReadableStream<Uint8Array>(
    {
      // Each pull reads at most what it takes to hand the client one slice.
      async pull(controller) {
        try {
          for (;;) {
            const e = queue.shift();
            if (e?.kind === "data") {
              controller.enqueue(e.bytes);
              return;
            }
            if (e?.kind === "end") {
              conn.close();
              controller.close();
              return;
            }
            if (e?.kind === "error") throw e.error;
            if (e) continue;
            const r = await withTimeout(
              conn.reader.read(),
              opts.idleTimeoutMs,
              () => new Error(`response body stalled for ${opts.idleTimeoutMs} ms`),
            );
            queue.push(...(r.done ? parser.finish() : parser.feed(r.value)));
          }
        } catch (e) {
          conn.close();
          const error =
            e instanceof HttpParseError
              ? new MalformedResponseError(`malformed response body from ${describe(origin)}: ${e.message}`, origin)
              : new MalformedResponseError(`response body from ${describe(origin)} failed: ${message(e)}`, origin);
          opts.onError(error);
          controller.error(error);
        }
      },
      cancel() {
        conn.close(); // the client went away: drop the origin connection
      },
    },
    { highWaterMark: 0 },
  );
}
