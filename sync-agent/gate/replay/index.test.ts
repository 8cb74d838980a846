import { describe, expect, it } from "vitest";
import { ReplayCache } from "./index.ts";

describe("replay cache", () => {
  it("accepts a nonce once", () => {
    const c = new ReplayCache({ capacity: 10, windowS: 30 });
    expect(c.accept("n1", 100, 100)).toBe(true);
    expect(c.accept("n1", 100, 101)).toBe(false);
    expect(c.accept("n2", 100, 101)).toBe(true);
  });

  it("forgets nonces once their timestamp left the window, so memory follows the request rate", () => {
    const c = new ReplayCache({ capacity: 1000, windowS: 30 });
    for (let i = 0; i < 100; i++) c.accept(`a${i}`, 100, 100);
    expect(c.size).toBe(100);
    c.accept("later", 140, 140);
    expect(c.size).toBe(1);
  });

  it("stays bounded under a flood and never lets a forgotten nonce back in", () => {
    const c = new ReplayCache({ capacity: 3, windowS: 30 });
    expect(c.accept("a", 100, 100)).toBe(true);
    expect(c.accept("b", 101, 101)).toBe(true);
    expect(c.accept("c", 102, 102)).toBe(true);
    // Full: "a" is forgotten, and with it every request signed at or before second 100.
    expect(c.accept("d", 103, 103)).toBe(true);
    expect(c.size).toBe(3);
    expect(c.accept("a", 100, 103)).toBe(false);
    expect(c.accept("new-but-old", 100, 103)).toBe(false);
    expect(c.accept("e", 104, 104)).toBe(true);
    expect(c.size).toBe(3);
  });
});
