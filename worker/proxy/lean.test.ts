// The lean path (a bodyless GET/HEAD over fetch(), proxy() in index.ts) and the general path must
// give the same answers: random requests (methods, bodies, client fields incl. forged and hostile
// ones) and random origin behaviour per attempt (answers, 5xx, resets, timeouts) run through both,
// and what each origin attempt receives, what the client gets, the log events, the in-flight counts
// and the nodes' health are compared. The origin is a transport named "fetch" that answers as the
// fetch transport does (a small body handed over at its head), so the comparison is of the proxy alone.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { newBalancerState, type BalancerState } from "../balancer/index.ts";
import { buildIndex, lookupRoute, routeOrigins, type Route } from "../config/routes.ts";
import { PassiveHealth } from "../health/index.ts";
import { memoryLogger } from "../log/index.ts";
import { SNAPSHOT_SCHEMA, validateSnapshot } from "../snapshot/schema.ts";
import { pathAndQuery } from "../transport/target/index.ts";
import { ConnectError, MalformedResponseError, ResponseTimeoutError, UpstreamResetError, type OriginRequest, type Transport } from "../transport/types.ts";
import { RetryBudget } from "./budget.ts";
import { proxy, type ProxyDeps } from "./index.ts";

type Outcome =
  | { kind: "answer"; status: number; headers: [string, string][]; body: string; echoId: boolean }
  | { kind: "reset" | "connect" | "timeout" | "malformed" };

interface Case {
  method: string;
  path: string;
  fields: [string, string][];
  body: string | undefined;
  policy: { attempts: number; affinity?: "client-ip" | "cookie"; retryNonIdempotent?: boolean; transport?: "fetch" | "socket" };
  nodes: number;
  /** How many of the nodes the agent reports unhealthy (all of them: the route fails open). */
  unhealthy?: number;
  /** Nodes by IP (auto picks the socket transport for them) instead of by hostname. */
  ipNodes?: boolean;
  workerTransport?: "fetch" | "auto" | "socket";
  /** Requests made one after the other with the same isolate state (health, in flight, balancer, budget). */
  repeat?: number;
  outcomes: Outcome[];
  seed: number;
}

function routeFor(c: Case): Route {
  const r = validateSnapshot({
    schema: SNAPSHOT_SCHEMA,
    cluster: "c",
    generation: 1,
    publishedAt: "2026-01-01T00:00:00Z",
    nodes: Array.from({ length: c.nodes }, (_, i) => ({ name: `n${i}`, address: c.ipNodes ? `192.0.2.${i + 1}` : `node${i}.example`, healthy: i >= (c.unhealthy ?? 0) })),
    services: [{ namespace: "d", name: "web", hostnames: ["web.example"], nodePort: 30080, policy: c.policy }],
  });
  if (!r.ok) throw new Error(r.error);
  return lookupRoute(buildIndex([{ cluster: "c", snapshot: r.snapshot }]), "web.example")!;
}

/** A seeded generator, so both runs of a case choose the same nodes. */
function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** Generated request ids differ between runs (an isolate counter): one placeholder for all. */
const normalize = (s: string) => s.replace(/[0-9a-f]{16}-[0-9a-z]+/g, "<id>");

async function run(c: Case, route: Route, lean: boolean) {
  const log = memoryLogger();
  const now = () => 1_700_000_000_000;
  const health = new PassiveHealth({ now });
  const inFlight = new Map<string, number>();
  const balancers = new WeakMap<Route, BalancerState>();
  const sends: unknown[] = [];
  let n = 0;
  const transportNamed = (name: "fetch" | "socket"): Transport => ({
    name,
    async send(req: OriginRequest) {
      const r = req.request;
      const body = r.body === null ? null : await new Response(r.body).text();
      // What fetch() is given: the copy of the client's Headers when the proxy built one, else the record.
      const given: Record<string, string> = r.fetchHeaders ? Object.fromEntries(r.fetchHeaders) : (r.fields ?? Object.fromEntries(r.headers));
      const fields = Object.entries(given).map(([k, v]) => [k, normalize(v)]);
      sends.push({ node: req.origin.node, method: r.method, target: r.target ?? pathAndQuery(r.url), fields: fields.sort(), body });
      const o = c.outcomes[n++] ?? c.outcomes.at(-1)!;
      switch (o.kind) {
        case "reset":
          throw new UpstreamResetError("reset", req.origin);
        case "connect":
          throw new ConnectError("refused", req.origin);
        case "timeout":
          throw new ResponseTimeoutError("no head", req.origin);
        case "malformed":
          throw new MalformedResponseError("garbled", req.origin);
      }
      const headers = new Headers(o.headers);
      if (o.echoId) headers.set("x-request-id", given["x-request-id"]!);
      const bodyless = r.method === "HEAD" || o.status === 204 || o.status === 304;
      const res = new Response(bodyless ? null : o.body, { status: o.status, headers });
      // As the fetch transport does with a small body: handed over at its head, in flight released.
      if (res.body !== null) req.onBodyRelay?.()?.();
      // As the fetch transport does for a Response it returns as is (half the cases: both ways are covered).
      if (c.seed % 2 === 1) req.onHead?.(res, res.status, res.headers, res.body);
      return res;
    },
  });
  const deps: ProxyDeps = {
    health,
    inFlight,
    balancer: (route) => {
      let s = balancers.get(route);
      if (!s) balancers.set(route, (s = newBalancerState()));
      return s;
    },
    transports: { fetch: transportNamed("fetch"), socket: transportNamed("socket") },
    workerTransport: c.workerTransport ?? "fetch",
    log,
    requestLogs: true,
    random: seeded(c.seed),
    now,
    retryBudget: new RetryBudget({ now }),
    leanPath: lean,
  };
  const answers: unknown[] = [];
  for (let i = 0; i < (c.repeat ?? 1); i++) {
    const headers = new Headers(c.fields);
    headers.set("host", "web.example");
    const request = new Request(`https://web.example${c.path}`, { method: c.method, headers, ...(c.body === undefined ? {} : { body: c.body }) });
    const res = await proxy(request, route, deps, undefined, {});
    const text = normalize(new TextDecoder().decode(await res.arrayBuffer()));
    // Set-Cookie values name nodes by a hash: compared as they are (same node on both paths).
    answers.push({ status: res.status, headers: [...res.headers].map(([k, v]) => [k, normalize(v)]), text, inFlight: [...inFlight] });
  }
  return {
    answers,
    sends,
    events: log.entries.map((e) => `${e.level} ${e.event}`),
    inFlight: [...inFlight],
    ejected: routeOrigins(route).map((o) => health.isEjected(o.key)),
  };
}

const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
const hostileValue = fc.oneof(
  fc.stringMatching(/^[ -~]{0,20}$/),
  fc.constantFrom("1.2.3.4", "::1", "evil\u0001value", "trailers", "x-a, keep-alive", "websocket", "h2c", "a".repeat(201), "id with space", "ok-id-1"),
);
const clientField = fc.oneof(
  fc.tuple(
    fc.constantFrom(
      "x-forwarded-for",
      "forwarded",
      "x-real-ip",
      "x-forwarded-host",
      "cf-connecting-ip",
      "x-request-id",
      "connection",
      "keep-alive",
      "te",
      "x-a",
      "cookie",
      "user-agent",
      "proxy-authorization",
      "x-edgelb-test-cf",
      "content-length",
      "transfer-encoding",
      "upgrade",
    ),
    hostileValue,
  ),
  fc.tuple(token, hostileValue),
);
const responseField = fc.tuple(
  fc.constantFrom("content-type", "connection", "x-b", "proxy-connection", "proxy-authenticate", "keep-alive", "set-cookie", "retry-after", "etag", "x-request-id", "cache-control"),
  fc.constantFrom("text/plain", "x-b", "1", "close", "a=b", "5", '"v1"', "no-store"),
);
const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("answer" as const),
      status: fc.constantFrom(200, 200, 201, 204, 304, 404, 500, 502, 503, 504),
      headers: fc.array(responseField, { maxLength: 4 }),
      body: fc.constantFrom("", "OK", "hello world"),
      echoId: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("reset" as const, "connect" as const, "timeout" as const, "malformed" as const) }) },
);
const testCase: fc.Arbitrary<Case> = fc.record({
  method: fc.constantFrom("GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"),
  path: fc.constantFrom("/", "/status/200", "/a?b=c", "/x/../y?q=%20#frag"),
  fields: fc.array(clientField, { maxLength: 5 }),
  body: fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom("", "data", "x".repeat(100)) }),
  policy: fc.record(
    {
      attempts: fc.integer({ min: 1, max: 3 }),
      affinity: fc.constantFrom("client-ip" as const, "client-ip" as const, "cookie" as const),
      retryNonIdempotent: fc.boolean(),
      transport: fc.constantFrom("fetch" as const, "fetch" as const, "socket" as const),
    },
    { requiredKeys: ["attempts"] },
  ),
  nodes: fc.integer({ min: 1, max: 3 }),
  unhealthy: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
  ipNodes: fc.boolean(),
  workerTransport: fc.constantFrom("fetch" as const, "fetch" as const, "fetch" as const, "auto" as const, "socket" as const),
  repeat: fc.integer({ min: 1, max: 3 }),
  outcomes: fc.array(outcome, { minLength: 1, maxLength: 4 }),
  seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
});

/** A request the runtime accepts (a GET/HEAD with a body, or a field value it refuses, cannot be built). */
function buildable(c: Case): boolean {
  try {
    const h = new Headers(c.fields);
    new Request("https://web.example/", { method: c.method, headers: h, ...(c.body === undefined ? {} : { body: c.body }) });
    return true;
  } catch {
    return false;
  }
}

/** Whether the case's first attempt can take the lean path (proxy()'s condition, as the test knows it). */
function takesLean(c: Case): boolean {
  const transport = c.policy.transport ?? c.workerTransport ?? "fetch";
  const names = c.fields.map(([k]) => k);
  return (
    (c.method === "GET" || c.method === "HEAD") &&
    c.body === undefined &&
    !names.some((k) => k === "upgrade" || k === "transfer-encoding" || k === "content-length") &&
    c.policy.affinity !== "cookie" &&
    (transport === "fetch" || (transport === "auto" && !c.ipNodes)) &&
    (c.unhealthy ?? 0) < c.nodes
  );
}

describe("the lean path", () => {
  it("gives what the general path gives: to every origin attempt, to the client, in the logs, in flight and in health (property)", async () => {
    let leanEligible = 0;
    await fc.assert(
      fc.asyncProperty(testCase, async (c) => {
        fc.pre(buildable(c));
        const route = routeFor(c);
        const general = await run(c, route, false);
        const lean = await run(c, route, true);
        expect(lean).toEqual(general);
        if (takesLean(c)) leanEligible++;
      }),
      { numRuns: 500 },
    );
    // The property says something only if many cases could take the lean path.
    expect(leanEligible).toBeGreaterThan(20);
  });

  it("is the path a plain GET takes: the attempt object is the transport's request, with no hook of its own", async () => {
    const c: Case = { method: "GET", path: "/", fields: [], body: undefined, policy: { attempts: 2 }, nodes: 2, outcomes: [{ kind: "answer", status: 200, headers: [], body: "OK", echoId: true }], seed: 7 };
    const route = routeFor(c);
    let seen: OriginRequest | undefined;
    const transport: Transport = {
      name: "fetch",
      send: async (req) => {
        seen = req;
        return new Response("OK", { headers: { "x-request-id": req.request.fields!["x-request-id"]! } });
      },
    };
    const deps: ProxyDeps = {
      health: new PassiveHealth(),
      inFlight: new Map(),
      balancer: () => newBalancerState(),
      transports: { fetch: transport, socket: transport },
      workerTransport: "fetch",
      log: memoryLogger(),
      requestLogs: false,
      random: Math.random,
      now: Date.now,
    };
    const res = await proxy(new Request("https://web.example/", { headers: { host: "web.example" } }), route, deps);
    expect(res.status).toBe(200);
    expect(seen!.request).toBe(seen);
    expect(Object.getOwnPropertyNames(seen!).filter((k) => k.startsWith("on"))).toEqual([]);
  });
});

describe("the origin's Response", () => {
  it("is not read again by the proxy for what the transport handed over with it (onHead)", async () => {
    const c: Case = { method: "GET", path: "/", fields: [], body: undefined, policy: { attempts: 1 }, nodes: 1, outcomes: [], seed: 3 };
    const route = routeFor(c);
    const reads: string[] = [];
    for (const lean of [true, false]) {
      reads.length = 0;
      const transport: Transport = {
        name: "fetch",
        send: async (req) => {
          const res = new Response("OK", { headers: { "content-type": "text/plain" } });
          const status = res.status;
          const headers = res.headers;
          const body = res.body;
          req.onBodyRelay?.()?.();
          req.onHead?.(res, status, headers, body);
          // Every later read of these getters is counted.
          for (const [name, value] of [["status", status], ["headers", headers], ["body", body]] as const) {
            Object.defineProperty(res, name, { get: () => (reads.push(name), value) });
          }
          return res;
        },
      };
      const deps: ProxyDeps = {
        health: new PassiveHealth(),
        inFlight: new Map(),
        balancer: () => newBalancerState(),
        transports: { fetch: transport, socket: transport },
        workerTransport: "fetch",
        log: memoryLogger(),
        requestLogs: false,
        random: Math.random,
        now: Date.now,
        leanPath: lean,
        // The answer is copied to add X-Request-Id: the copy reads nothing of the origin's again either.
        echoRequestId: "always",
      };
      const res = await proxy(new Request("https://web.example/", { headers: { host: "web.example" } }), route, deps);
      expect(await res.text()).toBe("OK");
      expect(res.headers.get("x-request-id")).toMatch(/./);
      expect(reads, lean ? "lean path" : "general path").toEqual([]);
    }
  });
});

describe("proxy()", () => {
  it("rejects, never throws, when something fails before the first await (as the async function it was)", async () => {
    const route = routeFor({ method: "GET", path: "/", fields: [], body: undefined, policy: { attempts: 1 }, nodes: 1, outcomes: [], seed: 1 });
    const failing = () => {
      throw new Error("balancer broke");
    };
    const t: Transport = { name: "fetch", send: async () => new Response("OK") };
    const deps: ProxyDeps = {
      health: new PassiveHealth(),
      inFlight: new Map(),
      balancer: failing,
      transports: { fetch: t, socket: t },
      workerTransport: "fetch",
      log: memoryLogger(),
      requestLogs: false,
      random: Math.random,
      now: Date.now,
    };
    let result: Promise<Response> | undefined;
    expect(() => (result = proxy(new Request("https://web.example/", { headers: { host: "web.example" } }), route, deps))).not.toThrow();
    await expect(result).rejects.toThrow("balancer broke");
  });
});
