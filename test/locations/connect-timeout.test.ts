// Issue 19: the default connect timeout, tuned with the convergence
// simulation (docs/worker.md, "Connect timeout"): short, so a node that drops
// connections costs a stale location little, yet long enough that a SYN lost
// once (Linux resends it after 1 s) on a long path still connects instead of
// ejecting a healthy node.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONNECT_TIMEOUT_MS, Policy } from "../../worker/snapshot/schema.ts";

const SYN_RETRANSMIT_MS = 1_000;
/** A long path from the client's Cloudflare location to a home node (another continent). */
const LONG_PATH_RTT_MS = 300;

describe("default connect timeout", () => {
  it("a Service without connectTimeoutMs gives up connecting after 1.5 s", () => {
    expect(v.parse(Policy, {}).connectTimeoutMs).toBe(1_500);
    expect(DEFAULT_CONNECT_TIMEOUT_MS).toBe(1_500);
  });

  it("survives one lost SYN on a long path, and is shorter than the 2 s it replaces", () => {
    expect(DEFAULT_CONNECT_TIMEOUT_MS).toBeGreaterThan(SYN_RETRANSMIT_MS + LONG_PATH_RTT_MS);
    expect(DEFAULT_CONNECT_TIMEOUT_MS).toBeLessThan(2_000);
  });
});
