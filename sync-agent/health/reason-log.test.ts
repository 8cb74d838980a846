// Reviewer findings (rv-newcomer 1, rv-ops 12): a node out of rotation logs a new failure reason once, and
// neither a passing probe before `rise` nor the same failure after a lucky probe counts as a new reason.
import { describe, expect, it } from "vitest";
import { HealthTable, type HealthTransition } from "./table.ts";

describe("recovery with rise > 1", () => {
  it("the first success while out of rotation is not logged as a new failure reason (no 'now: undefined')", async () => {
    const results = ["HTTP 503", "HTTP 503", undefined, undefined];
    const transitions: HealthTransition[] = [];
    let probes = 0;
    const table = new HealthTable({ mode: "kube-proxy", intervalMs: 1, timeoutMs: 1, rise: 2, fall: 1, healthzPort: 1, jitter: 0 }, (t) => transitions.push(t), async () => {
      const error = results[Math.min(probes++, results.length - 1)];
      return error ? { ok: false, error } : { ok: true };
    });
    try {
      table.setTargets([{ kind: "node", node: "a", address: "192.0.2.1" }]);
      const deadline = Date.now() + 5000;
      while (table.node("a") !== true && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    } finally {
      table.stop();
    }
    expect(transitions.map((t) => [t.previous, t.healthy, t.error])).toEqual([
      [undefined, false, "HTTP 503"],
      [false, true, undefined],
    ]);
  });
});

describe("reasons while out of rotation, with lucky probes", () => {
  it("one transition for a node that fails, passes once, fails again with the same reason, …", async () => {
    const transitions: HealthTransition[] = [];
    let probes = 0;
    const table = new HealthTable({ mode: "kube-proxy", intervalMs: 1, timeoutMs: 1, rise: 2, fall: 1, healthzPort: 1, jitter: 0 }, (t) => transitions.push(t), async () =>
      probes++ % 2 === 0 ? { ok: false, error: "gate 192.0.2.1:29080: timeout after 1000 ms" } : { ok: true },
    );
    try {
      table.setTargets([{ kind: "node", node: "a", address: "192.0.2.1" }]);
      const deadline = Date.now() + 5000;
      while (probes <= 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    } finally {
      table.stop();
    }
    expect(probes).toBeGreaterThan(10);
    expect(transitions.map((t) => [t.previous, t.healthy, t.error])).toEqual([[undefined, false, "gate 192.0.2.1:29080: timeout after 1000 ms"]]);
  });
});
