// A node gate in front of simulated nodes, for the gate's integration tests.
// Addresses come from this engineer's range 127.23.0.0/16 (127.23.1.x here).
import http from "node:http";
import net from "node:net";
import { PassThrough } from "node:stream";
import { importSigningKey, newNonce, signRequest, SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { createLogger } from "../../sync-agent/log/index.ts";
import { GATE_DEFAULTS, startGate, type EdgeMode, type Gate, type GateConfig } from "../../sync-agent/gate/main.ts";
import type { KeyRing } from "../../sync-agent/gate/keys/index.ts";

export const SECRET_1 = "first-gate-secret-0123456789abcdefghijk";
export const SECRET_2 = "second-gate-secret-0123456789abcdefghij";

export interface TestGate extends Gate {
  lines: Record<string, unknown>[];
}

/** The Node name the harness gives the gate on this address (e.g. 127.23.1.11 → node-127-23-1-11). */
export function nodeName(ip: string): string {
  return `node-${ip.replace(/[.:]/g, "-")}`;
}

/** The cluster every test gate belongs to unless told otherwise. */
export const GATE_TEST_CLUSTER = "gate-test";

export async function gateFor(nodeIp: string, over: Partial<GateConfig> = {}, keys?: KeyRing): Promise<TestGate> {
  const out = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  out.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) !== -1) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  const config: GateConfig = {
    ...GATE_DEFAULTS,
    listen: `${nodeIp}:0`,
    connect: "node",
    nodeIp,
    nodeName: nodeName(nodeIp),
    clusterName: GATE_TEST_CLUSTER,
    nodePorts: { min: 1, max: 65535 },
    metricsAddress: `${nodeIp}:0`,
    logFormat: "json",
    logLevel: "debug",
    // Every gate test runs on both edge paths: the default (wrap where this Node has it), and with
    // EDGELB_TEST_GATE_EDGE=net the net.Socket fallback (npm run test:gate-net).
    edge: (process.env.EDGELB_TEST_GATE_EDGE as EdgeMode | undefined) ?? "auto",
    ...over,
  };
  const log = createLogger({ format: "json", level: "debug", destination: out, component: "edgelb-node-gate" });
  const gate = await startGate(config, { log, ...(keys ? { keys } : {}) });
  return Object.assign(gate, { lines });
}

export interface Signed {
  keyId?: string;
  secret?: string;
  method?: string;
  host?: string;
  target?: string;
  /** The destination cluster signed (default: the test gates' own, GATE_TEST_CLUSTER). */
  cluster?: string;
  /** The destination Node name signed (the gate's own: nodeName(its address)). */
  node: string;
  nodePort: number;
  timestamp?: number;
  nonce?: string;
}

export async function signature(s: Signed): Promise<string> {
  const key = await importSigningKey(s.secret ?? SECRET_1);
  return (await signRequest(key, {
    keyId: s.keyId ?? "k1",
    timestamp: s.timestamp ?? Math.floor(Date.now() / 1000),
    nonce: s.nonce ?? newNonce(),
    method: s.method ?? "GET",
    host: s.host ?? "app.example.com",
    target: s.target ?? "/",
    cluster: s.cluster ?? GATE_TEST_CLUSTER,
    node: s.node,
    nodePort: s.nodePort,
  }))!;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the gate on a fresh connection; headers as a raw list (duplicates allowed). */
export function send(gate: Gate, opts: { method?: string; path?: string; headers: string[]; body?: string }): Promise<Answer> {
  const url = new URL(gate.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method: opts.method ?? "GET", path: opts.path ?? "/", headers: opts.headers, setHost: false, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** A signed request as the edge sends it. */
export async function signedRequest(gate: Gate, s: Signed & { body?: string; extraHeaders?: string[] }): Promise<Answer> {
  const sig = await signature(s);
  return send(gate, {
    method: s.method ?? "GET",
    path: s.target ?? "/",
    headers: ["Host", s.host ?? "app.example.com", SIGNATURE_HEADER, sig, ...(s.extraHeaders ?? [])],
    ...(s.body !== undefined ? { body: s.body } : {}),
  });
}

/** Writes raw bytes and collects what comes back until the gate closes the connection. */
export function raw(gate: Gate, bytes: string, opts: { keepWriting?: (socket: net.Socket) => void } = {}): Promise<{ text: string; closedAfterMs: number }> {
  const url = new URL(gate.url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(bytes);
      opts.keepWriting?.(socket);
    });
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" || err.code === "EPIPE" ? undefined : reject(err)));
    socket.on("close", () => resolve({ text, closedAfterMs: Date.now() - started }));
  });
}

/** Waits for a condition, polling (no fixed sleeps). */
export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function metricsText(gate: Gate): Promise<string> {
  const res = await fetch(`${gate.metricsServer!.url}/metrics`);
  return res.text();
}

export function metricValue(text: string, line: string): number {
  const m = text.split("\n").find((l) => l.startsWith(`${line} `));
  return m ? Number(m.slice(line.length + 1)) : Number.NaN;
}
