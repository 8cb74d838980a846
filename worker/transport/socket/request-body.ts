// Streams the request body to the origin: as declared by Content-Length (and
// checked against it), or in chunked encoding when the length is unknown.
// Each piece goes out as soon as the client sends it (a trickling `curl -T -`
// upload flows at once); nothing is gathered first.
import { ResponseTimeoutError } from "../types.ts";
import { type Connection, describe } from "./connection.ts";
import { encodeChunk, lastChunk, type RequestFraming } from "./request-head.ts";

export interface SendBodyOptions {
  /**
   * Longest time one write may wait for the origin to take bytes. An origin
   * that stops reading the body would otherwise hold the request forever,
   * since the response deadline only starts once the body is sent.
   */
  stallTimeoutMs: number;
}

/**
 * Rejects for faults of the request itself (its stream failed, or its length
 * lies) and with ResponseTimeoutError when the origin stops taking bytes. A
 * connection that fails just ends the upload: the response side reports what
 * happened to the origin.
 */
export async function sendBody(
  conn: Connection,
  body: ReadableStream<Uint8Array> | null,
  framing: RequestFraming,
  opts: SendBodyOptions,
): Promise<void> {
  if (body === null || framing.kind === "none") return;
  const reader = body.getReader();
  let sent = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const bytes = value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBufferLike);
      if (bytes.length === 0) continue;
      sent += bytes.length;
      if (framing.kind === "length") {
        if (sent > framing.length) {
          throw new Error(`request body is longer than its Content-Length (${framing.length})`);
        }
        if (!(await write(conn, bytes, opts))) return;
      } else if (!(await write(conn, encodeChunk(bytes), opts))) return;
    }
    if (framing.kind === "length" && sent !== framing.length) {
      throw new Error(`request body ended after ${sent} of ${framing.length} bytes`);
    }
    if (framing.kind === "chunked") await write(conn, lastChunk(), opts);
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  }
}

/** False when the connection failed; ResponseTimeoutError when the origin took nothing for too long. */
async function write(conn: Connection, bytes: Uint8Array, opts: SendBodyOptions): Promise<boolean> {
  // A timer per write: writes are as many as the client's chunks, and each
  // already costs a round trip through the runtime. Closing the socket does
  // not settle a write the origin is not reading, hence the race.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<"stalled">((resolve) => {
    timer = setTimeout(() => resolve("stalled"), opts.stallTimeoutMs);
  });
  const written = conn.writer.write(bytes).then(
    () => true,
    () => false,
  );
  try {
    const outcome = await Promise.race([written, stalled]);
    if (outcome !== "stalled") return outcome;
    conn.close();
    throw new ResponseTimeoutError(
      `${describe(conn.origin)} took no request body bytes for ${opts.stallTimeoutMs} ms`,
      conn.origin,
    );
  } finally {
    clearTimeout(timer);
  }
}
