import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log/index.ts";
import fc from "fast-check";
import { healthSettings, PassiveHealth, type HealthOptions } from "./index.ts";

describe("passive health", () => {
  const setup = () => {
    let now = 1_000_000;
    const log = memoryLogger();
    const health = new PassiveHealth({ threshold: 3, baseEjectMs: 10_000, maxEjectMs: 35_000, now: () => now, log });
    return { health, log, advance: (ms: number) => (now += ms) };
  };

  it("ejects after consecutive failures, for a period that grows with each ejection", () => {
    const { health, log, advance } = setup();
    health.failure("o", "refused");
    health.failure("o", "refused");
    expect(health.isEjected("o")).toBe(false);
    health.failure("o", "refused");
    expect(health.isEjected("o")).toBe(true);
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", origin: "o", forMs: 10_000, ejections: 1 });

    advance(10_000);
    expect(health.isEjected("o")).toBe(false);
    // On probation: the first failure ejects again, twice as long.
    health.failure("o", "refused");
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", forMs: 20_000, ejections: 2 });
    advance(19_999);
    expect(health.isEjected("o")).toBe(true);
    advance(1);
    health.failure("o", "refused");
    // Capped by maxEjectMs.
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", forMs: 35_000, ejections: 3 });
  });

  it("restores an origin fully after a success", () => {
    const { health, log, advance } = setup();
    for (let i = 0; i < 3; i++) health.failure("o", "refused");
    advance(10_000);
    health.success("o");
    expect(log.entries.at(-1)).toMatchObject({ event: "node.restored", origin: "o" });
    expect(health.get("o")).toBeUndefined();
    health.failure("o", "refused");
    expect(health.isEjected("o")).toBe(false);
  });

  it("does not eject on failures separated by successes", () => {
    const { health } = setup();
    for (let i = 0; i < 10; i++) {
      health.failure("o", "refused");
      health.failure("o", "refused");
      health.success("o");
    }
    expect(health.isEjected("o")).toBe(false);
  });
});

describe("outlier detection like Envoy's", () => {
  const setup = (opts: Partial<HealthOptions> = {}) => {
    let now = 1_000_000;
    const log = memoryLogger();
    const health = new PassiveHealth({ baseEjectMs: 10_000, now: () => now, log, ...opts });
    return { health, log, advance: (ms: number) => (now += ms) };
  };
  const ejectedLines = (log: ReturnType<typeof memoryLogger>) => log.entries.filter((e) => e.event === "node.ejected");

  it("ejects on connection failures after 3 in a row, on 5xx answers only after 5 in a row", () => {
    const { health, log } = setup();
    for (let i = 0; i < 4; i++) health.failure("app", "status 504", {}, "status");
    expect(health.isEjected("app")).toBe(false);
    health.failure("app", "status 504", {}, "status");
    expect(health.isEjected("app")).toBe(true);
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", origin: "app", kind: "status", consecutiveFailures: 5 });

    for (let i = 0; i < 2; i++) health.failure("down", "connect refused");
    expect(health.isEjected("down")).toBe(false);
    health.failure("down", "connect timeout", {}, "connection");
    expect(health.isEjected("down")).toBe(true);
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", origin: "down", kind: "connection" });
  });

  it("ejects on the first connect timeout (a blackholed node costs one wait, not one per request), within the ejection cap", () => {
    const { health, log } = setup();
    health.failure("svc/n1:30080", "no connection within 2000 ms", {}, "connect-timeout", { id: "svc", size: 4 });
    expect(health.isEjected("svc/n1:30080")).toBe(true);
    expect(log.entries.at(-1)).toMatchObject({ event: "node.ejected", origin: "svc/n1:30080", kind: "connect-timeout", consecutiveFailures: 1 });
    // Only that Service's origin: the same node at another NodePort keeps serving.
    expect(health.isEjected("svc/n1:30081")).toBe(false);
    health.failure("svc/n2:30080", "no connection within 2000 ms", {}, "connect-timeout", { id: "svc", size: 4 });
    expect(health.isEjected("svc/n2:30080")).toBe(true);
    // The cap (half of the Service's nodes) still holds: a third node is not ejected.
    health.failure("svc/n3:30080", "no connection within 2000 ms", {}, "connect-timeout", { id: "svc", size: 4 });
    expect(health.isEjected("svc/n3:30080")).toBe(false);
  });

  it("takes the 5xx streak from settings, and a 5xx answer ends a connection-failure streak", () => {
    const { health } = setup({ consecutive5xx: 2, threshold: 3 });
    health.failure("a", "status 502", {}, "status");
    health.failure("a", "status 502", {}, "status");
    expect(health.isEjected("a")).toBe(true);

    const other = setup({ threshold: 3 }).health;
    other.failure("b", "refused");
    other.failure("b", "refused");
    other.failure("b", "status 503", {}, "status");
    other.failure("b", "refused");
    // Two connection failures, an answer, one more: no three in a row (and four failures are under the 5xx streak).
    expect(other.isEjected("b")).toBe(false);
  });

  it("needs a new 5xx streak on probation, while one connection failure ejects again at once", () => {
    const { health, advance } = setup();
    for (let i = 0; i < 5; i++) health.failure("a", "status 504", {}, "status");
    advance(10_000);
    expect(health.isEjected("a")).toBe(false);
    health.failure("a", "status 504", {}, "status");
    expect(health.isEjected("a")).toBe(false);
    health.failure("a", "refused");
    expect(health.isEjected("a")).toBe(true);
    expect(health.get("a")).toMatchObject({ ejections: 2 });
  });

  it("ejects at most half of a Service's nodes: a path answering 504 everywhere leaves the others serving", () => {
    const { health, log } = setup();
    const pool = { id: "c:30080", size: 3 };
    // Clients hammer a path that answers 504 on every node.
    for (let round = 0; round < 10; round++) for (const n of ["n1", "n2", "n3"]) health.failure(n, "status 504", { node: n }, "status", pool);
    expect(["n1", "n2", "n3"].filter((n) => health.isEjected(n))).toEqual(["n1"]);
    expect(health.ejectedIn("c:30080")).toBe(1);
    expect(ejectedLines(log)).toHaveLength(1);
    expect(ejectedLines(log)[0]).toMatchObject({ node: "n1", ejectedInService: 1, serviceNodes: 3 });
    // One line while the cap holds, not one per node or per failure.
    const capped = log.entries.filter((e) => e.event === "node.ejection_capped");
    expect(capped).toHaveLength(1);
    expect(capped[0]).toMatchObject({ node: "n2", ejectedInService: 1, serviceNodes: 3, maxEjectionPercent: 50 });
    // Another Service's pool has its own cap.
    for (let i = 0; i < 3; i++) health.failure("m1", "refused", {}, "connection", { id: "c:30090", size: 2 });
    expect(health.isEjected("m1")).toBe(true);
  });

  it("frees a pool's share when an ejection ends or an ejected node answers", () => {
    const { health, advance } = setup({ maxEjectionPercent: 50 });
    const pool = { id: "p", size: 4 };
    const fail = (n: string, times = 3) => {
      for (let i = 0; i < times; i++) health.failure(n, "refused", {}, "connection", pool);
    };
    fail("a");
    fail("b");
    fail("c");
    expect([health.isEjected("a"), health.isEjected("b"), health.isEjected("c")]).toEqual([true, true, false]);
    // An ejected node tried while failing open answers: its share is free at once.
    health.success("a");
    fail("c", 1);
    expect(health.isEjected("c")).toBe(true);
    expect(health.ejectedIn("p")).toBe(2);
    // Ejections end: the count follows without anyone asking the nodes.
    advance(10_000);
    expect(health.ejectedIn("p")).toBe(0);
    fail("d");
    expect(health.isEjected("d")).toBe(true);
  });

  it("keeps the pool count equal to the ejected origins and within the cap, whatever happens (property)", () => {
    const nodes = ["a", "b", "c", "d", "e", "f", "g"];
    const op = fc.oneof(
      fc.record({ t: fc.constant("fail" as const), n: fc.constantFrom(...nodes), kind: fc.constantFrom("connection" as const, "status" as const) }),
      fc.record({ t: fc.constant("ok" as const), n: fc.constantFrom(...nodes) }),
      fc.record({ t: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 25_000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 100 }), (ops, maxEjectionPercent) => {
        const { health, advance } = setup({ maxEjectionPercent, maxEjectMs: 40_000 });
        const pool = { id: "p", size: nodes.length };
        for (const o of ops) {
          if (o.t === "fail") health.failure(o.n, "x", {}, o.kind, pool);
          else if (o.t === "ok") health.success(o.n);
          else advance(o.ms);
          const ejected = nodes.filter((n) => health.isEjected(n)).length;
          expect(health.ejectedIn("p")).toBe(ejected);
          expect(ejected * 100).toBeLessThanOrEqual(maxEjectionPercent * nodes.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("settings from worker vars", () => {
  it("reads the streaks and the cap, and names a bad value while keeping its default", () => {
    expect(healthSettings({})).toEqual({ options: {}, problems: [] });
    expect(
      healthSettings({ EDGELB_EJECT_CONSECUTIVE_FAILURES: "2", EDGELB_EJECT_CONSECUTIVE_5XX: " 10 ", EDGELB_MAX_EJECTION_PERCENT: "100" }),
    ).toEqual({ options: { threshold: 2, consecutive5xx: 10, maxEjectionPercent: 100 }, problems: [] });
    const bad = healthSettings({ EDGELB_EJECT_CONSECUTIVE_5XX: "0", EDGELB_MAX_EJECTION_PERCENT: "50%" });
    expect(bad.options).toEqual({});
    expect(bad.problems).toEqual([
      'EDGELB_EJECT_CONSECUTIVE_5XX "0" is not an integer from 1 to 1000; using the default',
      'EDGELB_MAX_EJECTION_PERCENT "50%" is not an integer from 0 to 100; using the default',
    ]);
  });
});
