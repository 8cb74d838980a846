// The gate's NodePort connect timeout looks once more after the event loop's poll phase (98d0b72): a
// gate process that was not scheduled for longer than the timeout runs its timers before the I/O that
// completed meanwhile, and must not drop a connection the kernel established in time. The starvation
// is made real and deterministic: right after the gate sends its SYN, its event loop is blocked for
// longer than the connect timeout (a synchronous wait queued behind the connect on the same tick).
// Addresses: 127.113.2.x (gt15's range this session).
import diagnostics from "node:diagnostics_channel";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, metricsText, metricValue, nodeName, SECRET_1, signature, type TestGate } from "./harness.ts";

const A = "127.113.2.11";
let gate: TestGate | undefined;
let app: http.Server | undefined;
afterAll(async () => {
  await gate?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
});

/** Keeps the thread busy: what a process that is not scheduled looks like to its own event loop. */
function starve(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

it("a connection to the NodePort established while the gate was starved past its connect timeout is used, not dropped as timed out", async () => {
  gate = await gateFor(A, { connectTimeoutMs: 30 }, KeyRing.of({ k1: SECRET_1 }));
  app = http.createServer((_req, res) => res.end("served"));
  await new Promise<void>((r) => app!.listen(0, A, r));
  const port = (app.address() as AddressInfo).port;
  const head = `GET / HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await signature({ node: nodeName(A), nodePort: port })}\r\nConnection: close\r\n\r\n`;
  const client = net.connect(gate.port, A);
  await new Promise((r) => client.once("connect", r));
  // From here the only new outgoing connection in this process is the gate's to the NodePort. Its
  // connect() runs on a later tick of the same turn (net.connect to an IP literal); the starvation is
  // queued behind it, after the gate armed its connect timer.
  let starved = 0;
  const onSocket = () => {
    diagnostics.unsubscribe("net.client.socket", onSocket);
    process.nextTick(() =>
      process.nextTick(() => {
        starve(150);
        starved++;
      }),
    );
  };
  diagnostics.subscribe("net.client.socket", onSocket);
  let text = "";
  client.setEncoding("latin1");
  client.on("data", (d: string) => (text += d));
  const closed = new Promise((r) => client.once("close", r));
  client.write(head);
  await closed;
  expect(starved).toBe(1);
  expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nserved$/);
  expect(metricValue(await metricsText(gate), `edgelb_gate_upstream_errors_total{kind="connect_timeout"}`)).toBe(0);
});
