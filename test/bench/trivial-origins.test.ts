// The trivial proxies' origins (bench/trivial-proxy/origins.js): BENCH_ORIGINS in turn, else BENCH_ORIGIN.
import { describe, expect, it } from "vitest";
// @ts-expect-error plain JS module without types (bundled into the socket rows)
import { originPicker } from "../../bench/trivial-proxy/origins.js";

describe("originPicker", () => {
  it("gives each of BENCH_ORIGINS in turn, one request each (the same node addresses as edgelb's round-robin rows)", () => {
    const pick = originPicker({ BENCH_ORIGINS: "http://127.0.0.11:31080, http://127.0.0.12:31080,http://[::1]:8080" });
    const hosts = Array.from({ length: 7 }, () => pick().host);
    expect(originPicker({ BENCH_ORIGINS: "http://[::1]:8080" })()).toMatchObject({ hostname: "[::1]", address: "::1", port: 8080 });
    expect(hosts).toEqual(["127.0.0.11:31080", "127.0.0.12:31080", "[::1]:8080", "127.0.0.11:31080", "127.0.0.12:31080", "[::1]:8080", "127.0.0.11:31080"]);
  });

  it("falls back to the one BENCH_ORIGIN, and refuses an empty list", () => {
    const pick = originPicker({ BENCH_ORIGIN: "http://127.0.0.11:31080" });
    expect([pick(), pick()].map((o: { hostname: string; port: number }) => `${o.hostname}:${o.port}`)).toEqual(["127.0.0.11:31080", "127.0.0.11:31080"]);
    expect(() => originPicker({ BENCH_ORIGINS: " , " })).toThrow(/at least one origin/);
  });
});
