// One health probe, with a fresh connection each time (like a cloud LB, so a
// dead node cannot hide behind a pooled keep-alive socket).
import http from "node:http";
import net from "node:net";

export interface ProbeResult {
  ok: boolean;
  /** Why it failed: "HTTP 503", "ECONNREFUSED", "timeout after 1000 ms". */
  error?: string;
  /** kube-proxy's X-Load-Balancing-Endpoint-Weight on healthCheckNodePort. */
  weight?: number;
  /** Something answered (any HTTP status, or a TCP connect): the address was reached, the verdict is its. */
  reached?: boolean;
}

export type ProbeMode = "kube-proxy" | "tcp";

export function probeHttp(address: string, port: number, path: string, timeoutMs: number): Promise<ProbeResult> {
  return httpProbe(address, port, path, timeoutMs, (res, finish) => {
    const weight = Number(res.headers["x-load-balancing-endpoint-weight"]);
    res.resume();
    const status = res.statusCode ?? 0;
    finish(status === 200 ? { ok: true, reached: true, ...(Number.isFinite(weight) ? { weight } : {}) } : { ok: false, reached: true, error: `HTTP ${status}` });
  });
}

/** One GET on a fresh connection; `onResponse` settles it, errors and the deadline settle it otherwise. */
function httpProbe(
  address: string,
  port: number,
  path: string,
  timeoutMs: number,
  onResponse: (res: http.IncomingMessage, finish: (r: ProbeResult) => void) => void,
  describe: (error: string) => string = (e) => e,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = http.get({ host: address, port, path, agent: false, headers: { "user-agent": "edgelb-sync-agent" } }, (res) => onResponse(res, finish));
    req.on("error", (err: NodeJS.ErrnoException) => finish({ ok: false, error: describe(err.code ?? err.message) }));
    const timer = setTimeout(() => finish({ ok: false, error: describe(`timeout after ${timeoutMs} ms`) }), timeoutMs);
  });
}

export function probeTcp(address: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const finish = (r: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    socket.once("connect", () => finish({ ok: true, reached: true }));
    socket.once("error", (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.code ?? err.message }));
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
  });
}

/**
 * The node gate's readiness (gate mode): GET http://<node>:<gatePort>/healthz, which answers without a
 * signature, 200 when a key is loaded and 503 otherwise. The reason comes from its JSON body when it
 * has one ("no key loaded"), capped so a hostile answer cannot flood the log.
 */
export function probeGate(address: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const where = `gate ${address.includes(":") ? `[${address}]` : address}:${port}`;
  return httpProbe(
    address,
    port,
    "/healthz",
    timeoutMs,
    (res, finish) => {
      const status = res.statusCode ?? 0;
      if (status === 200) return finish({ ok: true, reached: true });
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
        if (body.length > 1024) res.destroy();
      });
      const fail = () => finish({ ok: false, reached: true, error: `${where}: HTTP ${status}${gateReason(body)}` });
      res.on("end", fail);
      res.on("close", fail);
      res.on("error", fail);
    },
    (error) => `${where}: ${error}`,
  );
}

/** " (no key loaded)" from the gate's {"status": ...}, or "" for anything else. */
function gateReason(body: string): string {
  try {
    const status = (JSON.parse(body) as { status?: unknown }).status;
    if (typeof status === "string" && /^[\x20-\x7e]{1,64}$/.test(status)) return ` (${status})`;
  } catch {
    // not the gate's JSON: the status code says enough
  }
  return "";
}
