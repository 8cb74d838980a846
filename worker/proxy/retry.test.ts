import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IDEMPOTENT, retryRefusal, type RetryQuestion } from "./retry.ts";

const q = (over: Partial<RetryQuestion>): RetryQuestion => ({
  method: "GET",
  stage: "after-send",
  replayable: true,
  retryNonIdempotent: false,
  websocket: false,
  ...over,
});

describe("retry rule", () => {
  it("moves any method on when nothing reached the node", () => {
    for (const method of ["GET", "POST", "PATCH", "DELETE"]) expect(retryRefusal(q({ method, stage: "before-send" }))).toBeUndefined();
  });

  it("retries only idempotent methods after bytes went out or on a 5xx", () => {
    for (const stage of ["after-send", "status"] as const) {
      for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]) expect(retryRefusal(q({ method, stage }))).toBeUndefined();
      expect(retryRefusal(q({ method: "POST", stage }))).toBe("POST is not idempotent and may have run");
      expect(retryRefusal(q({ method: "PATCH", stage }))).toMatch(/not idempotent/);
      expect(retryRefusal(q({ method: "POST", stage, retryNonIdempotent: true }))).toBeUndefined();
    }
  });

  it("never retries a body that cannot be sent again, nor a WebSocket handshake the node answered", () => {
    // "before-send" with a streamed body: the proxy says so only when no byte of it was read.
    expect(retryRefusal(q({ method: "POST", stage: "before-send", replayable: false }))).toBeUndefined();
    expect(retryRefusal(q({ method: "PUT", stage: "after-send", replayable: false }))).toMatch(/cannot be sent again/);
    expect(retryRefusal(q({ method: "PUT", stage: "status", replayable: false }))).toMatch(/cannot be sent again/);
    expect(retryRefusal(q({ stage: "status", websocket: true }))).toMatch(/WebSocket/);
    expect(retryRefusal(q({ stage: "after-send", websocket: true }))).toBeUndefined();
  });

  it("never allows a non-idempotent retry after send without the opt-in (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST", "PATCH", "CONNECT", "PROPFIND"),
        fc.constantFrom("before-send", "after-send", "status") as fc.Arbitrary<RetryQuestion["stage"]>,
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (method, stage, replayable, retryNonIdempotent, websocket) => {
          const allowed = retryRefusal({ method, stage, replayable, retryNonIdempotent, websocket }) === undefined;
          if (allowed && stage !== "before-send") expect(replayable).toBe(true);
          if (allowed && stage !== "before-send") expect(IDEMPOTENT.has(method) || retryNonIdempotent).toBe(true);
        },
      ),
    );
  });
});
