import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { domainOwner, hostnameRefusal, matchesPattern, parsePatterns } from "./hostnames.ts";
import { unroutableReason } from "./node.ts";

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?$/);
const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join("."));

describe("hostname patterns", () => {
  it("parses what it prints: lowercased, trailing dots and blanks dropped, invalid entries reported not kept", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(name, name.map((n) => `*.${n}`)), { maxLength: 5 }), (list) => {
        const text = list.map((p) => ` ${p.toUpperCase()}. `).join(",");
        expect(parsePatterns(text)).toEqual({ patterns: list, invalid: [] });
      }),
    );
    expect(parsePatterns("a.example.com,,bad name,*.*.x")).toEqual({ patterns: ["a.example.com"], invalid: ["bad name", "*.*.x"] });
    fc.assert(fc.property(fc.string(), (s) => void parsePatterns(s)));
  });

  it("a wildcard covers exactly one more label, like the edge's routing", () => {
    fc.assert(
      fc.property(label, name, name, (l, suffix, other) => {
        expect(matchesPattern(`${l}.${suffix}`, `*.${suffix}`)).toBe(true);
        expect(matchesPattern(`${l}.${l}.${suffix}`, `*.${suffix}`)).toBe(false);
        expect(matchesPattern(suffix, `*.${suffix}`)).toBe(false);
        expect(matchesPattern(`*.${suffix}`, `*.${suffix}`)).toBe(true);
        if (other !== suffix) expect(matchesPattern(other, suffix)).toBe(false);
      }),
    );
  });

  it("under the default domain a name belongs to the namespace of its last label before it", () => {
    fc.assert(
      fc.property(fc.array(label, { maxLength: 3 }), label, (prefix, ns) => {
        const host = [...prefix, ns, "apps.example.com"].join(".");
        expect(domainOwner(host, "apps.example.com")).toBe(ns);
        expect(hostnameRefusal(host, ns, true, { defaultDomain: "apps.example.com", byNamespace: new Map() })).toBeUndefined();
      }),
    );
    expect(domainOwner("*.apps.example.com", "apps.example.com")).toBeNull();
    expect(domainOwner("apps.example.com", "apps.example.com")).toBeNull();
    expect(domainOwner("xapps.example.com", "apps.example.com")).toBeUndefined();
    expect(hostnameRefusal("web.shop.apps.example.com", "other", false, { defaultDomain: "apps.example.com", byNamespace: new Map() })).toContain("belongs to namespace shop");
  });
});

describe("addresses Cloudflare refuses", () => {
  it("names private, loopback, link-local, CGNAT and unique local addresses; public ones and hostnames pass", () => {
    expect(unroutableReason("10.1.2.3")).toContain("private");
    expect(unroutableReason("172.31.255.255")).toContain("private");
    expect(unroutableReason("172.32.0.1")).toBeUndefined();
    expect(unroutableReason("192.168.0.1")).toContain("private");
    expect(unroutableReason("127.15.1.11")).toContain("loopback");
    expect(unroutableReason("169.254.169.254")).toContain("link-local");
    expect(unroutableReason("100.64.0.1")).toContain("carrier-grade NAT");
    expect(unroutableReason("100.128.0.1")).toBeUndefined();
    expect(unroutableReason("::1")).toContain("loopback");
    expect(unroutableReason("fe80::1")).toContain("link-local");
    expect(unroutableReason("fd00::1")).toContain("unique local");
    expect(unroutableReason("::ffff:10.0.0.1")).toContain("private");
    expect(unroutableReason("203.0.113.10")).toBeUndefined();
    expect(unroutableReason("2001:db8::1")).toBeUndefined();
    expect(unroutableReason("node-1.example.com")).toBeUndefined();
  });
});
