// Reviewer finding (rv-attack 5): behind the gate, a NodePort that refuses must come back marked as the gate's
// own connect failure, so the edge knows nothing reached the app (any method may move on).
import net from "node:net";
import { afterAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, nodeName, SECRET_1, signedRequest, type TestGate } from "./harness.ts";

const A = "127.72.15.11";
let gate: TestGate | undefined;
afterAll(async () => gate?.close());

it("NodePort refused behind the gate: the edge is told that nothing reached the app", async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, A, r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r())); // nothing listens there now
  const res = await signedRequest(gate, { method: "POST", target: "/orders", node: nodeName(A), nodePort: port, body: "x" });
  expect(res.status).toBe(502);
  expect(res.headers["x-edgelb-gate"]).toBe("upstream-unreachable");
});
