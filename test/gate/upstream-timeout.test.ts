// rv-proxy 6 (last session): a NodePort that drops connections behind a live gate (a host firewall, a
// NetworkPolicy, half-applied kube-proxy rules). The gate gives up after its connect timeout, which by
// default is no longer than the worker's own, and says it timed out (cause header, metric, log), as
// distinct from a refused connection. The dropping NodePort is real: a listener whose process is stopped
// and whose accept queue is full, so the kernel drops further SYNs. Addresses: 127.101.2.x (gt15's range).
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { afterAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { GATE_DEFAULTS } from "../../sync-agent/gate/main.ts";
import { gateFor, metricsText, metricValue, nodeName, SECRET_1, signedRequest, until, type TestGate } from "./harness.ts";

const A = "127.101.2.11";
let gate: TestGate | undefined;
let stopped: ChildProcess | undefined;
const fillers: net.Socket[] = [];
afterAll(async () => {
  for (const s of fillers) s.destroy();
  stopped?.kill("SIGKILL");
  await gate?.close();
});

it("a NodePort that drops connections: 502 upstream-unreachable with cause connect-timeout after the gate's connect timeout (default 1.5 s), counted apart from refusals", async () => {
  expect(GATE_DEFAULTS.connectTimeoutMs).toBeLessThanOrEqual(1_500);
  gate = await gateFor(A, { connectTimeoutMs: 300 }, KeyRing.of({ k1: SECRET_1 }));
  // A listener with an accept queue of one that never accepts: its process stops itself once listening.
  stopped = spawn(process.execPath, ["-e", `require("net").createServer().listen({ host: "${A}", port: 0, backlog: 1 }, function () { console.log(this.address().port); process.kill(process.pid, "SIGSTOP"); })`], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) => stopped!.stdout!.once("data", (d: Buffer) => resolve(Number(String(d).trim()))));
  // Fill the accept queue: past it, the kernel drops SYNs (the connection neither refused nor accepted).
  let established = 0;
  for (let i = 0; i < 4; i++) {
    const s = net.connect(port, A, () => established++);
    s.on("error", () => undefined);
    fillers.push(s);
  }
  await until("the accept queue to be full", () => established >= 2);
  const started = Date.now();
  const res = await signedRequest(gate, { method: "POST", target: "/orders", node: nodeName(A), nodePort: port, body: "x" });
  expect(res.status).toBe(502);
  expect(res.headers["x-edgelb-gate"]).toBe("upstream-unreachable");
  expect(res.headers["x-edgelb-gate-cause"]).toBe("connect-timeout");
  expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  const text = await metricsText(gate);
  expect(metricValue(text, `edgelb_gate_upstream_errors_total{kind="connect_timeout"}`)).toBe(1);
  expect(metricValue(text, `edgelb_gate_upstream_errors_total{kind="connect"}`)).toBe(0);
  expect(gate.lines.find((l) => l.event === "gate.upstream_failed")).toMatchObject({ kind: "connect_timeout", error: "no connection within 300 ms" });
});

it("a NodePort that refuses: cause refused, counted as connect", async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, A, r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const res = await signedRequest(gate!, { node: nodeName(A), nodePort: port });
  expect(res.status).toBe(502);
  expect(res.headers["x-edgelb-gate-cause"]).toBe("refused");
  expect(metricValue(await metricsText(gate!), `edgelb_gate_upstream_errors_total{kind="connect"}`)).toBe(1);
});
