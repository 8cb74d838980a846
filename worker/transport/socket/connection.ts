// One TCP (or TLS) connection to an origin, opened with connect() from
// cloudflare:sockets, and the wait for a response head on it. Errors follow
// the contract in ../types.ts: ConnectError only while nothing was written
// (connect, TLS handshake), UpstreamResetError / ResponseTimeoutError /
// MalformedResponseError once request bytes may have gone out.
import type { Origin } from "../types.ts";
import { ConnectError, MalformedResponseError, ResponseTimeoutError, UpstreamResetError } from "../types.ts";
import { HttpParseError } from "./http-error.ts";
import type { ResponseEvent, ResponseHead, ResponseParser } from "./response-parser.ts";
import { hostPort } from "./request-head.ts";
import { Deadline } from "../deadline/index.ts";

export { Deadline };

export type Connect = (address: SocketAddress, options: SocketOptions) => Socket;

export interface Connection {
  readonly origin: Origin;
  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The socket's readable side, locked by `reader` until it is released (native body pipes). */
  readonly readable: ReadableStream<Uint8Array>;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  /** The request's one timer: the connect deadline, then the response-head deadline. */
  readonly deadline: Deadline;
  /** Closes both directions; safe to call more than once. */
  close(): void;
  readonly closed: boolean;
}

/** `127.0.0.11:31080` — how origins appear in error messages and logs. */
export function describe(origin: Origin): string {
  return `${origin.scheme}://${hostPort(origin.address, origin.port)} (node ${origin.node})`;
}

/** Called once when the connect has not opened `afterMs` into its timeout (the connect hedge's cue). */
export interface SlowConnect {
  afterMs: number;
  onSlow: () => void;
}

/** connect() to the origin; a destination the runtime refuses at once throws a ConnectError. */
function openSocket(connect: Connect, origin: Origin): Socket {
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
  // No handler on socket.closed: workerd marks it (and opened) handled itself (api/sockets.c++,
  // setupSocket), and failures are reported through opened, reads and writes.
  return socket;
}

export function openConnection(connect: Connect, origin: Origin, timeoutMs: number, slow?: SlowConnect): Promise<Connection> {
  let socket: Socket;
  try {
    socket = openSocket(connect, origin);
  } catch (e) {
    return Promise.reject(e);
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    socket.close().catch(() => {});
  };
  const deadline = new Deadline();
  // One promise, settled by the open or the deadline, whichever comes first (no async
  // layer, no Promise.race, no Error made unless it fails).
  return new Promise<Connection>((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      deadline.clear();
      close();
      reject(new ConnectError(`cannot connect to ${describe(origin)}: ${message(e)}`, origin, { cause: e, timedOut }));
    };
    const expire = () => fail(new Error(`no connection within ${timeoutMs} ms`), true);
    // The same timer first marks the slow point, then the timeout: the fast path arms one timer.
    if (slow !== undefined && slow.afterMs < timeoutMs) {
      deadline.set(slow.afterMs, () => {
        deadline.set(timeoutMs - slow.afterMs, expire);
        slow.onSlow();
      });
    } else deadline.set(timeoutMs, expire);
    socket.opened.then(
      () => {
        if (settled) return;
        settled = true;
        resolve({
          origin,
          deadline,
          reader: socket.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>,
          readable: socket.readable as ReadableStream<Uint8Array>,
          writer: socket.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>,
          close,
          get closed() {
            return closed;
          },
        });
      },
      (e: unknown) => fail(e, false),
    );
  });
}

export interface HeadResult {
  head: ResponseHead;
  /** Events parsed from the same reads, after the head (body bytes, maybe the end). */
  pending: ResponseEvent[];
}

/**
 * Reads until the parser yields a final response head. The deadline of
 * `timeoutMs` starts when `bodySent` settles (the request body is written in
 * full, or its upload ended): a slow upload is not a silent origin. A head
 * that arrives earlier (413 before the body is read) is taken at once.
 * `requestFailure` reports a request body that could not be sent, which
 * otherwise would look like an origin that hung up.
 */
export async function readResponseHead(
  conn: Connection,
  parser: ResponseParser,
  timeoutMs: number,
  requestFailure: () => unknown,
  /** Settles when the request body is sent; undefined when there is none (the deadline starts now). */
  bodySent?: Promise<unknown>,
): Promise<HeadResult> {
  const origin = conn.origin;
  let finished = false;
  // At the deadline the socket is closed, which ends the pending read. With a
  // request body a write may be stuck (an origin that reads nothing), and then
  // closing does not end the read: only then is an expiry promise raced
  // against each read.
  let timedOut: ResponseTimeoutError | undefined;
  let expire: ((e: Error) => void) | undefined;
  const expired = bodySent ? new Promise<never>((_, reject) => (expire = reject)) : undefined;
  expired?.catch(() => {});
  // Until the body is sent, no deadline runs (a slow upload is not a silent origin).
  conn.deadline.hold();
  const startClock = () => {
    if (finished) return;
    conn.deadline.set(timeoutMs, () => {
      timedOut = new ResponseTimeoutError(`no response from ${describe(origin)} within ${timeoutMs} ms`, origin);
      expire?.(timedOut);
      conn.close();
    });
  };
  if (bodySent) bodySent.then(startClock, startClock);
  else startClock();
  try {
    for (;;) {
      const r = expired ? await Promise.race([conn.reader.read(), expired]) : await conn.reader.read();
      if (timedOut) throw timedOut;
      const events = r.done ? parser.finish() : parser.feed(r.value);
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (e.kind === "head") return { head: e.head, pending: i === events.length - 1 ? [] : events.slice(i + 1) };
      }
    }
  } catch (e) {
    conn.deadline.clear();
    return headFailed(conn, parser, timedOut ?? e, requestFailure());
  } finally {
    finished = true;
    // Disarmed, not cleared: the armed timer fires into nothing (or is reused by the body's
    // deadline), and the runtime drops it with the request; a clearTimeout per request is saved.
    conn.deadline.hold();
  }
}

/**
 * Closes the connection and throws what a failed wait for the head means under
 * the error contract (../types.ts): the request went out, all or part of it,
 * so whatever happened the origin may have acted on it.
 */
function headFailed(conn: Connection, parser: ResponseParser, e: unknown, bodyError: unknown): never {
  const origin = conn.origin;
  conn.close();
  if (bodyError !== undefined) throw bodyError;
  if (e instanceof ResponseTimeoutError || e instanceof MalformedResponseError || e instanceof UpstreamResetError) throw e;
  if (e instanceof HttpParseError) {
    if (parser.bytesSeen === 0) {
      throw new UpstreamResetError(`${describe(origin)} closed the connection without responding`, origin);
    }
    throw new MalformedResponseError(`malformed response from ${describe(origin)}: ${e.message}`, origin);
  }
  if (parser.bytesSeen === 0) {
    throw new UpstreamResetError(`connection to ${describe(origin)} failed before a response: ${message(e)}`, origin, {
      cause: e,
    });
  }
  throw new MalformedResponseError(`connection to ${describe(origin)} lost inside the response head: ${message(e)}`, origin);
}

/** A bodyless request started by startRequest: its connection, and what is known of its open. */
export interface StartedRequest extends Connection {
  /** Set when the deadline ended the wait: a timed-out ConnectError before the open, a ResponseTimeoutError after. */
  readonly expired: ConnectError | ResponseTimeoutError | undefined;
  /** After the wait for the head failed with no byte read: the ConnectError when the connection never opened. */
  connectFailure(): Promise<ConnectError | undefined>;
  /** The wait for the head is over (head in, or failed): the open no longer arms the response deadline. */
  headDone(): void;
  /** The hedge's other connection opened first: the wait for this one's head ends (readStartedHead throws SUPERSEDED). */
  readonly superseded: boolean;
  /** Ends the wait for this head; the connect runs on (its open or timeout is still told to the watcher). */
  supersede(): void;
}

/** What readStartedHead throws for a connection its hedge's other connection replaced (see supersede()). */
export const SUPERSEDED: Error = Object.freeze(new Error("the hedge's other connection opened first"));

/** Told once how a started request's connect ended (the connect hedge's race, hedged-connect.ts). */
export interface ConnectWatcher {
  opened(conn: StartedRequest): void;
  /** Never opened: refused, or no connection within the connect timeout. */
  failed(conn: StartedRequest, error: ConnectError): void;
}

/**
 * The fast start of a request without a body: connect(), write its head and
 * read, without awaiting the open in between. The runtime holds the write
 * until the connection is up (nothing reaches an origin that never accepted
 * it), so the first suspension is the read of the answer: one promise hop and
 * one async resumption fewer per request than open, then write, then read.
 * The retry contract is kept by asking, only when the read fails with no byte
 * read, whether the connection ever opened: a refusal or a connect timeout is
 * a ConnectError (nothing was written, any method may go to another node),
 * anything after the open is not. One timer: the connect deadline, then, from
 * the open, the response deadline. Throws a ConnectError when the runtime
 * refuses the destination at once.
 */
export function startRequest(
  connect: Connect,
  origin: Origin,
  head: Uint8Array,
  connectTimeoutMs: number,
  responseTimeoutMs: number,
  slow?: SlowConnect,
  watcher?: ConnectWatcher,
): StartedRequest {
  return new StartedConnection(openSocket(connect, origin), origin, head, connectTimeoutMs, responseTimeoutMs, slow, watcher);
}

// A class, not an object literal with getters: accessors and methods in a
// literal are made anew for every request.
class StartedConnection implements StartedRequest {
  readonly deadline = new Deadline();
  readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  closed = false;
  superseded = false;
  expired: ConnectError | ResponseTimeoutError | undefined;
  /** undefined while the connect is pending. */
  private opened: boolean | undefined;
  private openError: unknown;
  /** The wait for the head is over: the open no longer arms the response deadline. */
  private settled = false;
  /** Wakes a connectFailure() waiting on an open that has not settled. */
  private wake: (() => void) | undefined;
  /** The refusal, made once (the watcher and connectFailure() see the same error). */
  private refusal: ConnectError | undefined;

  constructor(
    private readonly socket: Socket,
    readonly origin: Origin,
    head: Uint8Array,
    private readonly connectTimeoutMs: number,
    private readonly responseTimeoutMs: number,
    slow?: SlowConnect,
    /** Told once how the connect ended; cleared when told. */
    private watcher?: ConnectWatcher,
  ) {
    this.readable = socket.readable as ReadableStream<Uint8Array>;
    this.reader = this.readable.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    this.writer = socket.writable.getWriter() as WritableStreamDefaultWriter<Uint8Array>;
    // Not awaited: a failed write ends the read, which then tells what failed.
    this.writer.write(head).catch(this.close);
    // As in openConnection: the one timer first marks the hedge's slow point, then the connect timeout
    // (the open replaces either with the response deadline).
    if (slow !== undefined && slow.afterMs < connectTimeoutMs) {
      this.deadline.set(slow.afterMs, () => {
        this.deadline.set(connectTimeoutMs - slow.afterMs, this.expire);
        slow.onSlow();
      });
    } else this.deadline.set(connectTimeoutMs, this.expire);
    socket.opened.then(this.onOpen, this.onOpenFailed);
  }

  readonly close = (): void => {
    if (this.closed) return;
    this.closed = true;
    this.socket.close().catch(() => {});
  };

  headDone(): void {
    this.settled = true;
  }

  supersede(): void {
    if (this.superseded) return;
    this.superseded = true;
    // Cancelling the reader ends the pending read at once; the connect goes on (checked in workerd):
    // a late open closes it unused, a timeout still counts against its node.
    this.reader.cancel().catch(() => {});
  }

  async connectFailure(): Promise<ConnectError | undefined> {
    if (this.expired instanceof ConnectError) return this.expired;
    if (this.opened === undefined) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.expired instanceof ConnectError) return this.expired;
    if (this.opened) return undefined;
    return this.refused();
  }

  private refused(): ConnectError {
    const e = this.openError;
    return (this.refusal ??= new ConnectError(`cannot connect to ${describe(this.origin)}: ${message(e)}`, this.origin, { cause: e }));
  }

  private readonly onOpen = (): void => {
    this.opened = true;
    const watcher = this.watcher;
    if (watcher !== undefined) {
      // First: a race this connection lost closes it here, and it arms no deadline below.
      this.watcher = undefined;
      watcher.opened(this);
    }
    // The response deadline runs from the open (the head is written then), unless the head is already in.
    if (!this.settled && !this.closed) this.deadline.set(this.responseTimeoutMs, this.expire);
    this.wake?.();
  };

  private readonly onOpenFailed = (e: unknown): void => {
    this.opened = false;
    this.openError = e;
    const watcher = this.watcher;
    if (watcher !== undefined) {
      this.watcher = undefined;
      watcher.failed(this, this.expired instanceof ConnectError ? this.expired : this.refused());
    }
    this.wake?.();
  };

  private readonly expire = (): void => {
    const origin = this.origin;
    this.expired =
      this.opened === true
        ? new ResponseTimeoutError(`no response from ${describe(origin)} within ${this.responseTimeoutMs} ms`, origin)
        : new ConnectError(`cannot connect to ${describe(origin)}: no connection within ${this.connectTimeoutMs} ms`, origin, {
            timedOut: true,
          });
    const watcher = this.watcher;
    if (watcher !== undefined && this.expired instanceof ConnectError) {
      this.watcher = undefined;
      watcher.failed(this, this.expired);
    }
    this.close();
    // Closing ends a real socket's pending read; cancelling ends it whatever the socket does.
    this.reader.cancel().catch(() => {});
    this.wake?.();
  };
}

/** Reads the head of a request started by startRequest (its deadline already runs). */
export async function readStartedHead(conn: StartedRequest, parser: ResponseParser): Promise<HeadResult> {
  try {
    for (;;) {
      const found = startedHeadIn(conn, parser, await conn.reader.read());
      if (found !== undefined) return found;
    }
  } catch (e) {
    return startedHeadFailed(conn, parser, e);
  }
}

/**
 * One read of a started request's head (readStartedHead's loop, also inlined
 * by the transport's bodyless fast path to save an async layer per request):
 * the head with what followed it, undefined while it is incomplete; throws
 * what ended the wait (the deadline, a hedge's supersede, a malformed head).
 */
export function startedHeadIn(
  conn: StartedRequest,
  parser: ResponseParser,
  r: ReadableStreamReadResult<Uint8Array>,
): HeadResult | undefined {
  if (conn.expired) throw conn.expired;
  if (conn.superseded) throw SUPERSEDED;
  const events = r.done ? parser.finish() : parser.feed(r.value);
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.kind === "head") {
      // Disarmed, not cleared (see readResponseHead).
      conn.headDone();
      conn.deadline.hold();
      return { head: e.head, pending: i === events.length - 1 ? [] : events.slice(i + 1) };
    }
  }
  return undefined;
}

/** What a failed wait for a started request's head means under the error contract (always rejects). */
export async function startedHeadFailed(conn: StartedRequest, parser: ResponseParser, e: unknown): Promise<never> {
  conn.headDone();
  // Replaced by the hedge's other connection: its connect runs on, with its deadline, to be judged.
  if (conn.superseded) throw SUPERSEDED;
  // No byte came back: did the connection ever open? If not, nothing was written.
  // (The connect deadline still runs while that is unknown.)
  const refused = parser.bytesSeen === 0 ? await conn.connectFailure() : undefined;
  conn.deadline.clear();
  if (refused !== undefined) {
    conn.close();
    throw refused;
  }
  return headFailed(conn, parser, conn.expired ?? e, undefined);
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
