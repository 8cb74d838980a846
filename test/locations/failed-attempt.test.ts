// How the simulation reads a location's log lines: a request that waited a whole connect timeout
// (proxy.retry/failed naming the timeout) is told apart from one a connect hedge moved on after its
// delay (proxy.hedge), so the convergence report counts the two separately.
import { describe, expect, it } from "vitest";
import { failedAttemptOf } from "./simulation.ts";

const line = (o: Record<string, unknown>) => JSON.stringify({ time: "2026-12-02T01:00:00.000Z", level: "warn", ...o });

describe("failedAttemptOf", () => {
  it("reads a connect timeout as a wait", () => {
    const f = failedAttemptOf(line({ event: "proxy.retry", requestId: "r1", node: "node-1", error: "cannot connect to http://127.0.0.1:30080 (node node-1): no connection within 1500 ms" }));
    expect(f).toEqual({ requestId: "r1", attempt: expect.objectContaining({ node: "node-1", connectTimeout: true }) });
    expect(f?.attempt.hedgedAfterMs).toBeUndefined();
  });

  it("reads a hedge that another node answered as an attempt at the slow node delayed by the hedge, not a wait", () => {
    const f = failedAttemptOf(line({ event: "proxy.hedge", requestId: "r2", slow: "node-1", hedge: "node-2", answered: "node-2", afterMs: 262, delayMs: 250 }));
    expect(f).toEqual({ requestId: "r2", attempt: expect.objectContaining({ node: "node-1", connectTimeout: false, hedgedAfterMs: 262 }) });
  });

  it("reads a hedge where both connects failed as an attempt, with no delay claimed (the proxy.failed line carries the wait)", () => {
    const f = failedAttemptOf(line({ event: "proxy.hedge", requestId: "r3", slow: "node-1", hedge: "node-2", afterMs: 1500, delayMs: 250 }));
    expect(f?.attempt).toMatchObject({ node: "node-1", connectTimeout: false });
    expect(f?.attempt.hedgedAfterMs).toBeUndefined();
  });

  it("ignores other lines", () => {
    expect(failedAttemptOf(line({ event: "node.ejected", node: "node-1" }))).toBeUndefined();
    expect(failedAttemptOf("not json")).toBeUndefined();
  });
});
