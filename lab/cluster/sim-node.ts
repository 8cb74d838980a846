// A simulated Kubernetes node on its own loopback address. It serves what a
// real node exposes to a load balancer: every NodePort (an echo app standing in
// for kube-proxy + pods), kube-proxy's /healthz, and a Service's
// healthCheckNodePort for externalTrafficPolicy: Local. Tests and the demo
// break it on purpose: refuse connections, drop them (blackhole), hang, answer
// slowly or with 5xx.
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";
import { Blackhole } from "./blackhole.ts";

/** "drop": every NodePort silently drops new connections (a dropping firewall): a connect() waits for its timeout. */
export type NodeMode = "ok" | "refuse" | "drop" | "hang" | "slow" | "error";

export interface NodeBehavior {
  mode: NodeMode;
  /** For "slow": delay before answering (default 1000 ms). */
  delayMs?: number;
  /** For "error": the status to answer (default 503). */
  status?: number;
}

/** A pod behind a NodePort, as kube-proxy on this node would pick it. */
export interface PodEndpoint {
  namespace: string;
  pod: string;
  /** The node the pod runs on (kube-proxy forwards across nodes for Cluster). */
  node: string;
  ip: string;
  version: string;
}

/**
 * What a NodePort forwards to. Without a route the node answers for the
 * Service itself (the stand-in app, for Services no workload backs); with
 * one, it forwards to the listed pods and, when there are none, refuses
 * connections like kube-proxy's REJECT rule (the Service has no endpoint at
 * all) or, with `drop`, drops them like its DROP rule (externalTrafficPolicy:
 * Local, endpoints only on other nodes).
 */
export interface PortRoute {
  endpoints: PodEndpoint[];
  /** With no endpoint: drop new connections instead of refusing them. */
  drop?: boolean;
}

/** What a NodePort does with a new connection. */
type PortState = "open" | "refuse" | "drop";

export interface SimNodeOptions {
  name: string;
  /** A loopback address of its own, e.g. 127.0.0.11. */
  address: string;
  /** kube-proxy's healthz port (10256 on a real node); 0 picks a free one. */
  healthzPort?: number;
  /** Told of each request a pod answered (its log line). */
  onServed?: (endpoint: PodEndpoint, line: string) => void;
}

const ECHO_LIMIT = 64 * 1024;
const CHUNK = 64 * 1024;

/** A listener that can be closed and reopened on the same address:port. */
class Listener {
  readonly sockets = new Set<Socket>();
  server: http.Server | undefined;
  constructor(
    readonly address: string,
    public port: number,
    private readonly handler: http.RequestListener,
    private readonly onUpgrade?: (req: http.IncomingMessage, socket: Socket, head: Buffer) => void,
  ) {}

  async open(): Promise<number> {
    if (this.server) return this.port;
    const server = http.createServer(this.handler);
    server.keepAliveTimeout = 5_000;
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    if (this.onUpgrade) server.on("upgrade", this.onUpgrade);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, this.address, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this.port;
  }

  /**
   * Stops accepting (connection refused) and drops every open connection; `graceful`: requests
   * already in flight are answered first (idle connections are closed), as kube-proxy's rule change
   * leaves established connections alone.
   */
  async close(o: { graceful?: boolean } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    if (o.graceful) {
      // The listening socket closes now (the port is free for a blackhole); answers in flight finish.
      server.close();
      server.closeIdleConnections();
      return;
    }
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export class SimNode {
  readonly name: string;
  readonly address: string;
  private behavior: NodeBehavior = { mode: "ok" };
  private healthy = true;
  private eligible = true;
  private readonly nodePorts = new Map<number, Listener>();
  private readonly blackholes = new Map<number, Blackhole>();
  /** Per NodePort switching to refuse/drop: the route its listener's accepted connections are answered by until it has. */
  private readonly before = new Map<number, PortRoute | undefined>();
  /** Port changes one at a time: a port's listener and its blackhole never race for address:port. */
  private portWork: Promise<unknown> = Promise.resolve();
  private readonly routes = new Map<number, PortRoute>();
  private readonly turn = new Map<number, number>();
  private onServed: SimNodeOptions["onServed"];
  private readonly hcPorts = new Map<number, { listener: Listener; count: number; service: { namespace: string; name: string } }>();
  private readonly healthz: Listener;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly hung = new Set<http.ServerResponse>();

  private constructor(opts: SimNodeOptions) {
    this.name = opts.name;
    this.address = opts.address;
    this.onServed = opts.onServed;
    this.healthz = new Listener(opts.address, opts.healthzPort ?? 10256, (req, res) =>
      this.answerHealthz(req, res),
    );
    this.wss.on("connection", (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary) {
          const text = data.toString();
          const m = /^close:(\d{4})$/.exec(text);
          if (m) return ws.close(Number(m[1]), "closed on request");
        }
        ws.send(data, { binary: isBinary });
      });
    });
  }

  static async start(opts: SimNodeOptions): Promise<SimNode> {
    const node = new SimNode(opts);
    await node.healthz.open();
    return node;
  }

  get healthzPort(): number {
    return this.healthz.port;
  }

  get mode(): NodeMode {
    return this.behavior.mode;
  }

  /** Serves the NodePort app on address:port (0 picks a free port); returns the port. */
  async servePort(port: number): Promise<number> {
    const existing = this.nodePorts.get(port);
    if (existing) return existing.port;
    const listener: Listener = new Listener(
      this.address,
      port,
      (req, res) => this.answerApp(req, res, listener.port),
      (req, socket, head) => this.upgrade(req, socket, head),
    );
    if (port === 0) {
      // Needs a concrete port whatever its state: open once to learn it.
      await listener.open();
      await listener.close();
    }
    this.nodePorts.set(listener.port, listener);
    await this.apply(listener.port);
    return listener.port;
  }

  async unservePort(port: number): Promise<void> {
    const l = this.nodePorts.get(port);
    this.routes.delete(port);
    if (!l) return;
    this.nodePorts.delete(port);
    await this.serialized(async () => {
      await l.close();
      await this.closeBlackhole(port);
    });
  }

  /** What the NodePort does with a new connection: refuse while down, drop while dropping, else by its route. */
  private stateOf(port: number): PortState {
    if (this.behavior.mode === "refuse") return "refuse";
    if (this.behavior.mode === "drop") return "drop";
    const route = this.routes.get(port);
    if (route === undefined || route.endpoints.length > 0) return "open";
    return route.drop ? "drop" : "refuse";
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.portWork.then(fn, fn);
    this.portWork = run.catch(() => {});
    return run;
  }

  /** Brings the NodePort's listener (or blackhole) in line with stateOf(port). */
  private apply(port: number): Promise<void> {
    return this.serialized(async () => {
      const l = this.nodePorts.get(port);
      if (!l) return;
      const state = this.stateOf(port);
      // A route change (kube-proxy's rules) leaves accepted connections alone; a node failure does not.
      const graceful = this.behavior.mode !== "refuse" && this.behavior.mode !== "drop";
      if (state === "drop" && !this.blackholes.has(port)) {
        // The thread is ready before the listener goes: the port refuses for a moment at most.
        const hole = await Blackhole.prepare(this.address);
        await l.close({ graceful });
        this.before.delete(port);
        const full = await hole.listen(port).catch(async (err: unknown) => {
          await hole.close();
          throw err;
        });
        if (full) this.blackholes.set(port, hole);
        else {
          await hole.close();
          this.blackholes.set(port, await Blackhole.open(this.address, port));
        }
        return;
      }
      if (state !== "open") await l.close({ graceful });
      this.before.delete(port);
      if (state !== "drop") await this.closeBlackhole(port);
      if (state === "open") await l.open();
    });
  }

  private async closeBlackhole(port: number): Promise<void> {
    const hole = this.blackholes.get(port);
    if (!hole) return;
    this.blackholes.delete(port);
    await hole.close();
  }

  /** Whether a NodePort drops new connections right now (blackhole). */
  drops(port: number): boolean {
    return this.blackholes.has(port);
  }

  /** Sets (or, with undefined, clears) where a NodePort forwards; opens, closes or blackholes it to match. */
  async setRoute(port: number, route: PortRoute | undefined): Promise<void> {
    // Until the listener has switched (apply), a connection already accepted was accepted under the
    // old rules: it is answered by them, not reset (kube-proxy's switch is atomic for a connection).
    if (route && route.endpoints.length === 0 && this.nodePorts.get(port)?.server && !this.before.has(port)) this.before.set(port, this.routes.get(port));
    if (route) this.routes.set(port, route);
    else this.routes.delete(port);
    await this.apply(port);
  }

  /** Where each request a pod answered is reported (its log). */
  onServedBy(fn: NonNullable<SimNodeOptions["onServed"]>): void {
    this.onServed = fn;
  }

  route(port: number): PortRoute | undefined {
    return this.routes.get(port);
  }

  servedPorts(): number[] {
    return [...this.nodePorts.keys()].sort((a, b) => a - b);
  }

  async setBehavior(behavior: NodeBehavior): Promise<void> {
    this.behavior = { ...behavior };
    await Promise.all([...this.nodePorts.keys()].map((p) => this.apply(p)));
    if (behavior.mode !== "hang") {
      for (const res of this.hung) res.destroy();
      this.hung.clear();
    }
  }

  /** kube-proxy's /healthz: 200 when healthy and eligible, else 503. */
  setHealthy(healthy: boolean): void {
    this.healthy = healthy;
  }

  /**
   * Node eligibility as kube-proxy (>= 1.28) sees it from the Node object: a
   * node being deleted or tainted ToBeDeletedByClusterAutoscaler answers 503
   * with nodeEligible: false, whatever setHealthy says.
   */
  setEligible(eligible: boolean): void {
    this.eligible = eligible;
  }

  isEligible(): boolean {
    return this.eligible;
  }

  isHealthy(): boolean {
    return this.healthy;
  }

  /**
   * Serves a Local Service's healthCheckNodePort the way kube-proxy does:
   * 200 with the number of ready local endpoints, 503 when there are none.
   */
  async setLocalEndpoints(hcPort: number, count: number, service = { namespace: "", name: "" }): Promise<void> {
    let entry = this.hcPorts.get(hcPort);
    if (!entry) {
      const listener = new Listener(this.address, hcPort, (req, res) => this.answerHealthCheck(hcPort, req, res));
      entry = { listener, count, service };
      await listener.open();
      this.hcPorts.set(hcPort, entry);
    }
    entry.count = count;
    entry.service = service;
  }

  async removeHealthCheckPort(hcPort: number): Promise<void> {
    const entry = this.hcPorts.get(hcPort);
    if (!entry) return;
    this.hcPorts.delete(hcPort);
    await entry.listener.close();
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.hung.clear();
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    await Promise.all([
      this.healthz.close(),
      ...[...this.nodePorts.values()].map((l) => l.close()),
      ...[...this.blackholes.keys()].map((p) => this.closeBlackhole(p)),
      ...[...this.hcPorts.values()].map((e) => e.listener.close()),
    ]);
    this.nodePorts.clear();
    this.hcPorts.clear();
  }

  private answerHealthz(req: http.IncomingMessage, res: http.ServerResponse): void {
    const now = new Date().toISOString();
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/healthz" && path !== "/livez") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(this.healthy && this.eligible ? 200 : 503, { "content-type": "application/json" });
    res.end(JSON.stringify({ lastUpdated: now, currentTime: now, nodeEligible: this.eligible }));
  }

  private answerHealthCheck(hcPort: number, _req: http.IncomingMessage, res: http.ServerResponse): void {
    const entry = this.hcPorts.get(hcPort);
    const count = entry?.count ?? 0;
    const body = JSON.stringify({
      service: entry?.service ?? { namespace: "", name: "" },
      localEndpoints: count,
      serviceProxyHealthy: true,
    });
    res.writeHead(count > 0 ? 200 : 503, {
      "content-type": "application/json",
      "x-content-type-options": "nosniff",
      "x-load-balancing-endpoint-weight": String(count),
    });
    res.end(body);
  }

  private upgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.behavior.mode === "hang") return; // accept, never answer
    if (this.behavior.mode === "error") {
      socket.end(`HTTP/1.1 ${this.behavior.status ?? 503} Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.wss.emit("connection", ws, req);
    });
  }

  private answerApp(req: http.IncomingMessage, res: http.ServerResponse, port: number): void {
    res.setHeader("x-edgelb-node", this.name);
    let route = this.routes.get(port);
    // Accepted before the switch to refuse/drop: served as the node served it then.
    if (route && route.endpoints.length === 0 && this.before.has(port)) route = this.before.get(port);
    let pod: PodEndpoint | undefined;
    if (route) {
      if (route.endpoints.length === 0) {
        // Raced a route change: the listener is closing.
        req.socket.destroy();
        return;
      }
      const i = this.turn.get(port) ?? 0;
      this.turn.set(port, i + 1);
      pod = route.endpoints[i % route.endpoints.length]!;
      res.setHeader("x-edgelb-pod", pod.pod);
      const started = Date.now();
      const ep = pod;
      res.on("finish", () => {
        const ua = req.headers["user-agent"] ?? "-";
        this.onServed?.(ep, `${req.method} ${req.url} ${res.statusCode} host=${req.headers.host ?? "-"} via=${this.name} from=${req.socket.remoteAddress ?? "-"} ${Date.now() - started}ms ua=${JSON.stringify(ua)}`);
      });
    }
    const behavior = this.behavior;
    if (behavior.mode === "hang") {
      this.hung.add(res);
      res.on("close", () => this.hung.delete(res));
      return;
    }
    if (behavior.mode === "error") {
      req.resume();
      const status = behavior.status ?? 503;
      res.writeHead(status, { "content-type": "text/plain" }).end(`${this.name}: simulated ${status}\n`);
      return;
    }
    const run = () => this.serveApp(req, res, pod);
    if (behavior.mode === "slow") setTimeout(run, behavior.delayMs ?? 1000);
    else run();
  }

  private serveApp(req: http.IncomingMessage, res: http.ServerResponse, pod: PodEndpoint | undefined): void {
    const url = new URL(req.url ?? "/", "http://node");
    const path = url.pathname;
    const statusMatch = /^\/status\/(\d{3})$/.exec(path);
    if (path === "/delay") {
      const ms = Number(url.searchParams.get("ms") ?? "0");
      url.pathname = "/";
      setTimeout(() => this.echo(req, res, url, pod), ms);
      return;
    }
    if (statusMatch) {
      req.resume();
      const status = Number(statusMatch[1]);
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status === 204 || status === 304 ? undefined : `${this.name}: status ${status}\n`);
      return;
    }
    if (path === "/stream" && (req.method === "GET" || req.method === "HEAD")) {
      req.resume();
      this.stream(res, Number(url.searchParams.get("bytes") ?? "0"), req.method === "HEAD");
      return;
    }
    if (path === "/upload" && (req.method === "POST" || req.method === "PUT")) {
      const hash = createHash("sha256");
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ node: this.name, bodyBytes: bytes, sha256: hash.digest("hex") }));
      });
      return;
    }
    this.echo(req, res, url, pod);
  }

  private echo(req: http.IncomingMessage, res: http.ServerResponse, url: URL, pod?: PodEndpoint): void {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= ECHO_LIMIT) chunks.push(chunk);
    });
    req.on("end", () => {
      // A pod's echo says which pod, on which node, at which version; `via` is
      // the node whose NodePort took the connection.
      const who = pod ? { pod: pod.pod, namespace: pod.namespace, node: pod.node, via: this.name, version: pod.version } : { node: this.name };
      const body = JSON.stringify({
        ...who,
        /** The NodePort the request arrived on: which Service's port it was for. */
        port: req.socket.localPort,
        method: req.method,
        path: url.pathname,
        query: url.search.startsWith("?") ? url.search.slice(1) : url.search,
        headers: req.headers,
        bodyBytes: bytes,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(req.method === "HEAD" ? undefined : body);
    });
  }

  /** Streams `total` bytes honouring backpressure, so nothing large sits in memory. */
  private stream(res: http.ServerResponse, total: number, headOnly: boolean): void {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(total) });
    if (headOnly) {
      res.end();
      return;
    }
    const block = Buffer.alloc(CHUNK, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent);
        sent += n;
        if (!res.write(n === CHUNK ? block : block.subarray(0, n))) {
          res.once("drain", pump);
          return;
        }
      }
      res.end();
    };
    pump();
  }
}
