// Sends a client request to one origin of its route and fails over: a
// connection failure (or, for requests without a body that are safe to repeat,
// a missing response head) moves the request to another node, up to the
// policy's attempts. So does a 502/503/504 from the node when the request can be
// sent again (as nginx's proxy_next_upstream and Envoy's retry_on: 5xx do).
// Picks, retries and ejections are logged.
import type { Route, RouteOrigin } from "../config/routes.ts";
import { cookieValue, readCookie, type BalancerState } from "../balancer/index.ts";
import { chooseOrigin, ejectionPool, type ChooseContext } from "../balancer/route.ts";
import type { PassiveHealth } from "../health/index.ts";
import type { Logger } from "../log/index.ts";
import type { TransportName } from "../snapshot/schema.ts";
import { selectTransport, type Transports } from "../transport/index.ts";
import { originURL } from "../transport/fetch/index.ts";
import { ConnectError, InvalidRequestHeadError, MalformedResponseError, ResponseTimeoutError } from "../transport/types.ts";
import { prepareBody } from "./body.ts";
import { encodeBodyFor, relayBody } from "./response-body.ts";
import { clientResponseHeaders, edgeFacts, isWebSocketRequest, originRequestHeaders, requestIdOf } from "./headers.ts";

export interface ProxyDeps {
  health: PassiveHealth;
  /** In-flight requests per origin key, in this isolate. */
  inFlight: Map<string, number>;
  balancer: (route: Route) => BalancerState;
  transports: Transports;
  workerTransport: TransportName;
  log: Logger;
  requestLogs: boolean;
  random: () => number;
  now: () => number;
}

const IDEMPOTENT_WITHOUT_BODY = new Set(["GET", "HEAD", "OPTIONS"]);
/** Origin statuses that say "not this node, not now": retried elsewhere, counted against the node. */
const RETRY_STATUSES = new Set([502, 503, 504]);

function text(status: number, body: string, extra: Record<string, string> = {}): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...extra } });
}

export async function proxy(request: Request, route: Route, deps: ProxyDeps): Promise<Response> {
  const started = deps.now();
  // Only error answers and log lines name the services: built on demand, not per request.
  let names: string | undefined;
  const serviceNamesOf = () => (names ??= route.services.map((s) => `${s.id} (cluster ${s.cluster})`).join(", "));
  const requestId = requestIdOf(request);
  const facts = edgeFacts(request, requestId);
  const url = new URL(request.url);
  const done = (res: Response, fields: Record<string, unknown>) => {
    if (deps.requestLogs) {
      deps.log("info", "request", {
        requestId,
        method: request.method,
        host: facts.host,
        path: url.pathname,
        status: res.status,
        ms: deps.now() - started,
        ...fields,
      });
    }
    return res;
  };

  if (route.size === 0) {
    return done(
      text(503, `edgelb: service ${serviceNamesOf()} for host ${facts.host} has no origins (no ready node)`, {
        "retry-after": "10",
        "x-request-id": requestId,
      }),
      {},
    );
  }

  const policy = route.policy;
  const pathAndQuery = url.pathname + url.search;
  const websocket = isWebSocketRequest(request);
  const headers = originRequestHeaders(request, facts, websocket);
  const body = await prepareBody(request);
  const state = deps.balancer(route);
  const tried = new Set<string>();
  const errors: string[] = [];
  const cookie = policy.affinity === "cookie" ? readCookie(request.headers.get("cookie"), policy.cookieName) : undefined;
  let failedOpen = false;

  const chooseContext: ChooseContext = {
    state,
    inFlight: (k) => deps.inFlight.get(k) ?? 0,
    random: deps.random,
    isEjected: (k) => deps.health.isEjected(k),
    tried,
    clientIp: policy.affinity === "client-ip" && facts.clientIp ? facts.clientIp : undefined,
    cookie,
  };
  const choose = (): RouteOrigin | undefined => {
    const choice = chooseOrigin(route, chooseContext);
    if (choice.failedOpen && !failedOpen) {
      // Every remaining node is ejected or reported unhealthy: trying them beats refusing.
      failedOpen = true;
      deps.log("warn", "proxy.fail_open", { requestId, host: facts.host, services: serviceNamesOf(), nodes: choice.remaining });
    }
    return choice.origin;
  };

  for (let attempt = 1; attempt <= policy.attempts; attempt++) {
    const origin = choose();
    if (!origin) break;
    tried.add(origin.key);
    const transport = selectTransport(deps.transports, origin, policy.transport, deps.workerTransport);
    const originRequest = new Request(originURL(origin, pathAndQuery), {
      method: request.method,
      headers,
      body: body.take(),
      redirect: "manual",
    });
    const fields = { requestId, host: facts.host, node: origin.node, origin: origin.key, transport: transport.name, attempt };
    const release = track(deps.inFlight, origin.key);
    let upstream: Response;
    try {
      upstream = await transport.send({
        origin,
        request: originRequest,
        connectTimeoutMs: policy.connectTimeoutMs,
        responseTimeoutMs: policy.responseTimeoutMs,
      });
    } catch (err) {
      release();
      if (err instanceof InvalidRequestHeadError) {
        // The transport refused to write this head (smuggling): the client's fault, no node was tried.
        deps.log("info", "proxy.bad_request", { ...fields, error: err.message });
        return done(text(400, `edgelb: invalid request header (request ${requestId})`, { "x-request-id": requestId }), fields);
      }
      const message = (err as Error).message ?? String(err);
      errors.push(`${origin.node}: ${message}`);
      const retryable =
        err instanceof ConnectError ||
        (err instanceof ResponseTimeoutError && IDEMPOTENT_WITHOUT_BODY.has(request.method) && !websocket);
      if (err instanceof ConnectError || err instanceof ResponseTimeoutError) {
        deps.health.failure(origin.key, message, { cluster: origin.cluster, service: origin.service, node: origin.node }, "connection", ejectionPool(route, origin));
      }
      const canRetry = retryable && body.replayable && attempt < policy.attempts;
      if (canRetry && tried.size < route.size) {
        deps.log("warn", "proxy.retry", { ...fields, error: message, kind: (err as Error).name });
        continue;
      }
      deps.log("error", "proxy.failed", { ...fields, error: message, kind: (err as Error).name, tried: [...tried] });
      if (err instanceof ResponseTimeoutError) {
        return done(text(504, `edgelb: node ${origin.node} of ${serviceNamesOf()} did not answer in time (request ${requestId})`, { "x-request-id": requestId }), fields);
      }
      if (err instanceof MalformedResponseError) {
        return done(text(502, `edgelb: node ${origin.node} of ${serviceNamesOf()} sent an invalid response (request ${requestId})`, { "x-request-id": requestId }), fields);
      }
      break;
    }

    const nodeFields = { cluster: origin.cluster, service: origin.service, node: origin.node };
    if (RETRY_STATUSES.has(upstream.status)) {
      // A node that keeps answering 5xx is as useless as one that refuses: eject it the same way.
      deps.health.failure(origin.key, `status ${upstream.status}`, nodeFields, "status", ejectionPool(route, origin));
      errors.push(`${origin.node}: status ${upstream.status}`);
      if (!websocket && body.replayable && attempt < policy.attempts && tried.size < route.size) {
        // Nobody reads this answer: drop it so the connection is freed, then try another node.
        upstream.body?.cancel().catch(() => {});
        release();
        deps.log("warn", "proxy.retry", { ...fields, kind: "status", status: upstream.status });
        continue;
      }
      // No attempt or node left: the client gets the last node's own answer.
    } else {
      deps.health.success(origin.key, nodeFields);
    }
    // A 101 carries the WebSocket: rebuilding the Response would lose it.
    if (upstream.status === 101) {
      release();
      return done(upstream, fields);
    }
    const out = clientResponseHeaders(upstream, requestId);
    if (policy.affinity === "cookie" && cookie !== cookieValue(origin)) {
      const secure = facts.proto === "https" ? "; Secure" : "";
      out.append("set-cookie", `${policy.cookieName}=${cookieValue(origin)}; Path=/; HttpOnly; SameSite=Lax${secure}`);
    }
    // The socket transport hands over the origin's bytes as sent (still gzip, say); fetch() decodes them.
    const raw = transport.name === "socket";
    const responseBody = relayBody(request.method, upstream, release, raw);
    const encodeBody = encodeBodyFor(upstream.headers, raw);
    return done(new Response(responseBody, { status: upstream.status, statusText: upstream.statusText, headers: out, encodeBody }), fields);
  }

  // Node addresses and errors go to the log (proxy.failed), not to the client.
  return done(
    text(
      502,
      `edgelb: no node of ${serviceNamesOf()} could be reached for ${facts.host} (tried ${tried.size} of ${route.size}; request ${requestId})`,
      { "x-request-id": requestId },
    ),
    { tried: [...tried], errors },
  );
}

function track(inFlight: Map<string, number>, key: string): () => void {
  inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (inFlight.get(key) ?? 1) - 1;
    if (n <= 0) inFlight.delete(key);
    else inFlight.set(key, n);
  };
}
