import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SimNode } from "../../test/cluster/sim-node.ts";
import { applyProbe, INITIAL_STATE } from "./state.ts";
import { HealthTable, type HealthTransition } from "./table.ts";

describe("rise/fall", () => {
  it("decides on the first result, then needs rise successes or fall failures", () => {
    const t = { rise: 2, fall: 3 };
    let s = applyProbe(INITIAL_STATE, false, t).state;
    expect(s.healthy).toBe(false);
    s = applyProbe(s, true, t).state;
    expect(s.healthy).toBe(false);
    const r = applyProbe(s, true, t);
    expect(r).toMatchObject({ changed: true, state: { healthy: true } });
    s = applyProbe(applyProbe(r.state, false, t).state, false, t).state;
    expect(s.healthy).toBe(true);
    expect(applyProbe(s, false, t, "HTTP 503").state).toMatchObject({ healthy: false, lastError: "HTTP 503" });
  });
});

async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("health table against simulated nodes", () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("probes kube-proxy /healthz and the healthCheckNodePort, reporting transitions", async () => {
    const a = await SimNode.start({ name: "a", address: "127.0.71.11", healthzPort: 0 });
    cleanup.push(() => a.stop());
    const b = await SimNode.start({ name: "b", address: "127.0.71.12", healthzPort: a.healthzPort });
    cleanup.push(() => b.stop());
    const transitions: HealthTransition[] = [];
    const table = new HealthTable(
      { mode: "kube-proxy", intervalMs: 50, timeoutMs: 200, rise: 2, fall: 2, healthzPort: a.healthzPort },
      (t) => transitions.push(t),
    );
    cleanup.push(() => table.stop());
    table.setTargets([
      { kind: "node", node: "a", address: a.address },
      { kind: "node", node: "b", address: b.address },
    ]);
    await until(() => table.node("a") === true && table.node("b") === true);
    b.setHealthy(false);
    await until(() => table.node("b") === false);
    expect(transitions.at(-1)).toMatchObject({ key: "node/b", healthy: false, previous: true, error: "HTTP 503" });
    b.setHealthy(true);
    await until(() => table.node("b") === true);

    // Local: the Service's healthCheckNodePort answers 503 without local endpoints.
    const hc = await freePort("127.0.71.12");
    await b.setLocalEndpoints(hc, 2);
    table.setTargets([
      { kind: "node", node: "a", address: a.address },
      { kind: "local", node: "b", address: b.address, port: hc },
    ]);
    await until(() => table.local("b", hc) === true);
    expect(table.node("b")).toBeUndefined(); // no longer a target
    await b.setLocalEndpoints(hc, 0);
    await until(() => table.local("b", hc) === false);
  });

  it("counts a stopped node as down in tcp mode", async () => {
    const a = await SimNode.start({ name: "a", address: "127.0.71.21", healthzPort: 0 });
    const port = a.healthzPort;
    const table = new HealthTable({ mode: "tcp", intervalMs: 50, timeoutMs: 200, rise: 1, fall: 1, healthzPort: port }, () => {});
    cleanup.push(() => table.stop());
    table.setTargets([{ kind: "node", node: "a", address: a.address }]);
    await until(() => table.node("a") === true);
    await a.stop();
    await until(() => table.node("a") === false);
    expect(table.states()[0]?.state.lastError).toBe("ECONNREFUSED");
  });
});
