// One TCP (or TLS) connection to an origin, opened with connect() from
// cloudflare:sockets, and the wait for a response head on it. Errors here are
// typed for the proxy: ConnectError (nothing came back, safe to try another
// node), ResponseTimeoutError, MalformedResponseError.
import type { Origin } from "../types.ts";
import { ConnectError, MalformedResponseError, ResponseTimeoutError } from "../types.ts";
import { HttpParseError } from "./http-error.ts";
import type { ResponseEvent, ResponseHead, ResponseParser } from "./response-parser.ts";
import { hostPort } from "./request-head.ts";

export type Connect = (address: SocketAddress, options: SocketOptions) => Socket;

export interface Connection {
  readonly origin: Origin;
  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Closes both directions; safe to call more than once. */
  close(): void;
  readonly closed: boolean;
}

/** `127.0.0.11:31080` — how origins appear in error messages and logs. */
export function describe(origin: Origin): string {
  return `${origin.scheme}://${hostPort(origin.address, origin.port)} (node ${origin.node})`;
}

export async function openConnection(connect: Connect, origin: Origin, timeoutMs: number): Promise<Connection> {
  let socket: Socket;
  try {
    socket = connect(
      // workerd joins hostname and port into one address string: IPv6 needs brackets.
      { hostname: origin.address.includes(":") ? `[${origin.address}]` : origin.address, port: origin.port },
      { secureTransport: origin.scheme === "https" ? "on" : "off", allowHalfOpen: false },
    );
  } catch (e) {
    // Production refuses some destinations synchronously (private ranges, port 25).
    throw new ConnectError(`cannot connect to ${describe(origin)}: ${message(e)}`, origin, { cause: e });
  }
  socket.closed.catch(() => {}); // failures are reported through opened, reads and writes
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    socket.close().catch(() => {});
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      socket.opened,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    close();
    throw new ConnectError(`cannot connect to ${describe(origin)}: ${message(e)}`, origin, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  return {
    origin,
    reader: socket.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>,
    writer: socket.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>,
    close,
    get closed() {
      return closed;
    },
  };
}

export interface HeadResult {
  head: ResponseHead;
  /** Events parsed from the same reads, after the head (body bytes, maybe the end). */
  pending: ResponseEvent[];
}

/**
 * Reads until the parser yields a final response head. `requestFailure`
 * reports a request body that could not be sent, which otherwise would look
 * like a silent origin.
 */
export async function readResponseHead(
  conn: Connection,
  parser: ResponseParser,
  timeoutMs: number,
  requestFailure: () => unknown,
): Promise<HeadResult> {
  const origin = conn.origin;
  const deadline = Date.now() + timeoutMs;
  const fail = (e: unknown): never => {
    conn.close();
    const bodyError = requestFailure();
    if (bodyError !== undefined) throw bodyError;
    if (e instanceof ResponseTimeoutError || e instanceof MalformedResponseError || e instanceof ConnectError) throw e;
    if (e instanceof HttpParseError) {
      if (parser.bytesSeen === 0) {
        throw new ConnectError(`${describe(origin)} closed the connection without responding`, origin);
      }
      throw new MalformedResponseError(`malformed response from ${describe(origin)}: ${e.message}`, origin);
    }
    if (parser.bytesSeen === 0) {
      throw new ConnectError(`connection to ${describe(origin)} failed before a response: ${message(e)}`, origin, {
        cause: e,
      });
    }
    throw new MalformedResponseError(`connection to ${describe(origin)} lost inside the response head: ${message(e)}`, origin);
  };
  try {
    for (;;) {
      const r = await withTimeout(conn.reader.read(), deadline - Date.now(), () => {
        return new ResponseTimeoutError(`no response from ${describe(origin)} within ${timeoutMs} ms`, origin);
      });
      const events = r.done ? parser.finish() : parser.feed(r.value);
      const i = events.findIndex((e) => e.kind === "head");
      if (i !== -1) {
        const head = (events[i] as { kind: "head"; head: ResponseHead }).head;
        return { head, pending: events.slice(i + 1) };
      }
    }
  } catch (e) {
    return fail(e);
  }
}

/** Races a promise against a timer; the timer's error wins when it fires first. */
export async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
