import fc from "fast-check";
import type { V1Service } from "@kubernetes/client-node";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { Policy } from "../../worker/snapshot/schema.ts";
import { MAX_RESPONSE_TIMEOUT_MS, parseDuration, requestPolicy } from "./request-policy.ts";
import { evaluateService } from "./service.ts";

const opts = { loadBalancerClass: "edgelb.dev/worker", onlyClass: false, defaultDomain: "example.net" };
const svc = (annotations: Record<string, string>) =>
  ({
    metadata: { name: "web", namespace: "prod", annotations },
    spec: { type: "LoadBalancer", ports: [{ port: 80, nodePort: 30080 }] },
  }) as V1Service;

describe("request-path annotations", () => {
  it("opt a Service in to retrying non-idempotent requests", () => {
    expect(requestPolicy({ "edgelb.dev/retry-non-idempotent": "true" })).toEqual({ retryNonIdempotent: true });
    expect(requestPolicy({ "edgelb.dev/retry-non-idempotent": "False" })).toEqual({});
    expect(requestPolicy({})).toEqual({});
    expect(requestPolicy({ "edgelb.dev/retry-non-idempotent": "yes" })).toEqual({
      error: 'edgelb.dev/retry-non-idempotent="yes" must be "true" or "false"',
    });
  });

  it("read a response timeout for long-poll apps, up to an hour", () => {
    expect(requestPolicy({ "edgelb.dev/response-timeout": "120s" })).toEqual({ responseTimeoutMs: 120_000 });
    expect(requestPolicy({ "edgelb.dev/response-timeout": "5m" })).toEqual({ responseTimeoutMs: 300_000 });
    expect(requestPolicy({ "edgelb.dev/response-timeout": "1h" })).toEqual({ responseTimeoutMs: 3_600_000 });
    expect(requestPolicy({ "edgelb.dev/response-timeout": "1500ms" })).toEqual({ responseTimeoutMs: 1_500 });
    expect(requestPolicy({ "edgelb.dev/response-timeout": "90" })).toEqual({ responseTimeoutMs: 90_000 });
    for (const bad of ["2h", "0s", "soon", "-5s", "1d"]) {
      expect(requestPolicy({ "edgelb.dev/response-timeout": bad })).toMatchObject({ error: expect.stringContaining("edgelb.dev/response-timeout") });
    }
  });

  it("reach the snapshot policy through evaluateService, and a bad value skips with the reason", () => {
    const served = evaluateService(svc({ "edgelb.dev/retry-non-idempotent": "true", "edgelb.dev/response-timeout": "10m" }), opts);
    expect(served).toMatchObject({ kind: "served", spec: { retryNonIdempotent: true, responseTimeoutMs: 600_000 } });
    expect(evaluateService(svc({ "edgelb.dev/response-timeout": "forever" }), opts)).toMatchObject({
      kind: "skipped",
      reason: expect.stringContaining("edgelb.dev/response-timeout"),
    });
  });

  it("only ever yield timeouts the worker's schema accepts (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (value) => {
        const out = requestPolicy({ "edgelb.dev/response-timeout": value });
        if ("error" in out) return;
        expect(v.safeParse(Policy, { responseTimeoutMs: out.responseTimeoutMs }).success).toBe(true);
      }),
    );
    for (const ms of [1, 1000, MAX_RESPONSE_TIMEOUT_MS]) expect(v.safeParse(Policy, { responseTimeoutMs: ms }).success).toBe(true);
    expect(parseDuration("3600s")).toBe(MAX_RESPONSE_TIMEOUT_MS);
  });
});
