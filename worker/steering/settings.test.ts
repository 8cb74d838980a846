import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSteering, ruleFor } from "./settings.ts";

describe("EDGELB_STEERING", () => {
  it("unset or blank means no steering", () => {
    for (const raw of [undefined, "", "  "]) {
      const r = parseSteering(raw);
      expect(r.ok && r.steering.rules.length).toBe(0);
    }
  });

  it("matches exact names before wildcards, a wildcard one label deep, case-insensitively", () => {
    const r = parseSteering(JSON.stringify({ "App.Example.com": { policy: "failover", clusters: ["a", "b"] }, "*.example.com": { policy: "random", clusters: ["b", "a"] } }));
    if (!r.ok) throw new Error(r.error);
    expect(ruleFor(r.steering, "app.example.com")?.policy).toBe("failover");
    expect(ruleFor(r.steering, "shop.example.com")?.policy).toBe("random");
    expect(ruleFor(r.steering, "a.b.example.com")).toBeUndefined();
    expect(ruleFor(r.steering, "example.com")).toBeUndefined();
  });

  it("refuses a bad setting with a message naming the pattern and the field", () => {
    const bad: [unknown, RegExp][] = [
      ["{", /EDGELB_STEERING is not JSON/],
      ["[]", /must be a JSON object/],
      [{ "app.example.com": { policy: "nearest", clusters: ["a"] } }, /"app.example.com": policy: must be one of failover/],
      [{ "app.example.com": { policy: "failover" } }, /"app.example.com": policy "failover" needs "clusters"/],
      [{ "app.example.com": { policy: "failover", clusters: ["a", "a"] } }, /clusters: must not name a cluster twice/],
      [{ "app.example.com": { policy: "failover", clusters: ["A!"] } }, /clusters.0: must be a DNS label/],
      [{ "app.example.com": { policy: "failover", clusters: ["a"], weights: { a: 1 } } }, /"weights" is not used by policy "failover"/],
      [{ "app.example.com": { policy: "weighted", weights: { a: 0 } } }, /at least one weight must be above 0/],
      [{ "app.example.com": { policy: "weighted", weights: { a: -1 } } }, /weights.a/],
      [{ "app.example.com": { policy: "geo", countries: { de: ["a"] } } }, /country codes are ISO 3166-1 alpha-2/],
      [{ "app.example.com": { policy: "geo", continents: { XX: ["a"] } } }, /continent codes are AF AN AS EU NA OC SA/],
      [{ "app.example.com": { policy: "geo", clusters: ["a"], default: ["b"] } }, /cluster "b" is used in a geo list but not in "clusters"/],
      [{ "app.example.com": { policy: "failover", clusters: ["a"], colusters: ["b"] } }, /colusters/],
      [{ "bad host": { policy: "failover", clusters: ["a"] } }, /"bad host": not a hostname/],
      [{ "a.example.com": { policy: "failover", clusters: ["a"] }, "A.example.com": { policy: "random", clusters: ["a"] } }, /given twice/],
    ];
    for (const [raw, message] of bad) {
      const r = parseSteering(typeof raw === "string" ? raw : JSON.stringify(raw));
      expect(r.ok ? "accepted" : r.error).toMatch(message);
    }
  });

  it("warns about clusters that EDGELB_CLUSTERS does not serve", () => {
    const r = parseSteering(JSON.stringify({ "app.example.com": { policy: "failover", clusters: ["east", "typo"] } }), ["east", "west"]);
    expect(r.ok && r.warnings).toEqual([`EDGELB_STEERING "app.example.com": typo not in EDGELB_CLUSTERS; never served`]);
  });

  it("never throws, whatever the input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ "app.example.com": v }))), (raw) => {
        const r = parseSteering(raw);
        if (!r.ok) expect(r.error).toMatch(/^EDGELB_STEERING/);
      }),
    );
  });

  it("an accepted rule only ever names its allowed clusters, in every list", () => {
    const name = fc.constantFrom("a", "b", "c", "d");
    const list = fc.uniqueArray(name, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(list, fc.dictionary(fc.constantFrom("DE", "US", "JP"), list), fc.option(list, { nil: undefined }), (clusters, countries, fallback) => {
        const r = parseSteering(JSON.stringify({ "x.example.com": { policy: "geo", countries, ...(fallback ? { default: fallback } : {}) } }));
        if (!r.ok) return;
        const rule = r.steering.rules[0]!;
        for (const l of [...rule.countries!.values(), rule.fallback!]) for (const c of l) expect(rule.clusters).toContain(c);
        void clusters;
      }),
    );
  });
});
