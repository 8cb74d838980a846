// A faithful fake Kubernetes API server over plain node:http + JSON. Real
// clients (client-node informers, kubectl) use it unchanged. Fault hooks let
// tests break it the ways a real control plane breaks: watches closed or
// reset, history compacted (410), the server down and back on the same port,
// errors and latency injected per method and path.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { isServed, CUSTOM_RESOURCE_DEFINITIONS } from "./gateway.ts";
import { apiGroupDoc, apiGroupList, apiResourceList, apiVersions, VERSION_INFO } from "./discovery.ts";
import { selectorString } from "./apps.ts";
import { groupVersionDocument, openApiRoot } from "./openapi/index.ts";
import { applyPatch, PATCH_TYPES } from "./patch.ts";
import { decodeProtobuf, PROTOBUF } from "./protobuf.ts";
import { apiVersionOf, RESOURCES, SERVICES, type ResourceType } from "./resources.ts";
import { parseFieldSelector, parseLabelSelector, type Obj } from "./selectors.ts";
import { ApiError, errors, type StatusReason, type Subject } from "./status.ts";
import { Store, type StoreEvent, type StoreOptions } from "./store.ts";
import { toTable } from "./table.ts";

export interface ApiServerOptions extends StoreOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** 0 picks a free port; restart() reuses the same one. */
  port?: number;
  /** Bearer token: a request carrying any other token gets 401. */
  token?: string;
  /**
   * Whether requests without credentials are served (default true). kubectl
   * never sends kubeconfig credentials to a plain-http server (client-go only
   * attaches them over TLS), so the demo and kubectl tests need this; suites
   * that must prove a client authenticates set it false, or check `auth` in
   * the request log.
   */
  anonymous?: boolean;
  /** Share a store (state) between server instances. */
  store?: Store;
  /** How often watches that asked for bookmarks get one (real: ~1 min). */
  bookmarkIntervalMs?: number;
  /**
   * Like kube-apiserver's --min-request-timeout: a watch without
   * timeoutSeconds is ended cleanly after a random time in [t, 2t] seconds.
   * Default: never (deterministic tests).
   */
  minRequestTimeoutSeconds?: number;
}

/** A fault to inject: matching requests fail, stall or lose their socket. */
export interface Injection {
  method?: string;
  /** Tested against the path without the query string. */
  path: RegExp;
  /** Only watch (true) or only non-watch (false) requests; default both. */
  watch?: boolean;
  /** Answer this status with a Status body instead of serving. */
  status?: number;
  message?: string;
  /** With status (429, 503…): a Retry-After header and details.retryAfterSeconds, like API priority and fairness. */
  retryAfterSeconds?: number;
  /** Wait this long first (then fail or serve). */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  reset?: boolean;
  /** Stop after this many matches (default: until removed). */
  times?: number;
}

export interface RequestLogEntry {
  time: number;
  method: string;
  path: string;
  query: string;
  watch: boolean;
  status: number;
  /** How the request authenticated. */
  auth: "bearer" | "anonymous" | "rejected";
  contentType?: string;
  userAgent?: string;
}

interface InjectionEntry extends Injection {
  hits: number;
  /** Requests sleeping in this injection's delay; removing the injection wakes them. */
  sleepers: Set<() => void>;
}

interface WatchConn {
  res: http.ServerResponse;
  socket: Socket;
  end(): void;
}

const REASONS: Record<number, StatusReason> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Gone",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

const PUBLIC_PATHS = new Set(["/healthz", "/livez", "/readyz", "/version"]);

interface Route {
  resource: ResourceType;
  namespace: string;
  name?: string;
  subresource?: "status" | "scale" | "log" | "eviction";
  watchPath: boolean;
}

/** What a pod's container wrote, for `kubectl logs` (the simulated cluster's pods). */
export type PodLogSource = (namespace: string, pod: string, opts: { tailLines?: number }) => string | undefined;

function parseRoute(pathname: string, served: (r: ResourceType) => boolean = () => true): Route | "discovery" | undefined {
  const segs = pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let group = "";
  let version: string | undefined;
  let rest: string[];
  if (segs[0] === "api") {
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === "apis") {
    group = segs[1] ?? "";
    version = segs[2];
    rest = segs.slice(3);
  } else return undefined;
  if (!version || rest.length === 0) return "discovery";
  let watchPath = false;
  if (rest[0] === "watch") {
    watchPath = true;
    rest = rest.slice(1);
  }
  const find = (plural: string | undefined) => RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural && served(r));
  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3 && rest[2] !== "status" && rest[2] !== "finalize") {
    namespace = rest[1]!;
    rest = rest.slice(2);
    const r = find(rest[0]);
    if (!r || !r.namespaced) return undefined;
    return mk(r, namespace, rest, watchPath);
  }
  const r = find(rest[0]);
  if (!r) return undefined;
  if (r.namespaced && rest.length > 1) return undefined; // namespaced item needs /namespaces/<ns>/
  return mk(r, "", rest, watchPath);
}

function mk(resource: ResourceType, namespace: string, rest: string[], watchPath: boolean): Route | undefined {
  if (rest.length > 3) return undefined;
  const sub = rest[2];
  if (sub !== undefined && !(sub === "status" || (sub === "scale" && resource.scale) || ((sub === "log" || sub === "eviction") && resource.graceful))) return undefined;
  return {
    resource,
    namespace,
    ...(rest[1] !== undefined ? { name: rest[1] } : {}),
    ...(sub === "status" || sub === "scale" || sub === "log" || sub === "eviction" ? { subresource: sub } : {}),
    watchPath,
  };
}

/** autoscaling/v1 Scale of a Deployment or ReplicaSet. */
function scaleOf(o: Obj): Obj {
  const m = o.metadata;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: o.spec?.replicas ?? 0 },
    status: { replicas: o.status?.replicas ?? 0, selector: selectorString(o.spec?.selector) },
  };
}

function wantsTable(req: http.IncomingMessage): boolean {
  return /as=Table/.test(req.headers.accept ?? "");
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if ((req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase() === PROTOBUF) return decodeProtobuf(Buffer.concat(chunks));
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`the object provided is unrecognized: json parse error: ${(e as Error).message}`);
  }
}

export class ApiServer {
  readonly store: Store;
  /** Where `kubectl logs` reads a pod's log from (set by the simulated cluster). */
  podLogs?: PodLogSource;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly watches = new Set<WatchConn>();
  private injections: InjectionEntry[] = [];
  readonly requests: RequestLogEntry[] = [];
  private host: string;
  private port: number;
  private readonly token: string | undefined;
  private readonly anonymous: boolean;
  private readonly bookmarkIntervalMs: number;
  private readonly minRequestTimeoutSeconds: number | undefined;

  private constructor(opts: ApiServerOptions) {
    this.store = opts.store ?? new Store(opts);
    this.host = opts.host ?? "127.0.0.1";
    this.port = opts.port ?? 0;
    this.token = opts.token;
    this.anonymous = opts.anonymous ?? true;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 60_000;
    this.minRequestTimeoutSeconds = opts.minRequestTimeoutSeconds;
  }

  static async start(opts: ApiServerOptions = {}): Promise<ApiServer> {
    const s = new ApiServer(opts);
    await s.listen();
    return s;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Number of open watch streams. */
  get watchCount(): number {
    return this.watches.size;
  }

  /** (Re)starts listening on the same host:port, keeping all state. */
  async listen(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Goes down like a crashed apiserver: every connection is dropped, state is
   * kept. With `graceful`, like a rolling apiserver restart instead: watch
   * streams end cleanly and idle connections close before the rest is dropped.
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    if (opts.graceful) {
      this.closeWatches();
      server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const w of this.watches) w.end();
    this.watches.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.listen();
  }

  // ---- fault hooks ----

  /** Ends every watch stream cleanly (the chunked response completes). */
  closeWatches(): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) {
      w.end();
      w.res.end();
    }
    return n;
  }

  /** Destroys every watch connection's socket mid-stream (a TCP reset for the client). */
  resetWatches(): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) {
      w.end();
      w.socket.destroy();
    }
    return n;
  }

  /** Drops history up to `rv` (default: now): older watches and continue tokens get 410. */
  compact(rv?: number): void {
    this.store.compact(rv);
  }

  /** Requests currently held by an injected delay. */
  get delayedRequests(): number {
    return this.injections.reduce((n, i) => n + i.sleepers.size, 0);
  }

  /** Adds a fault; the returned function removes it (and lets requests it delays proceed). */
  inject(rule: Injection): () => void {
    const entry: InjectionEntry = { ...rule, hits: 0, sleepers: new Set() };
    this.injections.push(entry);
    return () => this.removeInjection(entry);
  }

  clearInjections(): void {
    for (const i of [...this.injections]) this.removeInjection(i);
  }

  private removeInjection(entry: InjectionEntry): void {
    this.injections = this.injections.filter((i) => i !== entry);
    for (const wake of [...entry.sleepers]) wake();
  }

  /** Sleeps for an injected delay; ends early when the injection goes or the client leaves. */
  private sleep(entry: InjectionEntry, ms: number, req: http.IncomingMessage): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        entry.sleepers.delete(wake);
        req.socket.off("close", wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      entry.sleepers.add(wake);
      req.socket.once("close", wake);
    });
  }

  clearRequestLog(): void {
    this.requests.length = 0;
  }

  // ---- HTTP ----

  private authOf(req: http.IncomingMessage): RequestLogEntry["auth"] {
    const h = req.headers.authorization;
    if (h === undefined) return this.anonymous || this.token === undefined ? "anonymous" : "rejected";
    return this.token === undefined || h === `Bearer ${this.token}` ? "bearer" : "rejected";
  }

  private log(req: http.IncomingMessage, url: URL, status: number, watch: boolean): void {
    this.requests.push({
      auth: this.authOf(req),
      time: Date.now(),
      method: req.method ?? "",
      path: url.pathname,
      query: url.search.replace(/^\?/, ""),
      watch,
      status,
      ...(req.headers["content-type"] ? { contentType: req.headers["content-type"] } : {}),
      ...(req.headers["user-agent"] ? { userAgent: req.headers["user-agent"] } : {}),
    });
    if (this.requests.length > 10_000) this.requests.splice(0, 5_000);
  }

  private send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-cache, private" });
    res.end(text);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const q = url.searchParams;
    const isWatch = q.get("watch") === "true" || q.get("watch") === "1" || /\/watch\//.test(url.pathname);
    const method = (req.method ?? "GET").toUpperCase();
    let status = 200;
    try {
      for (const inj of this.injections) {
        if (inj.method && inj.method.toUpperCase() !== method) continue;
        if (!inj.path.test(url.pathname)) continue;
        if (inj.watch !== undefined && inj.watch !== isWatch) continue;
        if (inj.times !== undefined && inj.hits >= inj.times) continue;
        inj.hits++;
        if (inj.delayMs) {
          await this.sleep(inj, inj.delayMs, req);
          if (req.socket.destroyed) {
            status = 0;
            return;
          }
        }
        if (inj.reset) {
          status = 0;
          req.socket.destroy();
          return;
        }
        if (inj.status) {
          const retry = inj.retryAfterSeconds;
          if (retry !== undefined) res.setHeader("Retry-After", String(retry));
          throw new ApiError(
            inj.status,
            REASONS[inj.status] ?? "InternalError",
            inj.message ?? `injected fault: ${method} ${url.pathname}`,
            retry !== undefined ? { retryAfterSeconds: retry } : undefined,
          );
        }
      }
      const auth = this.authOf(req);
      if (auth === "rejected" && !(req.headers.authorization === undefined && PUBLIC_PATHS.has(url.pathname))) {
        throw errors.unauthorized();
      }
      status = await this.serve(req, res, url, method, isWatch);
    } catch (e) {
      const err = e instanceof ApiError ? e : errors.internal((e as Error).message);
      status = err.code;
      if (!res.headersSent) this.send(res, err.code, err.toStatus());
      else res.end();
    } finally {
      this.log(req, url, status, isWatch);
    }
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, url: URL, method: string, isWatch: boolean): Promise<number> {
    const p = url.pathname.replace(/\/+$/, "") || "/";
    if (["/healthz", "/livez", "/readyz"].includes(p)) {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
      return 200;
    }
    if (method === "GET") {
      const doc = this.discovery(p, req);
      if (doc) {
        this.send(res, 200, doc);
        return 200;
      }
    }
    const route = parseRoute(p, this.served);
    if (!route || route === "discovery") throw errors.pathNotFound(p);
    const r = route.resource;
    const q = url.searchParams;
    const dryRun = q.getAll("dryRun").includes("All");
    const fv = q.get("fieldValidation");
    const warnings: string[] = [];
    const fieldValidation = fv === "Ignore" || fv === "Strict" ? fv : "Warn";
    // Warnings (dropped unknown fields) go out as Warning headers, like kube-apiserver's.
    const warn = () => {
      if (warnings.length && !res.headersSent) res.setHeader("Warning", warnings.map((w) => `299 - ${JSON.stringify(w)}`));
    };

    if (route.name === undefined) {
      if (method === "GET" && (isWatch || route.watchPath)) return this.watch(req, res, route, q);
      if (method === "GET") return this.list(req, res, route, q);
      if (method === "POST") {
        const body = (await readBody(req)) as Obj;
        if (!r.namespaced && route.namespace) throw errors.pathNotFound(p);
        if (r.namespaced && !route.namespace) throw errors.methodNotAllowed();
        const out = this.store.create(r, route.namespace, body ?? {}, { dryRun, fieldValidation, warnings });
        warn();
        this.send(res, 201, out);
        return 201;
      }
      throw errors.methodNotAllowed();
    }

    const name = route.name;
    if (route.subresource === "scale") return this.scale(req, res, route, name, method, { dryRun, fieldValidation, warnings });
    if (route.subresource === "log") {
      if (method !== "GET") throw errors.methodNotAllowed();
      this.store.get(r, route.namespace, name);
      const tail = q.get("tailLines");
      const text = this.podLogs?.(route.namespace, name, tail !== null && /^\d+$/.test(tail) ? { tailLines: Number(tail) } : {}) ?? "";
      res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(text) });
      res.end(text);
      return 200;
    }
    if (route.subresource === "eviction") return this.evict(req, res, route, name, method, dryRun);
    const opts = { ...(route.subresource ? { subresource: route.subresource } : {}), dryRun, fieldValidation, warnings } as const;
    switch (method) {
      case "GET": {
        if (isWatch) return this.watch(req, res, { ...route }, q);
        const obj = this.store.get(r, route.namespace, name);
        this.send(res, 200, wantsTable(req) ? toTable(r.printer, [obj], { resourceVersion: obj.metadata.resourceVersion }, q.get("includeObject") ?? "") : obj);
        return 200;
      }
      case "PUT": {
        const body = ((await readBody(req)) ?? {}) as Obj;
        const existed = this.store.tryGet(r, route.namespace, name) !== undefined;
        const out = this.store.update(r, route.namespace, name, body, opts);
        warn();
        const code = existed ? 200 : 201;
        this.send(res, code, out);
        return code;
      }
      case "PATCH": {
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (!(PATCH_TYPES as readonly string[]).includes(type)) {
          throw errors.unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(", ")}`);
        }
        const body = await readBody(req);
        const out = this.store.patch(r, route.namespace, name, req.headers["content-type"] ?? "", body, opts);
        warn();
        this.send(res, 200, out);
        return 200;
      }
      case "DELETE": {
        if (route.subresource) throw errors.methodNotAllowed();
        const body = ((await readBody(req)) ?? {}) as Obj;
        const preconditions = body.preconditions ?? {};
        const graceParam = q.get("gracePeriodSeconds") ?? body.gracePeriodSeconds;
        const grace = graceParam !== undefined && graceParam !== null && /^\d+$/.test(String(graceParam)) ? Number(graceParam) : undefined;
        const out = this.store.delete(r, route.namespace, name, {
          preconditions,
          dryRun: dryRun || (body.dryRun ?? []).includes("All"),
          ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
        });
        const stillThere = this.store.tryGet(r, route.namespace, name) !== undefined;
        if (stillThere || r === SERVICES) this.send(res, 200, out);
        else {
          this.send(res, 200, {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Success",
            details: { name, group: r.group, kind: r.plural, uid: out.metadata.uid },
          });
        }
        return 200;
      }
      default:
        throw errors.methodNotAllowed();
    }
  }

  /**
   * POST pods/NAME/eviction (policy/v1 Eviction), what `kubectl drain` sends: the pod is deleted
   * gracefully, with the Eviction's grace period or the pod's own, so it drains like a rollout. There
   * are no PodDisruptionBudgets in the simulated cluster, so an eviction is never refused (429).
   */
  private async evict(req: http.IncomingMessage, res: http.ServerResponse, route: Route, name: string, method: string, dryRunParam: boolean): Promise<number> {
    if (method !== "POST") throw errors.methodNotAllowed();
    const body = ((await readBody(req)) ?? {}) as Obj;
    if (body.kind !== undefined && body.kind !== "Eviction") throw errors.badRequest(`expected an Eviction (policy/v1), got ${String(body.kind)}`);
    if (body.metadata?.name !== undefined && body.metadata.name !== name) throw errors.badRequest(`name in URL does not match name in Eviction object`);
    const del = (body.deleteOptions ?? {}) as Obj;
    const g = del.gracePeriodSeconds;
    if (g !== undefined && g !== null && !(Number.isSafeInteger(g) && g >= 0 && g <= 1e9)) {
      throw errors.badRequest(`deleteOptions.gracePeriodSeconds ${JSON.stringify(g)}: must be a whole number of seconds, 0 or more`);
    }
    const grace = typeof g === "number" ? g : undefined;
    this.store.delete(route.resource, route.namespace, name, {
      preconditions: del.preconditions ?? {},
      dryRun: dryRunParam || (Array.isArray(del.dryRun) && del.dryRun.includes("All")),
      ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
    });
    this.send(res, 201, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 });
    return 201;
  }

  /** Custom resources (Gateway API) exist only while their CRD does. */
  private readonly served = (r: ResourceType) => isServed(r, (name) => this.store.tryGet(CUSTOM_RESOURCE_DEFINITIONS, "", name));
  private scale(req: http.IncomingMessage, res: http.ServerResponse, route: Route, name: string, method: string, opts: { dryRun: boolean; fieldValidation: "Ignore" | "Warn" | "Strict"; warnings: string[] }): Promise<number> | number {
    const r = route.resource;
    const cur = this.store.get(r, route.namespace, name);
    if (method === "GET") {
      this.send(res, 200, scaleOf(cur));
      return 200;
    }
    if (method !== "PUT" && method !== "PATCH") throw errors.methodNotAllowed();
    return (async () => {
      const body = await readBody(req);
      let wanted: Obj;
      if (method === "PUT") wanted = (body ?? {}) as Obj;
      else {
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
        if (!(PATCH_TYPES as readonly string[]).includes(type)) throw errors.unsupportedMediaType(`the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(", ")}`);
        wanted = applyPatch(type, scaleOf(cur), body, {});
      }
      const replicas = wanted.spec?.replicas;
      if (!Number.isInteger(replicas) || replicas < 0) {
        throw errors.invalid({ kind: "Scale", group: "autoscaling", plural: "scale", name } as Subject, [{ field: "spec.replicas", reason: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0` }]);
      }
      const rv = wanted.metadata?.resourceVersion;
      const next = { ...cur, metadata: { ...cur.metadata, ...(rv ? { resourceVersion: rv } : {}) }, spec: { ...cur.spec, replicas } };
      const out = this.store.update(r, route.namespace, name, next, { dryRun: opts.dryRun });
      this.send(res, 200, scaleOf(out));
      return 200;
    })();
  }

  private discovery(p: string, req: http.IncomingMessage): Obj | undefined {
    if (p === "/version") return VERSION_INFO;
    if (p === "/openapi/v3") return openApiRoot();
    if (p.startsWith("/openapi/v3/")) return groupVersionDocument(p.slice("/openapi/v3/".length));
    if (p === "/api") return apiVersions(req.headers.host ?? `${this.host}:${this.port}`);
    if (p === "/apis") return apiGroupList(this.served);
    if (p === "/api/v1") return apiResourceList("v1");
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(p);
    if (m) return m[2] ? apiResourceList(`${m[1]}/${m[2]}`, this.served) : apiGroupDoc(m[1]!, this.served);
    return undefined;
  }

  private selectors(r: ResourceType, q: URLSearchParams): (o: Obj) => boolean {
    const labels = parseLabelSelector(q.get("labelSelector"));
    const fields = parseFieldSelector(q.get("fieldSelector"), ["metadata.name", "metadata.namespace", ...r.fieldSelectors]);
    return (o) => labels(o.metadata?.labels ?? {}) && fields(o);
  }

  private list(req: http.IncomingMessage, res: http.ServerResponse, route: Route, q: URLSearchParams): number {
    const r = route.resource;
    const limit = Number(q.get("limit") ?? 0);
    const token = q.get("continue");
    let rv: number;
    let items: Obj[];
    let offset = 0;
    let snapshotId: string | undefined;
    if (token) {
      let parsed: { id: string; offset: number };
      try {
        parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      } catch {
        throw errors.badRequest("continue key is not valid: illegal base64 data");
      }
      const snap = this.store.loadSnapshot(parsed.id);
      ({ rv, items } = snap);
      offset = parsed.offset;
      snapshotId = parsed.id;
    } else {
      const match = this.selectors(r, q);
      const all = this.store.list(r, route.namespace || undefined);
      rv = all.rv;
      items = all.items.filter(match);
    }
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const meta: Obj = { resourceVersion: String(rv) };
    if (limit > 0 && offset + limit < items.length) {
      snapshotId ??= this.store.saveSnapshot(items, rv);
      meta.continue = Buffer.from(JSON.stringify({ id: snapshotId, offset: offset + limit })).toString("base64url");
      meta.remainingItemCount = items.length - offset - limit;
    }
    // Items of a typed list carry no kind/apiVersion, as on a real server.
    const bare = page.map((o) => {
      const { kind: _k, apiVersion: _a, ...rest } = o;
      return rest;
    });
    if (wantsTable(req)) this.send(res, 200, toTable(r.printer, page, meta, q.get("includeObject") ?? ""));
    else this.send(res, 200, { kind: `${r.kind}List`, apiVersion: apiVersionOf(r), metadata: meta, items: bare });
    return 200;
  }

  private watch(req: http.IncomingMessage, res: http.ServerResponse, route: Route, q: URLSearchParams): number {
    const r = route.resource;
    const match = this.selectors(r, q);
    const inScope = (o: Obj) =>
      (!route.namespace || o.metadata?.namespace === route.namespace) && (route.name === undefined || o.metadata?.name === route.name);
    const selected = (o: Obj | undefined) => o !== undefined && inScope(o) && match(o);
    const table = wantsTable(req);
    const includeObject = q.get("includeObject") ?? "";
    const bookmarks = q.get("allowWatchBookmarks") === "true" || q.get("allowWatchBookmarks") === "1";
    const rvParam = q.get("resourceVersion") ?? "";
    const sendInitial = q.get("sendInitialEvents") === "true";

    // Decide what to replay before answering: a compacted rv is a 410 in-stream.
    let initial: { type: string; object: Obj }[] = [];
    let expired: ApiError | undefined;
    if (rvParam === "" || rvParam === "0" || sendInitial) {
      const { items } = this.store.list(r, route.namespace || undefined);
      initial = items.filter(selected).map((o) => ({ type: "ADDED", object: o }));
    } else {
      const from = Number(rvParam);
      if (!Number.isInteger(from) || from < 0) throw errors.badRequest(`invalid resource version: ${rvParam}`);
      try {
        initial = this.store.eventsSince(r, from).flatMap((e) => this.translate(this.asView(r, e), selected));
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== 410) throw e;
        expired = e;
      }
    }

    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    const write = (type: string, object: Obj) => {
      const o = table && type !== "ERROR" && type !== "BOOKMARK" ? toTable(r.printer, [object], { resourceVersion: object.metadata?.resourceVersion }, includeObject) : object;
      res.write(JSON.stringify({ type, object: o }) + "\n");
    };
    if (expired) {
      write("ERROR", expired.toStatus());
      res.end();
      return 200;
    }

    const timers: NodeJS.Timeout[] = [];
    let unsubscribe = () => {};
    const conn: WatchConn = {
      res,
      socket: req.socket,
      end: () => {
        unsubscribe();
        for (const t of timers) clearTimeout(t);
        this.watches.delete(conn);
      },
    };
    this.watches.add(conn);
    res.on("close", () => conn.end());
    res.on("error", () => conn.end()); // a write racing a reset socket

    for (const e of initial) write(e.type, e.object);
    const bookmark = (extra?: Obj) =>
      write("BOOKMARK", { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.store.resourceVersion), ...extra } });
    if (sendInitial && bookmarks) bookmark({ annotations: { "k8s.io/initial-events-end": "true" } });
    const storage = this.store.storageOf(r);
    unsubscribe = this.store.subscribe((e) => {
      if (e.resource !== storage) return;
      for (const t of this.translate(this.asView(r, e), selected)) write(t.type, t.object);
    });
    if (bookmarks) {
      const tick = () => {
        bookmark();
        timers.push(setTimeout(tick, this.bookmarkIntervalMs).unref());
      };
      timers.push(setTimeout(tick, this.bookmarkIntervalMs).unref());
    }
    const min = this.minRequestTimeoutSeconds;
    const timeout = Number(q.get("timeoutSeconds") ?? 0) || (min ? min * (1 + Math.random()) : 0);
    if (timeout > 0) {
      timers.push(
        setTimeout(() => {
          conn.end();
          res.end();
        }, timeout * 1000).unref(),
      );
    }
    return 200;
  }

  /** A storage event as resource `r` presents it (events.k8s.io/v1 over core Events). */
  private asView(r: ResourceType, e: StoreEvent): StoreEvent {
    if (!r.storage) return e;
    return { ...e, object: this.store.view(r, e.object), ...(e.previous ? { previous: this.store.view(r, e.previous) } : {}) };
  }

  /** What a filtered watcher sees: objects entering/leaving its selector become ADDED/DELETED. */
  private translate(e: StoreEvent, selected: (o: Obj | undefined) => boolean): { type: string; object: Obj }[] {
    const now = selected(e.object);
    if (e.type === "ADDED") return now ? [{ type: "ADDED", object: e.object }] : [];
    if (e.type === "DELETED") return selected(e.previous) || now ? [{ type: "DELETED", object: e.object }] : [];
    const before = selected(e.previous);
    if (before && now) return [{ type: "MODIFIED", object: e.object }];
    if (!before && now) return [{ type: "ADDED", object: e.object }];
    if (before && !now) return [{ type: "DELETED", object: e.object }];
    return [];
  }
}
