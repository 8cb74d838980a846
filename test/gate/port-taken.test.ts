// A tenant pod with hostNetwork, or with hostPort equal to the gate's port, could take the gate's
// traffic: signed requests, cookies and all. The gate never shares its port: it says who to look for
// and does not start (the pod restarts, stays not ready, and the agent keeps that node out).
import net from "node:net";
import { afterAll, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { gateFor, SECRET_1 } from "./harness.ts";

const A = "127.83.16.11";
const squatter = net.createServer();
afterAll(() => new Promise<void>((r) => squatter.close(() => r())));

it("its port already taken on the node: refuses to start, naming hostNetwork/hostPort pods and Pod Security baseline", async () => {
  await new Promise<void>((r) => squatter.listen(0, A, r));
  const port = (squatter.address() as net.AddressInfo).port;
  const started = gateFor(A, { listen: `${A}:${port}` }, KeyRing.of({ k1: SECRET_1 }));
  await expect(started).rejects.toThrow(`the gate's port ${A}:${port} is already taken on this node by another process or pod (a hostNetwork pod, or a pod with hostPort ${port})`);
  await expect(started).rejects.toThrow(/Pod Security baseline/);
});
