// Streams the request body to the origin: as declared by Content-Length (and
// checked against it), or in chunked encoding when the length is unknown.
import type { Connection } from "./connection.ts";
import { encodeChunk, lastChunk, type RequestFraming } from "./request-head.ts";

/**
 * Rejects only for faults of the request itself (its stream failed, or its
 * length lies). A connection that stops taking bytes just ends the upload: the
 * response side reports what happened to the origin.
 */
export async function sendBody(
  conn: Connection,
  body: ReadableStream<Uint8Array> | null,
  framing: RequestFraming,
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
        if (!(await write(conn, bytes))) return;
      } else if (!(await write(conn, encodeChunk(bytes)))) return;
    }
    if (framing.kind === "length" && sent !== framing.length) {
      throw new Error(`request body ended after ${sent} of ${framing.length} bytes`);
    }
    if (framing.kind === "chunked") await write(conn, lastChunk());
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  }
}

function write(conn: Connection, bytes: Uint8Array): Promise<boolean> {
  return conn.writer.write(bytes).then(
    () => true,
    () => false,
  );
}
