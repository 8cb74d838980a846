import { describe, expect, it } from "vitest";
import { memoryLogger } from "../log/index.ts";
import { PassiveHealth } from "./index.ts";

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
