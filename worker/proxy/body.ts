// The client's request body on its way to one or more origins. A body with a
// small Content-Length is read first so that a retry can send it again; any
// other body (large, or of unknown length: a trickling `curl -T -` upload)
// streams at once and is sent to one origin only. Every byte that passes is
// counted against the declared length, so a client that hangs up or sends
// fewer bytes than it announced is told apart from an origin failure.

export const RETRY_BUFFER_LIMIT = 64 * 1024;

/** The client's body failed (ended early, too long, or the client went away): the client's fault, never the node's. */
export class ClientBodyError extends Error {
  override readonly name = "ClientBodyError";
}

/** The client sent no byte of its body for the idle timeout (nginx client_body_timeout): answered 408. */
export class ClientBodyTimeoutError extends ClientBodyError {}

/** Default client-body idle timeout (nginx client_body_timeout). */
export const CLIENT_BODY_IDLE_MS = 60_000;

/** One read of the client's body, failing when no byte comes for `idleMs`. */
function readIdle(reader: ReadableStreamDefaultReader<Uint8Array>, idleMs: number): Promise<ReadableStreamReadResult<Uint8Array>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClientBodyTimeoutError(`no request body byte for ${idleMs} ms`)), idleMs);
  });
  return Promise.race([reader.read(), idle]).finally(() => clearTimeout(timer));
}

export interface PreparedBody {
  /** True when every attempt can send the same body again. */
  readonly replayable: boolean;
  /** The body for the next attempt; a streamed body can be taken only once. */
  take(): ReadableStream<Uint8Array> | null;
  /** Whether the last attempt's transport read any byte of the body (so the request head had gone out). */
  readonly started: boolean;
  /** Set once the client's body failed while streaming. */
  readonly clientError: ClientBodyError | undefined;
}

export type BodyOutcome = { ok: true; body: PreparedBody } | { ok: false; error: ClientBodyError };

/** A declared length, or undefined when absent; NaN when present but not a number (refused). */
export function declaredLength(request: Request): number | undefined {
  const value = request.headers.get("content-length");
  if (value === null) return undefined;
  return /^\d{1,15}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
}

/** The body of a request without one: shared by every such request (nothing in it changes). */
export const NO_BODY: PreparedBody = Object.freeze({ replayable: true, started: false, clientError: undefined, take: () => null });

export async function prepareBody(request: Request, limit = RETRY_BUFFER_LIMIT, idleMs = CLIENT_BODY_IDLE_MS): Promise<BodyOutcome> {
  const body = request.body;
  if (body === null) return { ok: true, body: NO_BODY };
  const declared = declaredLength(request);
  if (declared !== undefined && Number.isNaN(declared)) {
    return { ok: false, error: new ClientBodyError("Content-Length is not a number") };
  }
  if (declared !== undefined && declared <= limit) {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = body.getReader();
    try {
      for (;;) {
        const r = await readIdle(reader, idleMs);
        if (r.done) break;
        chunks.push(r.value);
        total += r.value.byteLength;
        if (total > declared) break;
      }
    } catch (e) {
      reader.cancel(e).catch(() => {});
      if (e instanceof ClientBodyTimeoutError) return { ok: false, error: e };
      return { ok: false, error: new ClientBodyError(`request body failed: ${(e as Error).message ?? String(e)}`) };
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    if (bytes.byteLength !== declared) {
      return { ok: false, error: new ClientBodyError(`request body ended after ${bytes.byteLength} of ${declared} bytes`) };
    }
    return { ok: true, body: buffered(bytes) };
  }
  return { ok: true, body: streamed(body, declared, idleMs) };
}

function buffered(bytes: Uint8Array): PreparedBody {
  let started = false;
  return {
    replayable: true,
    clientError: undefined,
    get started() {
      return started;
    },
    take() {
      started = false;
      // A fresh stream per attempt, so the proxy sees whether the transport began to send it.
      let sent = false;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent) return controller.close();
          sent = true;
          started = true;
          controller.enqueue(bytes.slice());
        },
        // No read ahead: a pull means the transport itself is sending.
      }, { highWaterMark: 0 });
    },
  };
}

/**
 * Passes the client's stream through chunk by chunk as it arrives (no
 * waiting for a buffer to fill), counting bytes against the declared length.
 */
function streamed(source: ReadableStream<Uint8Array>, declared: number | undefined, idleMs: number): PreparedBody {
  let started = false;
  let takes = 0;
  let clientError: ClientBodyError | undefined;
  let received = 0;
  const reader = source.getReader();
  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, message: string, timeout = false) => {
    clientError = timeout ? new ClientBodyTimeoutError(message) : new ClientBodyError(message);
    controller.error(clientError);
    reader.cancel(clientError).catch(() => {});
  };
  // A fresh wrapper per take; only the newest reads the client's stream, and an older one (given to an
  // attempt that failed before reading a byte) can no longer cancel it.
  const wrap = (id: number) => new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (id !== takes) return controller.error(new Error("the request body went to another attempt"));
      // No read ahead (highWaterMark 0): a pull means the transport itself is sending the body.
      started = true;
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await readIdle(reader, idleMs);
      } catch (e) {
        if (e instanceof ClientBodyTimeoutError) return fail(controller, `${e.message} after ${received} bytes`, true);
        return fail(controller, `request body failed after ${received} bytes: ${(e as Error).message ?? String(e)}`);
      }
      if (r.done) {
        if (declared !== undefined && received !== declared) {
          return fail(controller, `request body ended after ${received} of ${declared} bytes`);
        }
        return controller.close();
      }
      received += r.value.byteLength;
      if (declared !== undefined && received > declared) {
        return fail(controller, `request body is longer than its Content-Length (${declared})`);
      }
      controller.enqueue(r.value);
    },
    cancel(reason) {
      if (id === takes) return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return {
    replayable: false,
    get started() {
      return started;
    },
    get clientError() {
      return clientError;
    },
    take() {
      if (started) throw new Error("a streamed request body can be sent only once");
      return wrap(++takes);
    },
  };
}
