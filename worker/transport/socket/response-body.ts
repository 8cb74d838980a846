// Turns a parsed response head and the rest of the connection into a web
// Response whose body is pulled from the socket only as fast as the client
// reads it (no unbounded buffering), and errors when the origin cuts it short.
import { MalformedResponseError } from "../types.ts";
import { type Connection, describe, message } from "./connection.ts";
import { concat } from "./bytes.ts";
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

/** End-to-end response fields, as name/value pairs; `also` drops more (e.g. the WebSocket handshake's). */
export function responseHeaders(head: ResponseHead, also: readonly string[] = []): [string, string][] {
  // Fields the origin's Connection header names are hop-by-hop too (rare: looked for only when present).
  let listed: Set<string> | undefined;
  let drop = false;
  for (const [n, v] of head.headers) {
    if (HOP_BY_HOP.has(n) || (also.length > 0 && also.includes(n))) drop = true;
    if (n !== "connection") continue;
    listed ??= new Set();
    for (const t of v.split(",")) listed.add(t.trim().toLowerCase());
  }
  // Nothing to drop (a Content-Length answer without Connection): the parsed fields as they are.
  if (!drop) return head.headers;
  const out: [string, string][] = [];
  for (const field of head.headers) {
    const name = field[0];
    if (HOP_BY_HOP.has(name) || listed?.has(name) || (also.length > 0 && also.includes(name))) continue;
    out.push(field);
  }
  return out;
}

/**
 * The end-to-end fields as the Response's `headers` init: a record (no
 * prototype) when no name repeats, else the pairs of responseHeaders. The
 * runtime reads an array of pairs through the iteration protocol, a call per
 * pair and per string (~60k of (c′)'s ~810k instructions per request under
 * callgrind, issue 14), and a record by its own property names. Repeated names
 * (Set-Cookie) keep the pairs: a record holds one value per name. The same
 * Headers either way (property-tested beside this file).
 */
export function responseFieldsInit(head: ResponseHead): Record<string, string> | [string, string][] {
  const record: Record<string, string> = Object.create(null);
  const fields = head.headers;
  let connection: string | undefined;
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    const name = field[0];
    if (name in record) return responseHeaders(head);
    if (name === "connection") connection = connection === undefined ? field[1] : `${connection},${field[1]}`;
    else if (!HOP_BY_HOP.has(name)) record[name] = field[1];
  }
  // Fields the origin's Connection field names are hop-by-hop too (usually it only says "close").
  if (connection !== undefined) for (const t of connection.split(",")) delete record[t.trim().toLowerCase()];
  return record;
}

export interface BodyOptions {
  /** Longest silence tolerated between two body reads. */
  idleTimeoutMs: number;
  /** Called once when the body cannot be completed (truncated, malformed, stalled). */
  onError: (error: Error) => void;
  /**
   * Called once when the body is done with: relayed in full ("complete"), or
   * no longer counted without being seen whole ("released": a native pipe's
   * deadline, or its end, which JavaScript cannot verify), or failed, or the
   * client went away.
   */
  onEnd?: (ended?: "complete" | "released") => void;
  /**
   * The whole-body deadline of a natively piped body (Content-Length or
   * close-delimited), in ms from the head. Without it every body goes through
   * the JavaScript pump.
   */
  pipeDeadlineMs?: (framing: { kind: "length"; length: number } | { kind: "close" }) => number;
  /** Called once when a natively piped body passed its deadline (before onEnd); blames no node. */
  onPipeStalled?: (why: string) => void;
  /**
   * A whole answer (its body came with the head) leaves its socket open for
   * the runtime, which closes a request's sockets when the request ends (right
   * after these bytes are written): socket.close() costs about a fifth of the
   * transport's CPU per request (bench (c′), issue 14). Only for requests
   * without a body (nothing is still being sent) run per client request.
   */
  leaveWholeToRuntime?: boolean;
}

/** The Response for a parsed head; a head the runtime refuses closes the connection and ends the body's count. */
function makeResponse(conn: Connection, head: ResponseHead, body: BodyInit | null, onEnd: BodyOptions["onEnd"]): Response {
  // The runtime's own checks on status text and field values run once, where
  // the Response is made; what they refuse is the origin's malformed answer.
  try {
    return new Response(body, { status: head.status, statusText: head.statusText, headers: responseFieldsInit(head) });
  } catch (e) {
    conn.close();
    onEnd?.();
    throw new MalformedResponseError(`response head from ${describe(conn.origin)} rejected: ${message(e)}`, conn.origin);
  }
}

/**
 * The Response of an answer with no body, or whose whole body came with the
 * head (most small answers, chunked ones decoded up to their last chunk),
 * handed over as bytes: no stream, writer, copy loop or timer, and the origin
 * is done with at once (`onEnd` called). The client gets a Content-Length
 * where the origin sent a small chunked answer. Undefined when the body is
 * still to come (then toResponse, which needs the full BodyOptions). Checked
 * first so that the usual small answer makes no BodyOptions and no closures.
 */
export function wholeResponse(
  conn: Connection,
  head: ResponseHead,
  pending: ResponseEvent[],
  /** See BodyOptions.leaveWholeToRuntime. */
  leaveToRuntime: boolean | undefined,
  onEnd: BodyOptions["onEnd"],
): Response | undefined {
  const whole = head.framing.kind === "none" ? null : wholeBody(pending);
  if (whole === undefined) return undefined;
  const res = makeResponse(conn, head, whole, onEnd);
  // An error answer is closed at once: the proxy may throw it away and retry
  // on another node (5xx, a gate's 403 refusal: review rv-proxy s7 2), and the
  // request then lives on, so a retry must not hold a second of its 6 connections.
  if (!leaveToRuntime || head.status >= 400) conn.close();
  onEnd?.();
  return res;
}

export function toResponse(
  conn: Connection,
  parser: ResponseParser,
  head: ResponseHead,
  pending: ResponseEvent[],
  bodyOptions: BodyOptions,
): Response {
  const whole = wholeResponse(conn, head, pending, bodyOptions.leaveWholeToRuntime, bodyOptions.onEnd);
  if (whole !== undefined) return whole;
  // The body comes later: through a native stream, as fetch() would: workerd then
  // sends Content-Length when it is known, and aborts the client's response
  // when the origin's body breaks (an erroring JS stream can end like a
  // complete chunked body). Its end is reported once, whichever path sees it.
  const onEnd = bodyOptions.onEnd;
  let ended = false;
  const opts: BodyOptions = {
    ...bodyOptions,
    onEnd: (how) => {
      if (ended) return;
      ended = true;
      onEnd?.(how);
    },
  };
  const framing = head.framing;
  const sink = framing.kind === "length" ? new FixedLengthStream(framing.length) : new IdentityTransformStream();
  const res = makeResponse(conn, head, sink.readable, opts.onEnd);
  if (
    opts.pipeDeadlineMs &&
    (framing.kind === "close" || (framing.kind === "length" && framing.length - pendingBytes(pending) >= NATIVE_PIPE_MIN_BYTES))
  ) {
    void pipeBody(conn, pending, sink.writable, opts, opts.pipeDeadlineMs(framing));
  } else {
    // Chunked bodies (decoded here) and small remainders: the JavaScript pump, with its idle watchdog.
    void pumpBody(conn, parser, pending, sink.writable, opts);
  }
  return res;
}

/**
 * A Content-Length body with at least this much still to come after the head's
 * read, and every close-delimited body, is piped natively from the socket (no
 * JavaScript per chunk). A smaller remainder takes a read or two in JavaScript,
 * where an idle watchdog can tell a stalled origin (and blame it).
 */
export const NATIVE_PIPE_MIN_BYTES = 64 * 1024;

function pendingBytes(events: ResponseEvent[]): number {
  let n = 0;
  for (const e of events) if (e.kind === "data") n += e.bytes.length;
  return n;
}

/**
 * Writes the body bytes read with the head, then pipes the rest of the socket
 * natively into `writable` (after the head the bytes are the body as sent:
 * Content-Length and close-delimited framings need no decoding). We sent
 * `Connection: close`, so the origin's close ends the body. A FixedLengthStream
 * errors the client's side when it sees fewer (or more) bytes than declared:
 * never a truncated 200. Never rejects.
 *
 * What JavaScript cannot see of a native pipe, and so is not blamed on the
 * node (as over fetch(), see ../fetch):
 * - progress: a deadline on the whole body (from the head) bounds it; then the
 *   in-flight count is released and `onPipeStalled` told, cutting nothing.
 *   Backpressure makes a client that stops reading look exactly like an origin
 *   that stops sending, and cutting would end slow clients' downloads;
 * - a short Content-Length body: workerd resolves the pipe and errors only the
 *   client's side (measured), so only the client learns of it. Hence the end
 *   of a native pipe is reported "released", never "complete": it credits
 *   the node nothing.
 * A socket error (reset mid-body) is the origin's: the sink is left writable
 * (preventAbort), and we abort it and report. A sink the client cancelled is
 * errored: then the pipe has cancelled the socket (the runtime closes the
 * connection once the request ends: wire.test.ts).
 */
async function pipeBody(
  conn: Connection,
  pending: ResponseEvent[],
  writable: WritableStream<Uint8Array>,
  opts: BodyOptions,
  limitMs: number,
): Promise<void> {
  const origin = conn.origin;
  let settled = false;
  conn.deadline.set(limitMs, () => {
    if (settled) return;
    opts.onPipeStalled?.(`the body did not end within ${limitMs} ms of its head; the origin or the client is slow`);
    opts.onEnd?.("released");
  });
  try {
    if (pending.length > 0) {
      const writer = writable.getWriter();
      for (const e of pending) {
        // Awaited: releasing a writer with a write pending drops the write in workerd.
        if (e.kind === "data") await writer.write(e.bytes);
      }
      writer.releaseLock();
    }
    conn.reader.releaseLock();
    await conn.readable.pipeTo(writable, { preventAbort: true });
  } catch (e) {
    if (isErrored(writable)) return; // the client went away
    const error = new MalformedResponseError(`response body from ${describe(origin)} failed: ${message(e)}`, origin);
    opts.onError(error);
    writable.abort(error).catch(() => {});
  } finally {
    settled = true;
    conn.deadline.clear();
    conn.close();
    // Never "complete": a pipe that resolved may still have been short (only
    // the client's side learns it), and an origin that dies mid-body must not
    // be credited (review rv-proxy 3).
    opts.onEnd?.("released");
  }
}

/** True when the stream is errored (a client that cancelled its side). */
function isErrored(writable: WritableStream<Uint8Array>): boolean {
  if (writable.locked) return false;
  const writer = writable.getWriter();
  const errored = writer.desiredSize === null;
  writer.releaseLock();
  return errored;
}

/**
 * Most bytes of a body in several slices (chunks) joined into one Uint8Array:
 * the join copies them, so it is kept to what a read or two brings.
 */
export const WHOLE_BODY_MAX_BYTES = 64 * 1024;

/**
 * The body's bytes when the events hold all of it (data then its end: the
 * Content-Length satisfied, or the last chunk and the trailers' end line; no
 * error), else undefined; undefined too for slices to join of more than
 * WHOLE_BODY_MAX_BYTES. Trailers are dropped either way (a Response cannot
 * carry them).
 */
function wholeBody(events: ResponseEvent[]): Uint8Array | undefined {
  const last = events[events.length - 1];
  if (last?.kind !== "end") return undefined;
  // The usual small answer: one data slice (a view into the read), nothing to join.
  if (events.length === 2 && events[0]!.kind === "data") return events[0]!.bytes;
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const e of events) {
    if (e.kind === "data") {
      parts.push(e.bytes);
      size += e.bytes.length;
    } else if (e.kind !== "end") return undefined;
  }
  if (size > WHOLE_BODY_MAX_BYTES) return undefined;
  return parts.length === 1 ? parts[0]! : concat(parts);
}

/** Most bytes read ahead of the client while one write is in flight. */
const READ_AHEAD_BYTES = 256 * 1024;
/** Gathered bytes that go out at once, without waiting for the next turn. */
const BATCH_BYTES = 64 * 1024;

/** Copies the body from the socket into `writable`; never rejects. */
export async function pumpBody(
  conn: Connection,
  parser: ResponseParser,
  pending: ResponseEvent[],
  writable: WritableStream<Uint8Array>,
  opts: BodyOptions,
): Promise<void> {
  const origin = conn.origin;
  const out = new Coalescer(writable.getWriter());
  // One watchdog per body rather than a timer per read: reads come in ~4 KiB
  // slices, and a timer each would cost more than the copy.
  let readingSince: number | undefined;
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const watch = () => {
    const waited = readingSince === undefined ? 0 : Date.now() - readingSince;
    if (waited >= opts.idleTimeoutMs) {
      stalled = true;
      conn.close(); // ends the pending read
      return;
    }
    timer = setTimeout(watch, opts.idleTimeoutMs - waited);
  };
  timer = setTimeout(watch, opts.idleTimeoutMs);
  let events = pending;
  try {
    for (;;) {
      for (const e of events) {
        if (e.kind === "data") {
          if (!(await out.push(e.bytes))) return; // the client went away
        } else if (e.kind === "end") {
          conn.close();
          // The origin is done with: it stops counting as in flight before the client has read the end.
          opts.onEnd?.();
          await out.close();
          return;
        } else if (e.kind === "error") {
          throw e.error;
        }
      }
      readingSince = Date.now();
      const r = await conn.reader.read();
      readingSince = undefined;
      if (stalled) throw new Error("stalled");
      events = r.done ? parser.finish() : parser.feed(r.value);
    }
  } catch (e) {
    const error = stalled
      ? new MalformedResponseError(
          `response body from ${describe(origin)} failed: response body stalled for ${opts.idleTimeoutMs} ms`,
          origin,
        )
      : e instanceof HttpParseError
        ? new MalformedResponseError(`malformed response body from ${describe(origin)}: ${e.message}`, origin)
        : new MalformedResponseError(`response body from ${describe(origin)} failed: ${message(e)}`, origin);
    opts.onError(error);
    await out.abort(error);
  } finally {
    clearTimeout(timer);
    conn.close();
    opts.onEnd?.();
  }
}

/**
 * Gathers the socket's ~4 KiB reads into fewer, larger writes to the client:
 * each write into the runtime's stream costs far more than a read. Bytes go
 * out as soon as BATCH_BYTES are gathered or the event loop turns without
 * more arriving (so event streams are not held back), one write in flight at
 * a time, and reading pauses once READ_AHEAD_BYTES wait for the client.
 */
class Coalescer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private inflight: Promise<void> | undefined;
  private scheduled: ReturnType<typeof setTimeout> | undefined;
  private clientGone = false;

  constructor(private readonly writer: WritableStreamDefaultWriter<Uint8Array>) {}

  /** False once the client has cancelled its side. */
  async push(bytes: Uint8Array): Promise<boolean> {
    this.chunks.push(bytes);
    this.size += bytes.length;
    if (this.size >= BATCH_BYTES) this.flush();
    else this.scheduled ??= setTimeout(() => this.flush(), 0);
    while (this.size >= READ_AHEAD_BYTES && this.inflight && !this.clientGone) await this.inflight;
    return !this.clientGone;
  }

  async close(): Promise<void> {
    while ((this.inflight || this.size > 0) && !this.clientGone) {
      this.flush();
      await this.inflight;
    }
    clearTimeout(this.scheduled);
    await this.writer.close().catch(() => {});
  }

  async abort(reason: Error): Promise<void> {
    clearTimeout(this.scheduled);
    await this.writer.abort(reason).catch(() => {});
  }

  private flush(): void {
    clearTimeout(this.scheduled);
    this.scheduled = undefined;
    if (this.inflight || this.size === 0 || this.clientGone) return;
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    this.inflight = this.writer.write(bytes).then(
      () => {
        this.inflight = undefined;
        if (this.size >= BATCH_BYTES) this.flush();
        else if (this.size > 0) this.scheduled ??= setTimeout(() => this.flush(), 0);
      },
      () => {
        this.inflight = undefined;
        this.clientGone = true;
      },
    );
  }
}
