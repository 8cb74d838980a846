// The gate bench's profile breakdown: busy time per bucket from a V8 CPU profile.
import { describe, expect, it } from "vitest";
import { describeBreakdown, profileBreakdown, type CpuProfile } from "../../bench/lib/cpu-profile.ts";

const frame = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url }, children });

describe("profileBreakdown", () => {
  it("splits busy time into buckets, leaving out idle and start-up, and attributes callees to their caller's bucket", () => {
    const p: CpuProfile = {
      nodes: [
        frame(1, "(root)", "", [2, 3, 4, 5, 8]),
        frame(2, "(idle)", ""),
        frame(3, "writev", ""),
        frame(4, "verify", "file:///x/sync-agent/gate/verify/index.ts", [6]),
        frame(5, "compileSourceTextModule", "node:internal/modules/esm/utils"),
        frame(6, "digest", "node:internal/crypto/hash"),
        frame(8, "parserOnIncoming", "node:_http_server", [9]),
        frame(9, "emit", "node:events"),
      ],
      samples: [2, 3, 3, 4, 6, 5, 9, 9, 9, 9],
      timeDeltas: [5000, 1000, 1000, 1000, 1000, 9000, 1000, 1000, 1000, 1000],
    };
    const { busyMs, shares } = profileBreakdown(p);
    expect(busyMs).toBe(8);
    expect(shares).toEqual([
      { bucket: "Node's HTTP server (edge side)", share: 0.5 },
      { bucket: "signature check (HMAC, replay cache)", share: 0.25 },
      { bucket: "socket writes (syscalls)", share: 0.25 },
    ]);
    expect(describeBreakdown(shares)).toBe("50% Node's HTTP server (edge side), 25% signature check (HMAC, replay cache), 25% socket writes (syscalls)");
  });

  it("counts the gate's HTTP parsing (its request-head parser, the socket transport's response parser) as its own bucket", () => {
    const p: CpuProfile = {
      nodes: [
        frame(1, "(root)", "", [2, 3]),
        frame(2, "parseRequestHead", "file:///x/sync-agent/gate/request-head/index.ts", [4]),
        frame(3, "feed", "file:///x/worker/transport/socket/response-parser.ts"),
        frame(4, "toString", "node:buffer"),
      ],
      samples: [2, 3, 4, 4],
      timeDeltas: [1000, 1000, 1000, 1000],
    };
    expect(profileBreakdown(p).shares).toEqual([{ bucket: "HTTP parsing (request head, response framing)", share: 1 }]);
  });
});
