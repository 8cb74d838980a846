// The fetch() transport, for hostname origins (fetch() cannot reach bare IPs in
// production).
//
// Errors (contract in ../types.ts): a failed fetch() cannot say whether any
// request byte was written. Seen in workerd: a refused connection, a reset
// before the head, a close without an answer and a failed TLS handshake all
// reject with the same `Error: Network connection lost.`; a DNS failure with
// `internal error`. So no fetch() failure is a ConnectError: each is an
// UpstreamResetError (the proxy retries idempotent methods only). Our own
// abort is no better: fetch() shows no connect phase, so when the timer fires
// the request may well have gone out; connectTimeoutMs therefore does not
// apply here and the wait is bounded by responseTimeoutMs.
//
// Deadlines (one timer per attempt, worker/transport/deadline): the response
// head must come within responseTimeoutMs; a body with a Content-Length must
// then end within responseTimeoutMs + length ÷ minBodyRate, and a body of
// unknown length within bodyTimeoutMs.
//
// Bodies: a Content-Length body up to DIRECT_BODY_LIMIT, and a body of unknown
// length that is not an event stream, go to the client as fetch() returned
// them: no pipe (a pipe and its stream cost about half of what a trivial
// fetch() proxy spends per request), and in flight ends with the head, as a
// buffering proxy (nginx) frees its upstream once it has read a small answer.
// At its deadline a small Content-Length body is cut; one of unknown length is
// only logged (origin.body_stalled: a long download is legitimate). Larger
// Content-Length bodies and event streams (open for as long as the app likes,
// counted by least-request like a WebSocket) are piped natively (no JavaScript
// per chunk) and count as in flight until their end or their deadline; at the
// deadline the count is released and origin.body_stalled logged, the node is
// not blamed and the body not cut (a native pipe cannot tell a stalled origin
// from a client that does not read).
//
// The response deadline starts once fetch() has read the whole request body
// (it is piped through a native stream whose end we observe), so a slow
// upload does not run into it. Limit: "read by fetch()" is not "on the wire";
// what workerd still buffers (a few KiB) is not waited for.
//
// workerd logs an info line "uncaught exception ... Network connection lost"
// for every fetch() that cannot connect, even when the rejection is handled
// (as it is here: no unhandledrejection event fires); the proxy's own
// proxy.retry / proxy.failed line is the one to read.
import { pathAndQuery } from "../target/index.ts";
import { Deadline } from "../deadline/index.ts";
import {
  MalformedResponseError,
  type Origin,
  type OriginRequest,
  type OutgoingRequest,
  ResponseTimeoutError,
  type Transport,
  UpstreamResetError,
} from "../types.ts";

export function originURL(origin: Origin, pathAndQuery: string): string {
  const host = origin.address.includes(":") ? `[${origin.address}]` : origin.address;
  return `${origin.scheme}://${host}:${origin.port}${pathAndQuery}`;
}

/**
 * The body as fetch() will read it, and a promise that settles once it has
 * read all of it. A native stream (no JavaScript per chunk); a declared
 * Content-Length is kept as the length fetch() sends.
 */
/** No body: nothing to wait for (one shared object, not one per request). */
const NO_UPLOAD: { body: null; sent: Promise<void> } = { body: null, sent: Promise.resolve() };

function observeUpload(request: OutgoingRequest): { body: ReadableStream | null; sent: Promise<void> } {
  if (request.body === null) return NO_UPLOAD;
  const cl = request.fields ? (request.fields["content-length"] ?? null) : request.headers.get("content-length");
  const length = cl !== null && /^\d+$/.test(cl.trim()) ? Number(cl.trim()) : undefined;
  const pipe =
    length !== undefined && Number.isSafeInteger(length) ? new FixedLengthStream(length) : new IdentityTransformStream();
  // A body that fails never starts the clock: fetch() fails with it.
  const sent = request.body.pipeTo(pipe.writable).then(
    () => true,
    () => false,
  );
  return { body: pipe.readable, sent: sent.then((ok) => (ok ? undefined : new Promise<void>(() => {}))) };
}

/** Where body failures after the head are reported (same shape as the worker's Logger). */
export type FetchTransportLog = (level: "warn" | "error", event: string, fields: Record<string, unknown>) => void;

export interface FetchTransportOptions {
  /**
   * Slowest body accepted, in bytes per second of its declared Content-Length: such a body must
   * end within responseTimeoutMs + length ÷ this rate after its head, or the client's response is
   * cut off (default 64 KiB/s: 20 MiB get 30 s + 320 s).
   */
  minBodyRate?: number;
  /**
   * Longest time a body of unknown length (chunked, close-delimited, an event stream) may run after
   * its head (default 5 minutes) before it stops counting as in flight (origin.body_stalled). The body
   * is piped natively, which shows no progress, so this bounds the whole body, not a silence; nothing is
   * cut and no node is blamed, since a client that reads slowly looks the same as a stalled origin.
   */
  bodyTimeoutMs?: number;
  log?: FetchTransportLog;
}

export const DEFAULT_MIN_BODY_RATE = 64 * 1024;
export const DEFAULT_FETCH_BODY_MS = 5 * 60_000;
/**
 * Bodies with a declared length up to this size go to the client as fetch() returned them: no
 * pipe, no stream object. The origin stops counting as in flight with the head (such a body
 * follows it within a round trip); the body deadline still bounds a stall.
 */
export const DIRECT_BODY_LIMIT = 64 * 1024;

/** Statuses that never carry a body. */
const BODYLESS = new Set([101, 204, 304]);

const consoleLog: FetchTransportLog = (level, event, fields) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), level, event, transport: "fetch", ...fields }));

export function createFetchTransport(fetchImpl: typeof fetch = (input, init) => fetch(input, init), opts: FetchTransportOptions = {}): Transport {
  const minRate = opts.minBodyRate ?? DEFAULT_MIN_BODY_RATE;
  const bodyMs = opts.bodyTimeoutMs ?? DEFAULT_FETCH_BODY_MS;
  const log = opts.log ?? consoleLog;
  return {
    name: "fetch",
    async send(req: OriginRequest): Promise<Response> {
      const { origin, request, responseTimeoutMs } = req;
      // One controller and one timer per attempt, for the head and then the body: the signal given
      // to fetch() also aborts the response body once the head is in (Fetch standard), so the same
      // timer bounds a stalled body.
      const controller = new AbortController();
      const deadline = new Deadline();
      let expired: "head" | "body" | undefined;
      let headed = false;
      // One closure for both deadlines: which one passed is whether the head had come.
      const expire = () => {
        expired = headed ? "body" : "head";
        controller.abort();
      };
      const upload = observeUpload(request);
      if (upload.body === null) deadline.set(responseTimeoutMs, expire);
      else {
        void upload.sent.then(() => {
          if (!headed) deadline.set(responseTimeoutMs, expire);
        });
      }
      let response: Response;
      try {
        response = await fetchImpl(originURL(origin, request.target ?? pathAndQuery(request.url)), {
          method: request.method,
          // The copy of the client's Headers when the proxy built one (many fields: the runtime copies them
          // in C++), else the plain record: fetch() converts it in one call (no Headers object).
          headers: request.fetchHeaders ?? request.fields ?? request.headers,
          body: upload.body,
          redirect: "manual",
          signal: controller.signal,
        });
      } catch (err) {
        deadline.clear();
        if (expired) {
          throw new ResponseTimeoutError(`${origin.node} (${origin.address}:${origin.port}) sent no response within ${responseTimeoutMs} ms`, origin);
        }
        throw new UpstreamResetError(
          `cannot reach ${origin.node} (${origin.address}:${origin.port}) or lost the connection: ${(err as Error).message}`,
          origin,
          { cause: err },
        );
      } finally {
        headed = true;
      }
      // Read once: each getter is a call into the runtime (and handed to the proxy: onHead).
      const body = response.body;
      const status = response.status;
      if (body === null || request.method === "HEAD" || BODYLESS.has(status)) {
        deadline.clear();
        req.onHead?.(response, status, response.headers, body);
        return response;
      }
      const headers = response.headers;
      // The wire length (before fetch() decodes gzip), which is what the rate applies to.
      const length = wireLength(headers);
      // The body's deadline: responseTimeoutMs + length ÷ minBodyRate, or bodyTimeoutMs when the
      // length is unknown (see the top of this file for what happens there).
      const limitMs = length !== undefined ? responseTimeoutMs + Math.ceil((length * 1000) / minRate) : bodyMs;
      const end = req.onBodyRelay?.();
      if (length !== undefined ? length <= DIRECT_BODY_LIMIT : !isStreamOrDownload(headers)) {
        // Handed over as fetch() returned it (top of file): in flight ends now and the body's end is
        // never seen. The deadline stays on the attempt's one timer, which dies with the request
        // once the response is sent: if it fires, the body is still under way.
        end?.();
        if (length !== undefined) {
          deadline.set(limitMs, expire);
        } else {
          deadline.set(limitMs, () => {
            log("warn", "origin.body_stalled", { node: origin.node, error: `response body from ${origin.node} (${origin.address}:${origin.port}): the body (unknown length) did not end within ${limitMs} ms; the origin or the client is slow` });
          });
        }
        req.onHead?.(response, status, headers, body);
        return response;
      }
      // Piped natively (no JavaScript per chunk): its end releases the in-flight count, and so does
      // the deadline, whichever comes first. A native pipe shows no progress and cannot tell an
      // origin that stopped sending from a client that stopped reading (backpressure), so at the
      // deadline the body is only logged (origin.body_stalled, warn): the node is not blamed and the
      // download is not cut.
      let settled = false;
      const finish = (ended: "complete" | "released") => {
        if (settled) return;
        settled = true;
        deadline.clear();
        end?.(ended);
      };
      deadline.set(limitMs, () => {
        if (settled) return;
        const why =
          length !== undefined
            ? `the body did not end within ${limitMs} ms (${length} bytes at ${minRate} bytes/s after ${responseTimeoutMs} ms)`
            : `the body (unknown length) did not end within ${limitMs} ms`;
        log("warn", "origin.body_stalled", { node: origin.node, error: `response body from ${origin.node} (${origin.address}:${origin.port}): ${why}; the origin or the client is slow` });
        finish("released");
      });
      // A FixedLengthStream keeps Content-Length on the wire (and errors a short body); a decoded or
      // unknown-length body goes through an IdentityTransformStream (sent chunked).
      const sink = length !== undefined && !isEncoded(headers) ? new FixedLengthStream(length) : new IdentityTransformStream();
      // A pipe that breaks (origin cut, or client gone: not told apart here) credits no one.
      body.pipeTo(sink.writable).then(
        () => finish("complete"),
        () => finish("released"),
      );
      return new Response(sink.readable, response);
    },
  };
}

/** The Content-Length the origin declared, whatever its encoding; undefined when absent or unreadable. */
function wireLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  if (value === null) return undefined;
  const t = value.trim();
  return /^\d{1,15}$/.test(t) ? Number(t) : undefined;
}

/**
 * Media types whose body of unknown length is a stream the app keeps open (Server-Sent Events,
 * NDJSON/JSON-lines streams, gRPC and gRPC-web, multipart/x-mixed-replace), or usually a large
 * download (octet-stream, archives, audio, video): piped, so they count as in flight
 * (least-request) until they end or reach their deadline, like a WebSocket. A pipe's cost per
 * request is small beside such a body. Any other type of unknown length (a chunked page or JSON
 * answer) is handed over at its head.
 */
const STREAM_OR_DOWNLOAD =
  /^\s*(text\/event-stream|application\/(x-ndjson|ndjson|jsonl|x-jsonlines|json-seq|stream\+json|grpc[^;\s]*|octet-stream|zip|gzip|x-tar|x-gzip)|multipart\/|audio\/|video\/)/i;

export function isStreamOrDownload(headers: Headers): boolean {
  const type = headers.get("content-type");
  // No type (a bare close-delimited body, say): nothing says it is small, so it is counted.
  return type === null || STREAM_OR_DOWNLOAD.test(type);
}

function isEncoded(headers: Headers): boolean {
  const encoding = headers.get("content-encoding");
  return encoding !== null && encoding.trim().toLowerCase() !== "identity";
}

export const fetchTransport = createFetchTransport();
