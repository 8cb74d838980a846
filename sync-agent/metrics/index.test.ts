import { afterEach, describe, expect, it } from "vitest";
import { Metrics, agentReadiness, pushLagReport, parseListenAddress, startMetricsServer, type MetricsServer, type Readiness } from "./index.ts";

const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("Metrics", () => {
  it("exposes what an operator alerts on, in Prometheus text format", async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.push("success", 0.12, 42, Date.parse("2026-11-26T08:00:00Z"));
    m.push("error", 3);
    m.kvWrite("kv-api");
    m.setNodes({ healthy: 2, unhealthy: 1 });
    m.setServices({ served: 3, skipped: 1 });
    m.setLeader(true);
    m.informerRestart("services");
    const counts = { nodes: 0, endpointslices: 2 };
    m.observeInformerRestarts(() => counts);
    let text = await m.registry.metrics();
    expect(text).toContain('edgelb_informer_restarts_total{resource="nodes"} 0');
    expect(text).toContain('edgelb_informer_restarts_total{resource="endpointslices"} 2');
    counts.endpointslices = 3;
    text = await m.registry.metrics();
    expect(text).toContain('edgelb_informer_restarts_total{resource="endpointslices"} 3');
    expect(text).toContain('edgelb_pushes_total{result="success"} 1');
    expect(text).toContain('edgelb_pushes_total{result="error"} 1');
    expect(text).toContain('edgelb_push_duration_seconds_bucket{le="0.25",result="success"} 1');
    expect(text).toContain('edgelb_kv_writes_total{sink="kv-api"} 1');
    expect(text).toContain('edgelb_nodes{state="healthy"} 2');
    expect(text).toContain('edgelb_nodes{state="excluded"} 0');
    expect(text).toContain('edgelb_services{state="skipped"} 1');
    expect(text).toContain("edgelb_leader 1");
    expect(text).toContain("edgelb_last_successful_push_timestamp_seconds 1795680000");
    expect(text).toContain("edgelb_snapshot_generation 42");
    expect(text).toContain('edgelb_informer_restarts_total{resource="services"} 1');
  });
});

describe("metrics server", () => {
  it("serves /metrics, /healthz and /readyz on the configured address", async () => {
    const m = new Metrics();
    let readiness: Readiness = { ready: false, reason: "informers have not synced yet" };
    const s = await startMetricsServer("127.0.0.1:0", m.registry, () => readiness);
    servers.push(s);
    const metrics = await fetch(`${s.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await metrics.text()).toContain("process_cpu_user_seconds_total");
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${s.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain("informers have not synced yet");
    readiness = { ready: true, reason: "standby: informers synced" };
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${s.url}/nope`)).status).toBe(404);
  });

  it("says clearly when the address is bad or taken", async () => {
    expect(() => parseListenAddress("9090")).toThrow(/must look like ":9090"/);
    expect(parseListenAddress(":9090")).toEqual({ host: undefined, port: 9090 });
    expect(parseListenAddress("[::1]:80")).toEqual({ host: "::1", port: 80 });
    const m = new Metrics({ defaultMetrics: false });
    const s = await startMetricsServer("127.0.0.1:0", m.registry, () => ({ ready: true, reason: "" }));
    servers.push(s);
    await expect(startMetricsServer(`127.0.0.1:${s.port}`, m.registry, () => ({ ready: true, reason: "" }))).rejects.toThrow(
      /address already in use/,
    );
  });
});

describe("agentReadiness", () => {
  it("is not ready before the informers sync", () => {
    expect(agentReadiness({ informersSynced: false, isLeader: true }).ready).toBe(false);
  });
  it("a synced leader or standby is ready, whatever the edge says", () => {
    expect(agentReadiness({ informersSynced: true, isLeader: false })).toMatchObject({ ready: true, reason: /standby/ });
    expect(agentReadiness({ informersSynced: true, isLeader: true })).toMatchObject({ ready: true, reason: /leader/ });
  });
});

describe("pushLagReport", () => {
  const base = { now: 100_000, maxPushLagMs: 60_000, reported: false };
  it("reports a lag longer than allowed once, and the catch-up once", () => {
    expect(pushLagReport({ ...base, pendingSince: null })).toBeNull();
    expect(pushLagReport({ ...base, pendingSince: 50_000 })).toBeNull();
    expect(pushLagReport({ ...base, pendingSince: 30_000 })).toBe("lagging");
    expect(pushLagReport({ ...base, pendingSince: 30_000, reported: true })).toBeNull();
    expect(pushLagReport({ ...base, pendingSince: null, reported: true })).toBe("caught-up");
  });
});
