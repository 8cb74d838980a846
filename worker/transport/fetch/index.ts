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
import { type Origin, type OriginRequest, ResponseTimeoutError, type Transport, UpstreamResetError } from "../types.ts";

export function originURL(origin: Origin, pathAndQuery: string): string {
  const host = origin.address.includes(":") ? `[${origin.address}]` : origin.address;
  return `${origin.scheme}://${host}:${origin.port}${pathAndQuery}`;
}

/**
 * The body as fetch() will read it, and a promise that settles once it has
 * read all of it. A native stream (no JavaScript per chunk); a declared
 * Content-Length is kept as the length fetch() sends.
 */
function observeUpload(request: Request): { body: ReadableStream | null; sent: Promise<void> } {
  if (request.body === null) return { body: null, sent: Promise.resolve() };
  const cl = request.headers.get("content-length");
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

export function createFetchTransport(fetchImpl: typeof fetch = (input, init) => fetch(input, init)): Transport {
  return {
    name: "fetch",
    async send({ origin, request, responseTimeoutMs }: OriginRequest): Promise<Response> {
      const controller = new AbortController();
      let timedOut = false;
      let finished = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const upload = observeUpload(request);
      void upload.sent.then(() => {
        if (finished) return;
        timer = setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, responseTimeoutMs);
      });
      try {
        return await fetchImpl(originURL(origin, pathAndQuery(request.url)), {
          method: request.method,
          headers: request.headers,
          body: upload.body,
          redirect: "manual",
          signal: controller.signal,
        });
      } catch (err) {
        if (timedOut) {
          throw new ResponseTimeoutError(`${origin.node} (${origin.address}:${origin.port}) sent no response within ${responseTimeoutMs} ms`, origin);
        }
        throw new UpstreamResetError(
          `cannot reach ${origin.node} (${origin.address}:${origin.port}) or lost the connection: ${(err as Error).message}`,
          origin,
          { cause: err },
        );
      } finally {
        finished = true;
        clearTimeout(timer);
      }
    },
  };
}

export const fetchTransport = createFetchTransport();
