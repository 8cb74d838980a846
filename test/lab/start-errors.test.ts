// A port the simulated cluster needs is taken: the one line `npm start`
// prints says whose port it is and suggests other node addresses first (on a
// shared machine the holder is usually another lab on the same addresses).
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterEach, expect, it } from "vitest";
import { startDemo } from "../../lab/demo/demo.ts";
import { startMultiClusterDemo } from "../../lab/demo/multi-cluster.ts";
import { PortInUseError } from "../../lab/demo/ports.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Holds `address`:any port, like another lab's simulated node would; returns the port. */
async function holdPort(address: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, address, r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

function stateDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "edgelb-start-errors-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const HINT = "Pick other node addresses: npm start -- --address-base 127.0.1, or another port: --healthz-port 10257";

it("the healthz port taken on a node address: suggests --address-base first (one cluster)", async () => {
  const healthzPort = await holdPort("127.86.1.11");
  const err = await startDemo({ port: 0, addressBase: "127.86.1", healthzPort, stateDir: stateDir(), agentLog: pino({ level: "silent" }) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PortInUseError);
  expect((err as Error).message).toBe(
    `127.86.1.11:${healthzPort} is already in use (kube-proxy's healthz port on a simulated node: another npm start on these addresses, or a real kube-proxy). ${HINT}`,
  );
});

it("the same with --clusters 2: one clear line, not a stack", async () => {
  const healthzPort = await holdPort("127.86.2.21"); // the second cluster's first node
  const err = await startMultiClusterDemo({ clusters: 2, port: 0, addressBase: "127.86.2", healthzPort, stateDir: stateDir(), agentLog: pino({ level: "silent" }) }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PortInUseError);
  expect((err as Error).message).toContain(`127.86.2.21:${healthzPort} is already in use (kube-proxy's healthz port on a simulated node`);
  expect((err as Error).message).toContain(HINT);
});
