// The fetch() transport, for hostname origins (fetch() cannot reach bare IPs in
// production). fetch() shows no separate connect phase: any failure before the
// response head is a ConnectError, and the wait for the head is bounded by
// responseTimeoutMs (connectTimeoutMs cannot be applied on its own).
// workerd logs an info line "uncaught exception ... Network connection lost"
// for every fetch() that cannot connect, even when the rejection is handled
// (as it is here: no unhandledrejection event fires); the proxy's own
// proxy.retry / proxy.failed line is the one to read.
import { ConnectError, ResponseTimeoutError, type Origin, type OriginRequest, type Transport } from "../types.ts";

export function originURL(origin: Origin, pathAndQuery: string): string {
  const host = origin.address.includes(":") ? `[${origin.address}]` : origin.address;
  return `${origin.scheme}://${host}:${origin.port}${pathAndQuery}`;
}

export function createFetchTransport(fetchImpl: typeof fetch = (input, init) => fetch(input, init)): Transport {
  return {
    name: "fetch",
    async send({ origin, request, responseTimeoutMs }: OriginRequest): Promise<Response> {
      const url = new URL(request.url);
      const controller = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, responseTimeoutMs);
      // Abort the origin request when the client goes away.
      const onClientAbort = () => controller.abort();
      request.signal?.addEventListener("abort", onClientAbort);
      try {
        return await fetchImpl(originURL(origin, url.pathname + url.search), {
          method: request.method,
          headers: request.headers,
          body: request.body,
          redirect: "manual",
          signal: controller.signal,
        });
      } catch (err) {
        if (timedOut) {
          throw new ResponseTimeoutError(`${origin.node} (${origin.address}:${origin.port}) sent no response within ${responseTimeoutMs} ms`, origin);
        }
        throw new ConnectError(
          `cannot reach ${origin.node} (${origin.address}:${origin.port}): ${(err as Error).message}`,
          origin,
          { cause: err },
        );
      } finally {
        clearTimeout(timer);
        request.signal?.removeEventListener("abort", onClientAbort);
      }
    },
  };
}

export const fetchTransport = createFetchTransport();
