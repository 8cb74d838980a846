// The reconcile loop with in-memory caches and a scripted sink: what gets
// written, when, and what happens when writing fails.
import type { V1EndpointSlice, V1Node, V1Service } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import type { HealthTarget } from "../model/desired.ts";
import { SinkError, type ReadResult, type Sink, type WriteResult } from "../sinks/types.ts";
import { Controller, type HealthProvider } from "./index.ts";

class MemorySink implements Sink {
  readonly description = "memory";
  stored: Snapshot | null = null;
  writes: Snapshot[] = [];
  failures: SinkError[] = [];
  async read(): Promise<ReadResult> {
    return { snapshot: this.stored, generation: this.stored?.generation ?? 0 };
  }
  async write(s: Snapshot): Promise<WriteResult> {
    const f = this.failures.shift();
    if (f) throw f;
    if (this.stored && s.generation <= this.stored.generation) {
      throw new SinkError("older generation", "conflict", { status: 409, storedGeneration: this.stored.generation });
    }
    this.stored = s;
    this.writes.push(s);
    return { bytes: JSON.stringify(s).length, unchanged: false };
  }
  async remove(): Promise<void> {
    this.stored = null;
  }
}

const allHealthy: HealthProvider = { node: () => true, local: () => true, setTargets: (_t: readonly HealthTarget[]) => {} };

function node(name: string, ip: string): V1Node {
  return { metadata: { name }, status: { addresses: [{ type: "InternalIP", address: ip }] } };
}
function service(name: string, nodePort: number): V1Service {
  return {
    metadata: { name, namespace: "default", annotations: { "edgelb.dev/hostnames": `${name}.example.com` } },
    spec: { type: "LoadBalancer", ports: [{ port: 80, nodePort }] },
  };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const controllers: Controller[] = [];
afterEach(() => controllers.splice(0).forEach((c) => c.stop()));

function setup(sink: MemorySink, opts: { quietMs?: number; minIntervalMs?: number } = {}) {
  const state = { nodes: [node("n1", "10.0.0.1")], services: [service("web", 30080)], endpointSlices: [] as V1EndpointSlice[] };
  let synced = false;
  const c = new Controller(
    {
      cluster: "home",
      loadBalancerClass: "edgelb.dev/worker",
      onlyClass: false,
      addressPreference: ["InternalIP"],
      pacer: { quietMs: opts.quietMs ?? 20, maxDelayMs: 200, minIntervalMs: opts.minIntervalMs ?? 50 },
      backoff: { initialMs: 20, maxMs: 100, random: () => 1 },
      pendingHoldMs: 100,
      dryRun: false,
    },
    { state: () => state, synced: () => synced, health: allHealthy, sink, log: pino({ level: "silent" }) },
  );
  controllers.push(c);
  return { c, state, sync: () => ((synced = true), c.markDirty()) };
}

describe("controller", () => {
  it("publishes nothing before the caches have synced, then one snapshot", async () => {
    const sink = new MemorySink();
    const { c, sync } = setup(sink);
    c.start();
    c.markDirty();
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.writes).toHaveLength(0);
    sync();
    await until(() => sink.writes.length === 1);
    expect(sink.writes[0]).toMatchObject({ generation: 1, services: [{ name: "web", nodePort: 30080 }] });
  });

  it("continues the stored generation and does not rewrite identical content", async () => {
    const sink = new MemorySink();
    const first = setup(sink);
    first.c.start();
    first.sync();
    await until(() => sink.writes.length === 1);
    first.c.stop();

    const second = setup(sink);
    second.c.start();
    second.sync();
    await until(() => second.c.lastGeneration === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.writes).toHaveLength(1);
    second.state.services.push(service("api", 30081));
    second.c.markDirty();
    await until(() => sink.writes.length === 2);
    expect(sink.writes[1]?.generation).toBe(2);
  });

  it("tells hooks whether the edge holds what is desired: lastPushedKey matches onEvaluated's key after a push and after a restart reads it back", async () => {
    const sink = new MemorySink();
    const first = setup(sink);
    const firstKeys: string[] = [];
    first.c.addHooks({ onEvaluated: (e) => firstKeys.push(e.key) });
    first.c.start();
    first.sync();
    await until(() => sink.writes.length === 1);
    expect(first.c.lastPushedKey).toBe(firstKeys.at(-1));
    first.c.stop();

    // A restarted agent reads the stored snapshot: the same content has the same key, so it knows the edge is up to date.
    const second = setup(sink);
    const upToDate: boolean[] = [];
    second.c.addHooks({ onEvaluated: (e) => upToDate.push(second.c.lastPushedKey === e.key) });
    second.c.start();
    second.sync();
    await until(() => upToDate.at(-1) === true);
    second.state.services.push(service("api", 30081));
    second.c.markDirty();
    await until(() => upToDate.at(-1) === false); // evaluated before it is pushed
    await until(() => sink.writes.length === 2);
    second.c.markDirty();
    await until(() => upToDate.at(-1) === true);
  });

  it("coalesces a burst of changes into one write", async () => {
    const sink = new MemorySink();
    const { c, state, sync } = setup(sink, { quietMs: 60 });
    c.start();
    sync();
    await until(() => sink.writes.length === 1);
    for (let i = 0; i < 5; i++) {
      state.nodes.push(node(`m${i}`, `10.0.1.${i + 1}`));
      c.markDirty();
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => sink.writes.length === 2);
    await new Promise((r) => setTimeout(r, 150));
    expect(sink.writes).toHaveLength(2);
    expect(sink.writes[1]?.nodes).toHaveLength(6);
  });

  it("retries a failing sink with the newest state and loses nothing", async () => {
    const sink = new MemorySink();
    const { c, state, sync } = setup(sink);
    const failures: number[] = [];
    c.addHooks({ onPushFailed: (_e, info) => failures.push(info.generation) });
    sink.failures.push(new SinkError("503", "retryable", { status: 503 }), new SinkError("503", "retryable", { status: 503 }));
    c.start();
    sync();
    await until(() => failures.length === 1);
    state.services.push(service("late", 30090)); // changes while the sink is down
    c.markDirty();
    await until(() => sink.writes.length === 1);
    expect(failures).toEqual([1, 1]);
    expect(sink.writes[0]?.generation).toBe(1);
    expect(sink.writes[0]?.services.map((s) => s.name)).toEqual(["late", "web"]);
  });

  it("re-reads and bumps after a generation conflict", async () => {
    const sink = new MemorySink();
    const { c, state, sync } = setup(sink);
    c.start();
    sync();
    await until(() => sink.writes.length === 1);
    // Another writer stored generation 9 behind our back.
    sink.stored = { ...sink.stored!, generation: 9 };
    state.services.push(service("api", 30081));
    c.markDirty();
    await until(() => sink.writes.length === 2);
    expect(sink.writes[1]?.generation).toBe(10);
  });

  it("does not write while shouldWrite is false, and catches up on resume", async () => {
    const sink = new MemorySink();
    const { c, sync } = setup(sink);
    let leader = false;
    c.shouldWrite = () => leader;
    c.start();
    sync();
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.writes).toHaveLength(0);
    leader = true;
    await c.resume();
    await until(() => sink.writes.length === 1);
  });

  it("keeps a fatal error from flooding the log, and recovers once fixed", async () => {
    const sink = new MemorySink();
    const lines: string[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
    const state = { nodes: [node("n1", "10.0.0.1")], services: [service("web", 30080)], endpointSlices: [] };
    const c = new Controller(
      {
        cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: ["InternalIP"],
        pacer: { quietMs: 1, maxDelayMs: 10, minIntervalMs: 1 }, backoff: { initialMs: 5, maxMs: 10 }, pendingHoldMs: 0, dryRun: false,
      },
      { state: () => state, synced: () => true, health: allHealthy, sink, log },
    );
    controllers.push(c);
    for (let i = 0; i < 5; i++) sink.failures.push(new SinkError("PUT answered 401: bad token", "fatal", { status: 401 }));
    c.start();
    await until(() => sink.writes.length === 1);
    const errors = lines.filter((l) => l.includes("bad token"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/will not heal by itself/);
  });

  it("counts evaluations and tells hooks when it may write again (resume), so skipped drift repair can run", async () => {
    const sink = new MemorySink();
    const { c, sync } = setup(sink);
    const resumed: number[] = [];
    c.addHooks({ onResumed: () => void resumed.push(c.evaluations) });
    c.start();
    sync();
    await until(() => sink.writes.length === 1);
    const evaluations = c.evaluations;
    expect(evaluations).toBeGreaterThan(0);
    await c.resume();
    expect(resumed).toEqual([evaluations]);
    await until(() => c.evaluations > evaluations); // resume re-reads and reconciles
  });
});
