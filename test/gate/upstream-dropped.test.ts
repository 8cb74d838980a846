// A NodePort that takes a request and then drops the connection (a hung node coming back, an app
// that crashed mid-request): behind the gate the edge must see what it sees without one, a cut
// connection, never a 502 the gate made up. The worker would take that 502 for the app's own answer:
// a 5xx streak instead of a failed connection, and "bad gateway" relayed to users once its retry
// budget is spent (the chaos suite's "node-3 hangs" in gate mode, at load 17).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, metricsText, metricValue, nodeName, SECRET_1, signedRequest, until, type TestGate } from "./harness.ts";

const A = "127.83.15.11";
let gate: TestGate;
let app: http.Server;
const held: http.ServerResponse[] = [];

beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  // Hangs on every request, until the test drops what it holds.
  app = http.createServer((req, res) => {
    req.resume();
    held.push(res);
  });
  await new Promise<void>((r) => app.listen(0, A, r));
});
afterAll(async () => {
  await gate?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
});

it("a NodePort that drops a request it took: the edge's connection is cut (no made-up 502), counted as a reset", async () => {
  const nodePort = (app.address() as AddressInfo).port;
  const answers = [
    signedRequest(gate, { node: nodeName(A), nodePort, target: "/held" }).then((a) => ({ answered: a }), (err: NodeJS.ErrnoException) => ({ cut: err.code ?? err.message })),
    signedRequest(gate, { node: nodeName(A), nodePort, method: "POST", target: "/held", body: "x" }).then(
      (a) => ({ answered: a }),
      (err: NodeJS.ErrnoException) => ({ cut: err.code ?? err.message }),
    ),
  ];
  await until("both requests held by the app", () => held.length === 2);
  for (const res of held.splice(0)) res.destroy();
  const outcomes = await Promise.all(answers);
  // What the edge gets talking to a node directly when the node drops a request: no answer at all.
  expect(outcomes).toEqual([{ cut: "ECONNRESET" }, { cut: "ECONNRESET" }]);
  expect(metricValue(await metricsText(gate), `edgelb_gate_upstream_errors_total{kind="reset"}`)).toBe(2);
  // Nothing was forwarded back, so no latency was observed for these.
  expect(metricValue(await metricsText(gate), "edgelb_gate_request_duration_seconds_count")).toBe(0);
});
