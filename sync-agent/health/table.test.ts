import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SimNode } from "../../lab/cluster/sim-node.ts";
import { applyProbe, INITIAL_STATE } from "./state.ts";
import { HealthTable, nextProbeDelay, type HealthTransition } from "./table.ts";

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

describe("reasons while out of rotation", () => {
  it("a node that keeps failing for a new reason is reported once per new reason, not once per probe", async () => {
    const results = ["ECONNREFUSED", "ECONNREFUSED", "HTTP 503 (no key loaded)", "HTTP 503 (no key loaded)", "HTTP 503 (no key loaded)", undefined];
    const transitions: HealthTransition[] = [];
    let probes = 0;
    const table = new HealthTable({ mode: "kube-proxy", intervalMs: 1, timeoutMs: 1, rise: 1, fall: 1, healthzPort: 1, jitter: 0 }, (t) => transitions.push(t), async () => {
      const error = results[Math.min(probes++, results.length - 1)];
      return error ? { ok: false, error } : { ok: true };
    });
    try {
      table.setTargets([{ kind: "node", node: "a", address: "192.0.2.1" }]);
      await until(() => table.node("a") === true);
    } finally {
      table.stop();
    }
    expect(transitions.map((t) => [t.previous, t.healthy, t.error])).toEqual([
      [undefined, false, "ECONNREFUSED"],
      [false, false, "HTTP 503 (no key loaded)"],
      [false, true, undefined],
    ]);
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

describe("probe load", () => {
  it("1,000 nodes: never more than --max-concurrent-probes in flight, and every node gets its answer", async () => {
    const cap = 50;
    // One kube-proxy stand-in for every node: it holds each request until `cap`
    // are open (or 50 ms passed), so the cap, not luck, bounds what it sees.
    let open = 0;
    let maxOpen = 0;
    let held: http.ServerResponse[] = [];
    const flush = () => {
      for (const r of held.splice(0)) r.end("ok");
    };
    let timer: NodeJS.Timeout | undefined;
    const server = http.createServer((_req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.on("close", () => open--);
      held.push(res);
      if (held.length >= cap) flush();
      else {
        clearTimeout(timer);
        timer = setTimeout(flush, 50);
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.16.6.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const table = new HealthTable(
      { mode: "kube-proxy", intervalMs: 60_000, timeoutMs: 10_000, rise: 1, fall: 1, healthzPort: port, maxConcurrentProbes: cap },
      () => {},
    );
    try {
      const nodes = Array.from({ length: 1000 }, (_, i) => ({ kind: "node" as const, node: `node-${i}`, address: "127.16.6.1" }));
      table.setTargets(nodes);
      expect(table.probesInFlight).toBeLessThanOrEqual(cap);
      await until(() => nodes.every((n) => table.node(n.node) === true), 30_000);
      expect(maxOpen).toBeLessThanOrEqual(cap);
      expect(maxOpen).toBe(cap); // the cap was reached: probes do run in parallel
      expect(table.probesInFlight).toBe(0);
    } finally {
      table.stop();
      clearTimeout(timer);
      held = [];
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("intervals get ±10% jitter so nodes are not probed in lockstep", () => {
    expect(nextProbeDelay(5_000, 0.1, 0)).toBe(4_500);
    expect(nextProbeDelay(5_000, 0.1, 0.5)).toBe(5_000);
    expect(nextProbeDelay(5_000, 0.1, 0.999)).toBe(5_499);
  });

  it("the table schedules each next probe with its own jitter", async () => {
    vi.useFakeTimers();
    try {
      const rolls = [0, 0.999];
      const probed: string[] = [];
      const table = new HealthTable(
        { mode: "tcp", intervalMs: 1_000, timeoutMs: 100, rise: 1, fall: 1, healthzPort: 1 },
        () => {},
        async (t) => {
          probed.push(t.node);
          return { ok: true };
        },
        () => rolls.shift() ?? 0.5,
      );
      table.setTargets([
        { kind: "node", node: "a", address: "127.16.6.2" },
        { kind: "node", node: "b", address: "127.16.6.3" },
      ]);
      await vi.advanceTimersByTimeAsync(0);
      expect(probed).toEqual(["a", "b"]);
      await vi.advanceTimersByTimeAsync(900); // a: 1,000 - 10%
      expect(probed).toEqual(["a", "b", "a"]);
      await vi.advanceTimersByTimeAsync(199); // b: 1,000 + ~10% = 1,100
      expect(probed).toEqual(["a", "b", "a"]);
      await vi.advanceTimersByTimeAsync(1);
      expect(probed).toEqual(["a", "b", "a", "b"]);
      table.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("probe address fallback (InternalIP first, the published address when nothing answers there)", () => {
  const servers: http.Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  async function healthz(host: string, port: number, status: number): Promise<void> {
    const s = http.createServer((_req, res) => res.writeHead(status).end());
    servers.push(s);
    await new Promise<void>((r) => s.listen(port, host, r));
  }
  async function verdict(target: { address: string; fallbackAddress?: string }, port: number) {
    const transitions: HealthTransition[] = [];
    const table = new HealthTable({ mode: "kube-proxy", intervalMs: 50, timeoutMs: 40, rise: 1, fall: 1, healthzPort: port, jitter: 0 }, (t) => transitions.push(t));
    try {
      table.setTargets([{ kind: "node", node: "n", ...target }]);
      await until(() => transitions.length > 0);
    } finally {
      table.stop();
    }
    return transitions[0]!;
  }

  // ops' own loopback range (127.106.0.0/16): 127.106.4.1 is the unreachable "InternalIP", 127.106.4.2 the published address.
  it("a node whose InternalIP refuses is probed at its published address", async () => {
    const port = await freePort("127.106.4.2");
    await healthz("127.106.4.2", port, 200);
    expect(await verdict({ address: "127.106.4.1", fallbackAddress: "127.106.4.2" }, port)).toMatchObject({ healthy: true });
    // Without the fallback the same node fails.
    expect(await verdict({ address: "127.106.4.1" }, port)).toMatchObject({ healthy: false, error: "ECONNREFUSED" });
  });

  it("an answer at the InternalIP (503) is kube-proxy's verdict and stands, whatever the published address says", async () => {
    const port = await freePort("127.106.4.2");
    await healthz("127.106.4.1", port, 503);
    await healthz("127.106.4.2", port, 200);
    expect(await verdict({ address: "127.106.4.1", fallbackAddress: "127.106.4.2" }, port)).toMatchObject({ healthy: false, error: "HTTP 503" });
  });

  it("reached at neither address: the error names both", async () => {
    const port = await freePort("127.106.4.2");
    expect(await verdict({ address: "127.106.4.1", fallbackAddress: "127.106.4.2" }, port)).toMatchObject({
      healthy: false,
      error: "ECONNREFUSED at 127.106.4.1; ECONNREFUSED at 127.106.4.2",
    });
  });
});

describe("probe address fallback on the fake clock: no slower than probing the published address alone", () => {
  const timeoutMs = 300;
  const intervalMs = 1_000;
  const opts = { mode: "kube-proxy" as const, intervalMs, timeoutMs, rise: 2, fall: 2, healthzPort: 1, jitter: 0 };
  /** Simulated addresses on the fake clock: one that does not answer times out, one that answers says 200 at once. */
  function world() {
    const answering = new Set<string>();
    const starts: { address: string; at: number }[] = [];
    const prober = async (_t: unknown, address: string) => {
      starts.push({ address, at: Date.now() });
      if (answering.has(address)) return { ok: true, reached: true };
      await new Promise((r) => setTimeout(r, timeoutMs));
      return { ok: false, error: `timeout after ${timeoutMs} ms` };
    };
    return { answering, starts, prober };
  }

  it("a dead node is out fall probes after it died, as with --probe-address-preference published", async () => {
    vi.useFakeTimers();
    try {
      const detection: Record<string, number> = {};
      for (const [name, target] of [
        ["published", { kind: "node" as const, node: "n", address: "203.0.113.1" }],
        // The InternalIP is site-local (never answers here): the published address does.
        ["fallback", { kind: "node" as const, node: "n", address: "10.0.0.1", fallbackAddress: "203.0.113.1" }],
      ] as const) {
        const w = world();
        w.answering.add("203.0.113.1");
        const transitions: { healthy: boolean; at: number; error?: string | undefined }[] = [];
        const table = new HealthTable(opts, (t) => transitions.push({ healthy: t.healthy, at: Date.now(), error: t.error }), w.prober);
        table.setTargets([target]);
        await vi.advanceTimersByTimeAsync(5_000);
        expect(table.node("n"), name).toBe(true);
        w.answering.clear(); // the node dies
        const died = w.starts.length;
        await vi.advanceTimersByTimeAsync(10_000);
        table.stop();
        const out = transitions.find((t) => !t.healthy)!;
        // From the first probe that found it dead to its verdict.
        detection[name] = out.at - w.starts[died]!.at;
        if (name === "fallback") expect(out.error).toBe(`timeout after ${timeoutMs} ms at 10.0.0.1; timeout after ${timeoutMs} ms at 203.0.113.1`);
        // Healthy, it was probed at one address per interval: the published one, where it answered.
        expect(new Set(w.starts.slice(1, died).map((s) => s.address)), name).toEqual(new Set(["203.0.113.1"]));
      }
      // fall (2) timeouts and one interval between them.
      expect(detection).toEqual({ published: 2 * timeoutMs + intervalMs, fallback: 2 * timeoutMs + intervalMs });
    } finally {
      vi.useRealTimers();
    }
  });

  it("a live node whose remembered address goes dark stays in rotation: one failure counted, the other address answers next", async () => {
    vi.useFakeTimers();
    try {
      const w = world();
      w.answering.add("10.0.0.1").add("203.0.113.1");
      const transitions: HealthTransition[] = [];
      const table = new HealthTable(opts, (t) => transitions.push(t), w.prober);
      table.setTargets([{ kind: "node", node: "n", address: "10.0.0.1", fallbackAddress: "203.0.113.1" }]);
      await vi.advanceTimersByTimeAsync(3_000);
      w.answering.delete("10.0.0.1"); // e.g. the InternalIP's route from the agent is gone
      const from = w.starts.length;
      await vi.advanceTimersByTimeAsync(10_000);
      table.stop();
      expect(transitions.map((t) => t.healthy)).toEqual([true]);
      // One probe at the dark address, then the published address from there on.
      expect(w.starts.slice(from).map((s) => s.address)).toEqual(["10.0.0.1", ...Array(w.starts.length - from - 1).fill("203.0.113.1")]);
    } finally {
      vi.useRealTimers();
    }
  });
});
