// Sends a client request to one origin of its route and fails over by the
// rule in retry.ts: a connection that failed before any request byte went out
// moves to another node whatever the method; after that, and on a 502/503/504
// answer, only idempotent methods (or Services that opted in) with a body that
// can be sent again. Retries are paid from the isolate's retry budget, and a
// 503 with Retry-After reaches the client instead of the next node.
// Error bodies name no node, address, namespace or cluster: the client gets a
// short message and the request id, the log line with that id the details.
import { edgeAnswer } from "../edge-answer.ts";
import type { Route, RouteOrigin } from "../config/routes.ts";
import { cookieValue, readCookie, type BalancerState } from "../balancer/index.ts";
import { chooseOrigin, ejectionPool, type ChooseContext, type Choice } from "../balancer/route.ts";
import type { PassiveHealth } from "../health/index.ts";
import type { Logger } from "../log/index.ts";
import type { TransportName } from "../snapshot/schema.ts";
import { selectTransport, type Transports } from "../transport/index.ts";
import { pathAndQuery as pathAndQueryOf } from "../transport/target/index.ts";
import {
  ConnectError,
  type ConnectHedge,
  InvalidRequestHeadError,
  type Origin,
  type OriginRequest,
  type OutgoingRequest,
  type Transport,
  MalformedResponseError,
  ResponseTimeoutError,
  UpstreamResetError,
} from "../transport/types.ts";
import { ClientBodyTimeoutError, NO_BODY, prepareBody, type ClientBodyError } from "./body.ts";
import { RetryBudget, retryAfterMs } from "./budget.ts";
import { encodeBodyFor, relayBody } from "./response-body.ts";
import {
  announcesBody,
  applyClientEdit,
  clientEdit,
  edgeFactsFrom,
  isHeaderFault,
  isWebSocketFrom,
  originFieldsFrom,
  copyClientHeaders,
  originHeadersFromClient,
  originHeadersOf,
  readClientFields,
  requestIdFrom,
  type ClientFields,
  type EdgeFacts,
  type OriginFields,
} from "./headers.ts";
import { retryRefusal } from "./retry.ts";
import { SIGNATURE_HEADER, type GateSigner } from "../sign/index.ts";
import { GATE_CAUSE_HEADER, GATE_REFUSED, GATE_REFUSED_HEADER, GATE_UPSTREAM_UNREACHABLE } from "../snapshot/signing.ts";
import { clusterPin, pinCookieName } from "../steering/request.ts";
import { sourcesAllow } from "../source-ranges/index.ts";
import { attemptHedge, type ConnectHedges } from "./hedge/index.ts";

/**
 * The other clusters that may serve this hostname (worker/steering), best
 * first: the attempt loop moves to the next one when the current cluster has
 * no usable node left or `attempts` tries in it failed, under the same retry
 * rules. The first route's policy governs the whole request.
 */
export interface CrossCluster {
  next: readonly Route[];
  /** The cluster-pin cookie as the client sent it (cookie affinity stays in one cluster). */
  pin: string | undefined;
}

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
  /** Longest wait for the next byte of the client's body (default 60 s): then 408. */
  clientBodyTimeoutMs?: number;
  /** The isolate's retry budget; without one, retries are limited only by the policy's attempts. */
  retryBudget?: RetryBudget;
  /** Signs requests to clusters whose origins sit behind the node gate (worker/sign). */
  signer?: GateSigner;
  /** Connect hedging's per-isolate state (worker/proxy/hedge); without it, no hedging. */
  hedges?: ConnectHedges;
  /** false: every request takes the general path (lean.test.ts compares the two); default on. */
  leanPath?: boolean;
  /**
   * Which origin answers carry the request's X-Request-Id back to the client when the origin set
   * none (EDGELB_ECHO_REQUEST_ID): "errors" (default) only 5xx ones, "always" every one. Answers the
   * edge makes itself always carry it. Adding a field to an origin's answer means copying the whole
   * Response in workerd (its fields are immutable): ~35 k instructions per request.
   */
  echoRequestId?: EchoRequestId;
  /** Also send the origin RFC 7239 Forwarded (EDGELB_FORWARDED=true); X-Forwarded-* always. */
  forwarded?: boolean;
}

export type EchoRequestId = "errors" | "always";

/** Origin statuses that say "not this node, not now": counted against the node, retried when the rule allows. */
const RETRY_STATUSES = new Set([502, 503, 504]);
/** Hold for a 503 whose Retry-After cannot be read. */
const DEFAULT_HOLD_MS = 5_000;

function text(status: number, body: string, requestId: string, extra: Record<string, string> = {}): Response {
  // The edge's own answer: a route's response edits do not apply to it (worker/edge-answer.ts).
  return edgeAnswer(new Response(`edgelb: ${body} (request ${requestId})\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff", "x-request-id": requestId, ...extra },
  }));
}

/** Per-request choices of the caller (a Gateway route's filters). */
export interface ProxyOptions {
  /** Host for the origin (URLRewrite hostname): X-Forwarded-Host and Forwarded still carry the client's. */
  originHost?: string;
  /** The request's ctx.waitUntil: a hedge's losing connect settles (and feeds ejection) after the answer. */
  waitUntil?: (p: Promise<unknown>) => void;
  /** request.headers when the caller has read it already (the entry, for Host): the getter is a runtime call. */
  headers?: Headers;
}

/**
 * What proxy() reads of the request before choosing a path (one object per request): the client's
 * fields after the one pass, the request id and the edge's facts.
 */
interface Prelude {
  readonly started: number;
  readonly method: string;
  readonly url: string;
  /** request.headers, read once. */
  readonly headers: Headers;
  readonly clientFields: ClientFields;
  readonly requestId: string;
  readonly facts: EdgeFacts;
  readonly pathAndQuery: string;
  readonly budgetKey: string;
}

/**
 * Entry point. The usual request (a GET or HEAD without a body or Upgrade, to a route of one
 * cluster whose chosen node is reached over fetch() directly, without cookie affinity) takes the lean path: one
 * attempt object, no per-request closures, one await. Whatever that attempt's outcome is not a
 * final answer (an error, a 502/503/504, a 101) is handed to the general path as its first attempt,
 * which then retries and fails over by the same rules as for any request (worker/proxy/lean.test.ts
 * runs random requests through both paths and compares what origins and clients get).
 */
export function proxy(request: Request, route: Route, deps: ProxyDeps, cross?: CrossCluster, options?: ProxyOptions): Promise<Response> {
  // Not an async function (one promise fewer), but like one it never throws: a fault is a rejection.
  try {
    return startProxy(request, route, deps, cross, options);
  } catch (err) {
    return Promise.reject(err);
  }
}

function startProxy(request: Request, route: Route, deps: ProxyDeps, cross: CrossCluster | undefined, options: ProxyOptions | undefined): Promise<Response> {
  // The clock only for the request log line (a runtime call, and the line is off by default).
  const started = deps.requestLogs ? deps.now() : 0;
  // The runtime's Request getters are calls into it, and url makes a new string each time: read once.
  const method = request.method;
  const url = request.url;
  const headers = options?.headers ?? request.headers;
  // One pass over the client's fields: checked, copied for the origin, and the few the edge reads kept.
  const clientFields = readClientFields(headers);
  const requestId = requestIdFrom(clientFields);
  const facts = edgeFactsFrom(clientFields, url, requestId, options?.originHost);
  const pathAndQuery = pathAndQueryOf(url);
  // Each Service (route) has its own budget: a flood at one broken hostname cannot spend another's.
  const budgetKey = budgetKeyOf(route);
  deps.retryBudget?.request(budgetKey);
  const pre: Prelude = { started, method, url, headers, clientFields, requestId, facts, pathAndQuery, budgetKey };
  const policy = route.policy;
  if (
    (method === "GET" || method === "HEAD") &&
    deps.leanPath !== false &&
    // A route of one cluster: a steered hostname's failover between clusters stays on the general path.
    cross === undefined &&
    clientFields.fault === undefined &&
    clientFields.upgrade === null &&
    route.size > 0 &&
    policy.affinity !== "cookie" &&
    policy.transport !== "socket" &&
    (policy.transport !== undefined || deps.workerTransport !== "socket") &&
    // A GET or HEAD that announces no body has none, or an empty one: either way none is sent
    // (general path: prepareBody reads it, then no attempt sends it), so request.body is not read.
    !announcesBody(clientFields)
  ) {
    const lookups = lookupsOf(deps);
    const choice = chooseOrigin(route, {
      state: deps.balancer(route),
      inFlight: lookups.inFlight,
      random: deps.random,
      isEjected: lookups.isEjected,
      tried: NOTHING_TRIED,
      clientIp: policy.affinity === "client-ip" && facts.clientIp ? facts.clientIp : undefined,
    });
    const origin = choice.origin;
    if (origin !== undefined && !choice.failedOpen && origin.gatePort === undefined) {
      const transport = selectTransport(deps.transports, origin, policy.transport, deps.workerTransport);
      if (transport.name === "fetch") {
        // No Upgrade, no fault: the record always holds Host.
        const outgoing = originFieldsFrom(clientFields, facts, false, deps.forwarded === true) as OriginFields;
        const attempt = new Attempt(deps, route, origin, origin, method, url, pathAndQuery, outgoing, null, policy.connectTimeoutMs, policy.responseTimeoutMs);
        // Many client fields: a copy of the client's Headers is cheaper for fetch() than the record.
        if (copyClientHeaders(clientFields, deps.forwarded === true)) attempt.fetchHeaders = originHeadersFromClient(headers, clientFields, facts, deps.forwarded === true);
        return leanAttempt(request, route, deps, cross, options, pre, attempt, transport);
      }
    }
    // The choice is the general path's first (choosing again would move the balancer twice).
    return proxyGeneral(request, route, deps, cross, options, pre, choice);
  }
  return proxyGeneral(request, route, deps, cross, options, pre);
}

/** chooseOrigin's tried set for a first attempt (never written). */
const NOTHING_TRIED: ReadonlySet<string> = new Set<string>();

/** The lean path's one attempt (see proxy): its outcome, unless it is the client's answer, goes to the general path. */
async function leanAttempt(
  request: Request,
  route: Route,
  deps: ProxyDeps,
  cross: CrossCluster | undefined,
  options: ProxyOptions | undefined,
  pre: Prelude,
  attempt: Attempt,
  transport: Transport,
): Promise<Response> {
  let upstream: Response;
  try {
    upstream = await transport.send(attempt);
  } catch (error) {
    return proxyGeneral(request, route, deps, cross, options, pre, undefined, { attempt, transport, error, upstream: undefined });
  }
  const status = attempt.statusOf(upstream);
  if (status === 101 || RETRY_STATUSES.has(status)) {
    return proxyGeneral(request, route, deps, cross, options, pre, undefined, { attempt, transport, error: undefined, upstream });
  }
  if (attempt.bodyRelayed && !attempt.bodyEnded) attempt.successAtBodyEnd = true;
  else if (!attempt.bodyFailed) deps.health.success(attempt.node.key, nodeFieldsOf(attempt.node));
  const answer = clientAnswer(pre, attempt, upstream, status, attempt.headersOf(upstream), transport, route.policy, undefined, cross, echoesRequestId(deps, status));
  return deps.requestLogs ? logged(deps, pre, answer, attempt.logFields(pre, transport, 1)) : answer;
}

/** A first attempt the lean path made, and how it came back: the general path goes on from it. */
interface FirstAttempt {
  attempt: Attempt;
  transport: Transport;
  /** What the transport threw, or undefined when it answered (upstream). */
  error: unknown;
  upstream: Response | undefined;
}

/** The request log line (deps.requestLogs) for an answer. */
function logged(deps: ProxyDeps, pre: Prelude, res: Response, fields: Record<string, unknown>): Response {
  deps.log("info", "request", {
    requestId: pre.requestId,
    method: pre.method,
    host: pre.facts.host,
    path: pathOnly(pre.pathAndQuery),
    status: res.status,
    ms: deps.now() - pre.started,
    ...fields,
  });
  return res;
}

async function proxyGeneral(
  request: Request,
  route: Route,
  deps: ProxyDeps,
  cross: CrossCluster | undefined,
  options: ProxyOptions | undefined,
  pre: Prelude,
  firstChoice?: Choice,
  first?: FirstAttempt,
): Promise<Response> {
  const { method, url, clientFields, requestId, facts, pathAndQuery, budgetKey } = pre;
  const clientHeaders = pre.headers;
  const budget = deps.retryBudget;
  const done = (res: Response, fields: Record<string, unknown>) => (deps.requestLogs ? logged(deps, pre, res, fields) : res);
  /** The client's own request is at fault: 400, an info line, and no node is blamed. */
  const badRequest = (event: string, reason: string, fields: Record<string, unknown> = {}) => {
    deps.log("info", event, { requestId, host: facts.host, method, reason, ...fields });
    return done(text(400, `bad request: ${reason}`, requestId), fields);
  };
  /** The client's body failed: 400, or 408 when it stalled (client_body_timeout); no node is blamed. */
  const clientBodyFailed = (error: ClientBodyError, fields: Record<string, unknown> = {}) => {
    if (!(error instanceof ClientBodyTimeoutError)) return badRequest("proxy.client_body_failed", "the request body ended early", { ...fields, error: error.message });
    deps.log("info", "proxy.client_body_timeout", { requestId, host: facts.host, method, error: error.message, ...fields });
    return done(text(408, "the request body stopped arriving", requestId, { connection: "close" }), fields);
  };

  if (route.size === 0) {
    deps.log("info", "proxy.no_origins", { requestId, host: facts.host, services: serviceNamesOf(route) });
    // no-store: a shared cache must not keep serving "nothing is ready" once a pod is.
    return done(text(503, "no server is ready for this site", requestId, { "retry-after": "10", "cache-control": "no-store" }), {});
  }

  const policy = route.policy;
  const websocket = isWebSocketFrom(clientFields);
  const outgoing = originFieldsFrom(clientFields, facts, websocket, deps.forwarded === true);
  if (isHeaderFault(outgoing)) {
    // Before any origin connection: a forged line break never reaches a node.
    return badRequest("proxy.refused", outgoing.fault, { header: JSON.stringify(outgoing.name) });
  }
  if ((method === "GET" || method === "HEAD") && announcesBody(clientFields)) {
    // workerd cannot send a GET or HEAD with a body: refuse rather than drop it silently.
    return badRequest("proxy.refused", `a ${method} request must not carry a body`);
  }
  // No body (every GET): no promise to wait for.
  const hasBody = request.body !== null;
  const prepared = hasBody ? await prepareBody(request, undefined, deps.clientBodyTimeoutMs) : undefined;
  if (prepared && !prepared.ok) {
    if (prepared.error instanceof ClientBodyTimeoutError) return clientBodyFailed(prepared.error);
    return badRequest("proxy.client_body_failed", prepared.error.message);
  }
  const body = prepared ? prepared.body : NO_BODY;
  let tried = new Set<string>();
  const errors: string[] = [];
  const cookie = policy.affinity === "cookie" ? readCookie(clientHeaders.get("cookie"), policy.cookieName) : undefined;
  let failedOpen = false;
  const hedges = deps.hedges;
  // At most one hedge per request.
  let hedged = false;
  // Whether an attempt signed the origin headers (gate mode): a later attempt elsewhere drops it.
  let signed = false;

  const lookups = lookupsOf(deps);
  const chooseContext: ChooseContext = {
    state: deps.balancer(route),
    inFlight: lookups.inFlight,
    random: deps.random,
    isEjected: lookups.isEjected,
    tried,
    clientIp: policy.affinity === "client-ip" && facts.clientIp ? facts.clientIp : undefined,
    cookie,
  };
  // Cross-cluster failover: tries made in the current cluster, and the next cluster's index.
  let attemptsHere = 0;
  let nextCluster = 0;
  const triedClusters: string[] = [];
  const moveCluster = (why: string): boolean => {
    let next = cross?.next[nextCluster];
    // A cluster whose Service refuses this client (its own loadBalancerSourceRanges) is skipped:
    // the first cluster's ranges say nothing about the next one's.
    while (next && !sourcesAllow(next.sourceRanges, request)) {
      deps.log("info", "proxy.next_cluster_refused", { requestId, host: facts.host, cluster: next.cluster, reason: "loadBalancerSourceRanges" });
      next = cross?.next[++nextCluster];
    }
    if (!next) return false;
    nextCluster++;
    deps.log("warn", "proxy.next_cluster", { requestId, host: facts.host, from: route.cluster, to: next.cluster, reason: why });
    triedClusters.push(...tried);
    route = next;
    tried = new Set();
    attemptsHere = 0;
    chooseContext.state = deps.balancer(route);
    chooseContext.tried = tried;
    return true;
  };
  const choose = (): RouteOrigin | undefined => {
    // The entry's choice, when it made one, is the first.
    let choice = firstChoice ?? chooseOrigin(route, chooseContext);
    firstChoice = undefined;
    // No usable node left in this cluster: the next cluster serves before this one fails open.
    while ((choice.failedOpen || !choice.origin) && moveCluster("no usable node left")) choice = chooseOrigin(route, chooseContext);
    if (choice.failedOpen && !failedOpen) {
      // Every remaining node is ejected or reported unhealthy: trying them beats refusing.
      failedOpen = true;
      deps.log("warn", "proxy.fail_open", { requestId, host: facts.host, services: serviceNamesOf(route), nodes: choice.remaining, ...gateHop(choice.origin) });
    }
    return choice.origin;
  };
  const retryNonIdempotent = policy.retryNonIdempotent === true;
  /** Why the next attempt is not made, or undefined when it may go (and is paid from the budget). */
  const refuseNext = (attempt: number, refusal: string | undefined, free = false): string | undefined => {
    if (refusal) return refusal;
    if (attemptsHere >= policy.attempts || tried.size >= route.size) {
      if (!moveCluster(attemptsHere >= policy.attempts ? "attempts in this cluster failed" : "every node of this cluster failed")) {
        return attemptsHere >= policy.attempts ? "no attempt left" : "no node left";
      }
    }
    // A connection that failed before any byte went out put no load on the app: no budget needed.
    if (!free && budget && !budget.tryRetry(budgetKey)) {
      if (budget.reportSpent()) deps.log("warn", "proxy.retry_budget_spent", { requestId, host: facts.host, services: serviceNamesOf(route) });
      return "retry budget spent";
    }
    return undefined;
  };

  let lastOrigin: RouteOrigin | undefined;
  const maxAttempts = policy.attempts * (1 + (cross?.next.length ?? 0));
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    // The lean path's attempt, when it made one, is the first (its node chosen, tracked and sent to).
    const adopted = attempt === 1 ? first : undefined;
    const chosen = adopted !== undefined ? adopted.attempt.node : choose();
    if (!chosen) break;
    lastOrigin = chosen;
    // A hedge whose node answers first moves the attempt there (switchTo below).
    let origin: RouteOrigin = chosen;
    tried.add(origin.key);
    attemptsHere++;
    // Gate mode: connect to the node's gate, which checks the signature and forwards to the signed
    // NodePort. Always the socket transport: fetch() rewrites Host, which is signed.
    const gatePort = origin.gatePort;
    const transport = adopted !== undefined ? adopted.transport : selectTransport(deps.transports, origin, gatePort === undefined ? policy.transport : "socket", deps.workerTransport);
    if (adopted !== undefined) {
      // Sent by the lean path: no gate (it takes none), nothing to sign.
    } else if (gatePort !== undefined) {
      const signature = await deps.signer?.sign(origin.cluster, {
        method,
        host: outgoing.host ?? facts.host,
        target: pathAndQuery,
        node: origin.node,
        nodePort: origin.port,
        origin,
      });
      if (!signature) {
        // No key for this cluster (or an unsignable Host): every node's gate would refuse it. Like a
        // cluster with no usable node: the hostname's next cluster (steering) serves, else 502.
        deps.log("error", "proxy.gate_unsigned", { requestId, host: facts.host, cluster: origin.cluster, reason: signature === undefined ? "no gate key for this cluster (EDGELB_GATE_KEYS / EDGELB_GATE_KEY)" : "the request cannot be signed" });
        errors.push(`${origin.cluster}: no gate key`);
        if (moveCluster("no gate key for this cluster")) continue;
        return done(text(502, "the site could not be reached", requestId), {});
      }
      // Into the plain record the transports read (the client's own signature header was never copied:
      // headers.ts), so a transport that takes the record needs no Headers object in gate mode either; and
      // into a Headers object built from it already. A later attempt's replaces it.
      outgoing[SIGNATURE_HEADER] = signature;
      signed = true;
    } else if (signed) {
      // An earlier attempt at another (gated) cluster signed for its node.
      delete outgoing[SIGNATURE_HEADER];
      signed = false;
    }
    // A GET or HEAD here has no body or an empty one (Content-Length: 0): send none, a Request refuses it.
    const bodyless = method === "GET" || method === "HEAD";
    // Not a Request: transports read these fields, and a Request per attempt costs. Every transport
    // gets the plain fields (fetch() converts them in one call, the socket transport writes its head
    // from them; a gate signature is in them too); their Headers object is built only if read.
    // The attempt is also the transport's OriginRequest and counts the node as in flight.
    const a =
      adopted !== undefined
        ? adopted.attempt
        : new Attempt(deps, route, origin, gatePort === undefined ? origin : { ...origin, port: gatePort }, method, url, pathAndQuery, outgoing, bodyless ? null : body.take(), policy.connectTimeoutMs, policy.responseTimeoutMs);
    const fields = a.logFields(pre, transport, attempt);
    const attemptRoute = route;
    // Connect hedging needs the connect phase (socket); behind gates, the second node gets its own signature.
    if (adopted === undefined && hedges !== undefined && !hedged && transport.name === "socket" && !websocket && policy.connectAttemptDelayMs > 0 && route.size > 1) {
      a.hedge = attemptHedge({
        hedges,
        primary: origin,
        floorMs: policy.connectAttemptDelayMs,
        connectTimeoutMs: policy.connectTimeoutMs,
        choose: () => {
          const c = tried.size < attemptRoute.size ? chooseOrigin(attemptRoute, chooseContext) : undefined;
          // Never by failing open, and paid from the retry budget: a slow network must not double every connect.
          if (!c?.origin || c.failedOpen || (budget !== undefined && !budget.tryRetry(budgetKey))) return undefined;
          hedged = true;
          tried.add(c.origin.key);
          return c.origin;
        },
        ...(gatePort === undefined
          ? {}
          : {
              toWire: (o: RouteOrigin) => ({ ...o, port: gatePort }),
              headersFor: async (o: RouteOrigin) => {
                const sig = await deps.signer?.sign(o.cluster, { method, host: outgoing.host ?? facts.host, target: pathAndQuery, node: o.node, nodePort: o.port, origin: o });
                if (!sig) return undefined;
                const signed = originHeadersOf(outgoing);
                signed.set(SIGNATURE_HEADER, sig);
                return signed;
              },
            }),
        switchTo: (o) => {
          a.switchTo(o);
          origin = o;
          Object.assign(fields, { node: o.node, origin: o.key });
        },
        lostFailed: (o, error) =>
          deps.health.failure(o.key, error.message, nodeFieldsOf(o), error.timedOut ? "connect-timeout" : "connection", ejectionPool(attemptRoute, o)),
        keepAlive: options?.waitUntil ?? (() => {}),
        log: (f) => deps.log("warn", "proxy.hedge", { requestId, host: facts.host, ...f }),
      });
    }
    let upstream: Response;
    let failure: unknown;
    let failed = false;
    if (adopted !== undefined) {
      if (adopted.upstream === undefined) {
        failed = true;
        failure = adopted.error;
      }
      upstream = adopted.upstream!;
    } else {
      try {
        upstream = await transport.send(a);
      } catch (err) {
        failed = true;
        failure = err;
        upstream = undefined!;
      }
    }
    if (failed) {
      const err = failure;
      a.release();
      if (err instanceof InvalidRequestHeadError) {
        // The transport refused to write this head (smuggling): the client's fault, no node was blamed.
        deps.log("info", "proxy.bad_request", { ...fields, error: err.message });
        return done(text(400, "invalid request header", requestId), fields);
      }
      const message = (err as Error).message ?? String(err);
      const kind = (err as Error).name;
      const known =
        err instanceof ConnectError || err instanceof ResponseTimeoutError || err instanceof UpstreamResetError || err instanceof MalformedResponseError;
      // Transports throw only the classes above for the node's faults; anything else is the request body's own.
      if (body.clientError instanceof ClientBodyTimeoutError) return clientBodyFailed(body.clientError, fields);
      if (body.clientError || (!known && hasBody)) {
        // The client hung up or sent less than it announced: not the node's fault.
        return badRequest("proxy.client_body_failed", "the request body ended early", {
          ...fields,
          error: body.clientError?.message ?? message,
        });
      }
      errors.push(`${origin.node}: ${message}`);
      const connectionFailure = err instanceof ConnectError || err instanceof ResponseTimeoutError || err instanceof UpstreamResetError;
      // A slow or garbled answer may be one path's fault, and a client can ask for that path at will:
      // it counts like a 5xx (the longer streak), only a failed connection counts as "connection".
      const healthKind =
        err instanceof ConnectError ? (err.timedOut ? "connect-timeout" : "connection") : err instanceof UpstreamResetError ? "connection" : "status";
      if (known) deps.health.failure(origin.key, message, nodeFieldsOf(origin), healthKind, ejectionPool(route, origin));
      // A ConnectError means no byte reached the node. The socket transport reads the body only after
      // the head went out, so a body it began to read says otherwise (fetch() reads ahead: no such hint).
      // A streamed body moves on only if no byte of it was read: the next attempt gets it untouched.
      const sentBody = body.started && (transport.name === "socket" || !body.replayable);
      const stage = err instanceof ConnectError && !sentBody ? "before-send" : "after-send";
      const noRetry = refuseNext(
        attempt,
        connectionFailure
          ? retryRefusal({ method, stage, replayable: body.replayable, retryNonIdempotent, websocket })
          : "the node's answer was not valid HTTP",
        stage === "before-send",
      );
      if (noRetry === undefined) {
        deps.log("warn", "proxy.retry", { ...fields, error: message, kind, stage });
        continue;
      }
      deps.log("error", "proxy.failed", { ...fields, error: message, kind, stage, noRetry, tried: [...tried], ...gateHop(origin) });
      if (err instanceof ResponseTimeoutError) return done(text(504, "the site did not answer in time", requestId), fields);
      if (err instanceof MalformedResponseError) return done(text(502, "the site sent an invalid response", requestId), fields);
      return done(text(502, "the site could not be reached", requestId), { ...fields, tried: [...tried], errors });
    }

    if (body.clientError) {
      // fetch() may end a failed upload as if complete and hand back the origin's answer to a
      // truncated request: that answer is not the client's.
      upstream.body?.cancel().catch(() => {});
      a.release();
      return clientBodyFailed(body.clientError, fields);
    }
    // Read once: each is a call into the runtime.
    const status = a.statusOf(upstream);
    const upstreamHeaders = a.headersOf(upstream);
    // The gate marks only its own 403 and 502: any other answer is the app's, and needs no runtime lookup.
    const gateMarker = gatePort === undefined || (status !== 403 && status !== 502) ? null : upstreamHeaders.get(GATE_REFUSED_HEADER);
    const gateSaid =
      gateMarker === null ? undefined : status === 403 && gateMarker === GATE_REFUSED ? "gate_refused" : status === 502 && gateMarker === GATE_UPSTREAM_UNREACHABLE ? "gate_upstream_unreachable" : undefined;
    if (gateSaid !== undefined) {
      // The node's gate refused the signature (no key, another key, its clock off), or could not connect
      // to the NodePort (the node's kube-proxy or app is gone while its gate lives): nothing reached the
      // app, so any method may go to another node, free of the retry budget, and the node counts as one
      // that refused the connection (the app behind the gate cannot forge this header).
      upstream.body?.cancel().catch(() => {});
      a.release();
      // A NodePort that drops connections behind its gate: ejected at once, as a connect timeout is in direct mode.
      const timedOut = gateSaid === "gate_upstream_unreachable" && upstream.headers.get(GATE_CAUSE_HEADER) === "connect-timeout";
      const why = gateSaid === "gate_refused" ? "gate refused the signature" : timedOut ? "gate timed out connecting to the NodePort" : "gate could not connect to the NodePort";
      deps.health.failure(origin.key, why, nodeFieldsOf(origin), timedOut ? "connect-timeout" : "connection", ejectionPool(route, origin));
      errors.push(`${origin.node}: ${why}`);
      deps.log("warn", gateSaid === "gate_refused" ? "proxy.gate_refused" : "proxy.gate_upstream_unreachable", { ...fields, cluster: origin.cluster, gatePort });
      // The gate sent no byte upstream, but a streamed body the transport began to send is gone.
      const consumed = body.started && !body.replayable;
      const noRetry = refuseNext(attempt, consumed ? `the request body was already sent to a gate that ${gateSaid === "gate_refused" ? "refused it" : "could not forward it"}` : undefined, true);
      if (noRetry === undefined) {
        deps.log("warn", "proxy.retry", { ...fields, kind: gateSaid, stage: "before-send" });
        continue;
      }
      deps.log("error", "proxy.failed", { ...fields, kind: gateSaid, noRetry, tried: [...tried], ...gateHop(origin) });
      return done(text(502, "the site could not be reached", requestId), { ...fields, tried: [...tried], errors });
    }
    if (RETRY_STATUSES.has(status)) {
      // A node that keeps answering 5xx is as useless as one that refuses: the health rules decide when to eject.
      deps.health.failure(origin.key, `status ${status}`, nodeFieldsOf(origin), "status", ejectionPool(route, origin));
      errors.push(`${origin.node}: status ${status}`);
      const serviceKey = `${origin.cluster}/${origin.service}`;
      let refusal: string | undefined;
      const retryAfter = status === 503 ? upstreamHeaders.get("retry-after") : null;
      if (retryAfter !== null) {
        // The app says it is overloaded: the client gets the 503, and the Service gets a rest.
        budget?.hold(serviceKey, retryAfterMs(retryAfter, deps.now()) ?? DEFAULT_HOLD_MS);
        refusal = "the node answered 503 with Retry-After";
      } else if (budget?.isHeld(serviceKey)) {
        refusal = "the service asked to retry later (Retry-After)";
      } else {
        refusal = retryRefusal({ method, stage: "status", replayable: body.replayable, retryNonIdempotent, websocket });
      }
      const noRetry = refuseNext(attempt, refusal);
      if (noRetry === undefined) {
        // Nobody reads this answer: drop it so the connection is freed, then try another node.
        upstream.body?.cancel().catch(() => {});
        a.release();
        deps.log("warn", "proxy.retry", { ...fields, kind: "status", status });
        continue;
      }
      // The client gets the node's own answer.
      Object.assign(fields, { noRetry });
    } else if (a.bodyRelayed && !a.bodyEnded) {
      a.successAtBodyEnd = true;
    } else if (!a.bodyFailed) {
      deps.health.success(origin.key, nodeFieldsOf(origin));
    }
    // A 101 carries the WebSocket: rebuilding the Response would lose it. A transport that relays
    // it (socket) releases the count when it ends; over fetch() the runtime relays it unseen, so
    // it stops counting as in flight here.
    if (status === 101) {
      if (!a.relayed) a.release();
      return done(upstream, fields);
    }
    return done(clientAnswer(pre, a, upstream, status, upstreamHeaders, transport, policy, cookie, cross, echoesRequestId(deps, status)), fields);
  }

  // Node addresses and errors go to the log (proxy.failed), not to the client.
  const all = [...triedClusters, ...tried];
  deps.log("error", "proxy.failed", { requestId, host: facts.host, services: serviceNamesOf(route), tried: all, errors, ...gateHop(lastOrigin) });
  return done(text(502, "the site could not be reached", requestId), { tried: all, errors });
}

/**
 * Log fields saying the node gates are the hop, for a cluster in gate mode: an operator reading a
 * fail-open or a failed request must know to check the gates (down, keyless, refusing this key) as
 * well as the nodes. Nothing for a direct cluster.
 */
function gateHop(origin: RouteOrigin | undefined): Record<string, unknown> {
  if (origin?.gatePort === undefined) return {};
  return { cluster: origin.cluster, origins: "gate", gatePort: origin.gatePort, via: `the node gates (edgelb-node-gate) on port ${origin.gatePort} of cluster ${origin.cluster}'s nodes` };
}

/** The path of a path-and-query (for log lines). */
function pathOnly(target: string): string {
  const q = target.indexOf("?");
  return q === -1 ? target : target.slice(0, q);
}

/** The balancer's per-key lookups for one ProxyDeps: made once per isolate's deps, not per request. */
interface Lookups {
  inFlight: (key: string) => number;
  isEjected: (key: string) => boolean;
}
const lookups = new WeakMap<ProxyDeps, Lookups>();
function lookupsOf(deps: ProxyDeps): Lookups {
  let l = lookups.get(deps);
  if (l === undefined) {
    const { health, hedges, inFlight } = deps;
    l = {
      inFlight: (k) => inFlight.get(k) ?? 0,
      // A node with a connect pending past its hedge delay is skipped too, while others are usable.
      isEjected: hedges === undefined ? (k) => health.isEjected(k) : (k) => health.isEjected(k) || hedges.isStalled(k),
    };
    lookups.set(deps, l);
  }
  return l;
}

/** The Services behind a route, for error answers' log lines: built once per route, on demand. */
const serviceNames = new WeakMap<Route, string>();
function serviceNamesOf(route: Route): string {
  let names = serviceNames.get(route);
  if (names === undefined) serviceNames.set(route, (names = route.services.map((s) => `${s.id} (cluster ${s.cluster})`).join(", ")));
  return names;
}

/** A route's budget key, built once per route (routes are immutable and rebuilt on each snapshot load), not per request. */
const budgetKeys = new WeakMap<Route, string>();
function budgetKeyOf(route: Route): string {
  let key = budgetKeys.get(route);
  if (key === undefined) budgetKeys.set(route, (key = route.services.map((s) => `${s.cluster}/${s.id}`).join(",")));
  return key;
}

/** The node's fields for health's log lines. */
function nodeFieldsOf(origin: RouteOrigin): Record<string, unknown> {
  return { cluster: origin.cluster, service: origin.service, node: origin.node };
}

/**
 * One attempt: what the transport is sent (OriginRequest, whose `request` is the attempt itself:
 * OutgoingRequest) and the proxy's bookkeeping for it (the node counted as in flight until
 * release(), how its body ended). One object with its hooks on the prototype instead of a request,
 * an options literal and a closure per hook and per count; a class, not an object literal with a
 * `headers` getter, which V8 builds on a slow path. The Headers object is made only when a transport
 * reads it (none does on the hot path: both take `fields`).
 */
class Attempt implements OriginRequest, OutgoingRequest {
  readonly request: OutgoingRequest;
  /** Set by the general path when the attempt hedges its connect (socket). */
  hedge: ConnectHedge | undefined = undefined;
  /** The transport relays a WebSocket itself and releases the count at its end. */
  relayed = false;
  /** The transport relays (or hands over) the body and reports its end (onBodyRelay). */
  bodyRelayed = false;
  bodyEnded = false;
  bodyFailed = false;
  /** A body the transport relays itself is judged at its end: success only if it did not break. */
  successAtBodyEnd = false;
  private released = false;
  private built: Headers | undefined = undefined;
  /** The lean path's copy of the client's Headers for fetch() (OutgoingRequest.fetchHeaders), when cheaper than the record. */
  fetchHeaders: Headers | undefined = undefined;
  private bodyEnd: ((ended?: "complete" | "released") => void) | undefined = undefined;
  private releaseFn: (() => void) | undefined = undefined;

  constructor(
    private readonly deps: ProxyDeps,
    private readonly route: Route,
    /** The route's origin (a hedge may move the attempt to another: switchTo). */
    public node: RouteOrigin,
    /** Where the transport connects: the node, or its gate's port in gate mode. */
    readonly origin: Origin,
    readonly method: string,
    readonly url: string,
    readonly target: string,
    readonly fields: Readonly<Record<string, string>>,
    readonly body: ReadableStream<Uint8Array> | null,
    readonly connectTimeoutMs: number,
    readonly responseTimeoutMs: number,
  ) {
    this.request = this;
    const inFlight = deps.inFlight;
    inFlight.set(node.key, (inFlight.get(node.key) ?? 0) + 1);
  }

  get headers(): Headers {
    return (this.built ??= originHeadersOf(this.fields));
  }

  /** The node stops counting as in flight (once). */
  release(): void {
    if (this.released) return;
    this.released = true;
    const inFlight = this.deps.inFlight;
    const key = this.node.key;
    const n = (inFlight.get(key) ?? 1) - 1;
    if (n <= 0) inFlight.delete(key);
    else inFlight.set(key, n);
  }

  /** A hedge's node answered first: the count moves there. */
  switchTo(node: RouteOrigin): void {
    this.release();
    this.node = node;
    this.released = false;
    const inFlight = this.deps.inFlight;
    inFlight.set(node.key, (inFlight.get(node.key) ?? 0) + 1);
  }

  /** release() as a function value, for callers that call it unbound (made once, on demand). */
  releaser(): () => void {
    return (this.releaseFn ??= () => this.release());
  }

  // An open WebSocket keeps its node busy (least-request): counted until the relay ends.
  onWebSocketRelay(): () => void {
    this.relayed = true;
    return this.releaser();
  }

  // A transport that relays or hands over the body reports its end: the count is released then.
  onBodyRelay(): (ended?: "complete" | "released") => void {
    this.bodyRelayed = true;
    return (this.bodyEnd ??= (ended) => {
      this.bodyEnded = true;
      this.release();
      // Only a body seen whole credits the node (review rv-proxy 3): a released one says nothing.
      if (this.successAtBodyEnd && !this.bodyFailed && ended !== "released") this.deps.health.success(this.node.key, nodeFieldsOf(this.node));
    });
  }

  // The origin broke its body after the head (not the client leaving): it counts like a 5xx.
  onBodyFailed(error: Error): void {
    this.bodyFailed = true;
    this.deps.health.failure(this.node.key, error.message, nodeFieldsOf(this.node), "status", ejectionPool(this.route, this.node));
  }

  // What the transport read of the Response it returns (onHead): not read from the runtime again.
  private head: Response | undefined = undefined;
  private headStatus = 0;
  private headHeaders: Headers | undefined = undefined;
  private headBody: ReadableStream<Uint8Array> | null = null;

  onHead(response: Response, status: number, headers: Headers, body: ReadableStream<Uint8Array> | null): void {
    this.head = response;
    this.headStatus = status;
    this.headHeaders = headers;
    this.headBody = body;
  }

  /** The origin's Response is no longer needed here (it may be copied and dropped: not kept alive by the attempt). */
  forgetHead(): void {
    this.head = undefined;
    this.headHeaders = undefined;
    this.headBody = null;
  }

  statusOf(response: Response): number {
    return response === this.head ? this.headStatus : response.status;
  }

  headersOf(response: Response): Headers {
    return response === this.head ? this.headHeaders! : response.headers;
  }

  bodyOf(response: Response): ReadableStream<Uint8Array> | null {
    return response === this.head ? this.headBody : response.body;
  }

  /** The fields of this attempt's log lines. */
  logFields(pre: Prelude, transport: Transport, attempt: number): Record<string, unknown> {
    return { requestId: pre.requestId, host: pre.facts.host, node: this.node.node, origin: this.node.key, transport: transport.name, attempt };
  }
}

const noop = () => {};

/** Whether an origin's answer with this status gets the request's X-Request-Id (ProxyDeps.echoRequestId). */
function echoesRequestId(deps: ProxyDeps, status: number): boolean {
  return status >= 500 || deps.echoRequestId === "always";
}

/**
 * The client's Response for an origin's answer that is final (not retried, not a 101): the body
 * handed on or relayed, and the origin's fields copied only when something must change (clientEdit:
 * hop-by-hop fields, X-Request-Id; the affinity cookies; a raw encoded body).
 */
function clientAnswer(
  pre: Prelude,
  a: Attempt,
  upstream: Response,
  status: number,
  upstreamHeaders: Headers,
  transport: Transport,
  policy: Route["policy"],
  cookie: string | undefined,
  cross: CrossCluster | undefined,
  echoRequestId: boolean,
): Response {
  const method = pre.method;
  // The socket transport hands over the origin's bytes as sent (still gzip, say); fetch() decodes them.
  const raw = transport.name === "socket";
  const body = a.bodyOf(upstream);
  a.forgetHead();
  let responseBody: ReadableStream<Uint8Array> | null;
  if (body === null || method === "HEAD" || status === 204 || status === 304) {
    // Nothing to relay; an empty stream some transports attach is let go (relayBody's rule).
    body?.cancel().catch(noop);
    a.release();
    responseBody = null;
  } else if (a.bodyRelayed) {
    // The transport relays it and reports its end itself.
    responseBody = body;
  } else {
    responseBody = relayBody(method, upstream, a.releaser(), raw, false);
  }
  // The origin's fields copied by the runtime in one call, then the few the client must not get
  // taken out (cheaper than a copy field by field that the Response would copy once more).
  const encodeBody = encodeBodyFor(upstreamHeaders, raw);
  // Read from the origin's own fields: what the client's copy needs (nothing, for an app that
  // echoes X-Request-Id and sends no hop-by-hop field).
  const edit = clientEdit(upstreamHeaders, method, echoRequestId);
  const origin = a.node;
  const affinityCookie = policy.affinity === "cookie";
  const setsCookie = affinityCookie && (cookie !== cookieValue(origin) || (cross !== undefined && cross.pin !== clusterPin(origin.cluster)));
  if (edit === undefined && !setsCookie && encodeBody === "automatic" && responseBody === body) {
    // Nothing to change: the origin's Response goes to the client as is (no copy of its fields).
    return upstream;
  }
  // With the default encoding, the origin's Response itself is the init: the runtime reads its
  // status, text and fields natively (cheaper than a dict of the three).
  const client =
    encodeBody === "automatic"
      ? new Response(responseBody, upstream)
      : new Response(responseBody, { status, statusText: upstream.statusText, headers: upstreamHeaders, encodeBody });
  const out = client.headers;
  if (edit !== undefined) applyClientEdit(out, edit, pre.requestId);
  if (affinityCookie && cookie !== cookieValue(origin)) {
    const secure = pre.facts.proto === "https" ? "; Secure" : "";
    out.append("set-cookie", `${policy.cookieName}=${cookieValue(origin)}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  }
  if (cross && affinityCookie && cross.pin !== clusterPin(origin.cluster)) {
    // Pins the client to this cluster: it stays here even when its node goes away.
    const secure = pre.facts.proto === "https" ? "; Secure" : "";
    out.append("set-cookie", `${pinCookieName(policy.cookieName)}=${clusterPin(origin.cluster)}; Path=/; HttpOnly; SameSite=Lax${secure}`);
  }
  return client;
}
