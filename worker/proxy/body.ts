// Request bodies up to a limit are buffered so that a failed connection can be
// retried on another node; larger ones stream once and are not retried.

export const RETRY_BUFFER_LIMIT = 64 * 1024;

export interface PreparedBody {
  /** True when every attempt can send the same body again. */
  replayable: boolean;
  /** The body for the next attempt; a streamed body can be taken only once. */
  take(): BodyInit | null;
  /** Whether a streamed body was already handed out. */
  readonly consumed: boolean;
}

export async function prepareBody(request: Request, limit = RETRY_BUFFER_LIMIT): Promise<PreparedBody> {
  const body = request.body;
  if (body === null || request.method === "GET" || request.method === "HEAD") return buffered(null);
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared)) {
    return Number(declared) <= limit ? buffered(await request.arrayBuffer()) : streamed(body);
  }
  // Unknown length: read up to the limit; if the body ends there it is small.
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return buffered(concat(chunks, size));
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) break;
  }
  // Too large to keep: hand out what was read, then the rest as it arrives.
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return streamed(rest);
}

function buffered(bytes: ArrayBuffer | Uint8Array | null): PreparedBody {
  return { replayable: true, consumed: false, take: () => bytes };
}

function streamed(stream: ReadableStream<Uint8Array>): PreparedBody {
  let consumed = false;
  return {
    replayable: false,
    get consumed() {
      return consumed;
    },
    take() {
      if (consumed) throw new Error("a streamed request body can be sent only once");
      consumed = true;
      return stream;
    },
  };
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
