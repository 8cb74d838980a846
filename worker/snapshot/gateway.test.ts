import { describe, expect, it } from "vitest";
import { regexProblem, type GatewaySectionInput } from "./gateway.ts";
import { SNAPSHOT_SCHEMA, validateSnapshot, type SnapshotInput } from "./schema.ts";

function snapshot(gateway: GatewaySectionInput | undefined): SnapshotInput {
  return {
    schema: SNAPSHOT_SCHEMA,
    cluster: "default",
    generation: 1,
    publishedAt: "2026-12-01T00:00:00.000Z",
    nodes: [{ name: "n1", address: "127.26.0.11", healthy: true }],
    services: [],
    ...(gateway ? { gateway } : {}),
  };
}

const attachment = (over: Record<string, unknown> = {}) => ({
  namespace: "default",
  name: "web",
  creationTimestamp: "2026-12-01T00:00:00Z",
  gateway: "default/edge",
  listener: "http",
  hostnames: ["*"],
  rules: [{ backendRefs: [{ namespace: "default", name: "web", port: 80 }] }],
  ...over,
});
const backends = [{ namespace: "default", name: "web", port: 80, nodePort: 30080 }];

describe("snapshot gateway section (contract between agent and worker)", () => {
  it("is optional: a snapshot without it stays valid", () => {
    expect(validateSnapshot(snapshot(undefined)).ok).toBe(true);
  });

  it("fills the spec's defaults: match PathPrefix '/', weight 1, redirect 302", () => {
    const r = validateSnapshot(
      snapshot({
        backends,
        routes: [attachment({ rules: [{ backendRefs: [{ namespace: "default", name: "web", port: 80 }] }, { filters: [{ type: "RequestRedirect", requestRedirect: {} }] }] })],
      }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [plain, redirect] = r.snapshot.gateway!.routes[0]!.rules;
    expect(plain!.matches).toEqual([{ path: { type: "PathPrefix", value: "/" }, headers: [], queryParams: [] }]);
    expect(plain!.backendRefs[0]).toMatchObject({ weight: 1 });
    expect(redirect!.filters[0]).toMatchObject({ requestRedirect: { statusCode: 302 } });
    expect(r.snapshot.gateway!.backends[0]).toMatchObject({ scheme: "http", trafficPolicy: "Cluster", policy: { algorithm: "round-robin" } });
  });

  it("refuses a backendRef to a backend it does not list, naming both", () => {
    const r = validateSnapshot(snapshot({ backends: [], routes: [attachment()] }));
    expect(r).toMatchObject({ ok: false });
    expect(!r.ok && r.error).toContain('refers to unlisted backend "default/web:80"');
  });

  it("carries invalid backends with their weight", () => {
    const r = validateSnapshot(snapshot({ backends: [], routes: [attachment({ rules: [{ backendRefs: [{ invalid: "Service default/gone not found", weight: 3 }] }] })] }));
    expect(r.ok && r.snapshot.gateway!.routes[0]!.rules[0]!.backendRefs[0]).toEqual({ invalid: "Service default/gone not found", weight: 3 });
  });

  it("refuses header values and filter values with CR, LF or NUL", () => {
    for (const value of ["a\r\nx-evil: 1", "a\nb", "a\x00"]) {
      const r = validateSnapshot(
        snapshot({ backends, routes: [attachment({ rules: [{ filters: [{ type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-a", value }] } }] }] })] }),
      );
      expect(r.ok).toBe(false);
    }
    const badName = validateSnapshot(
      snapshot({ backends, routes: [attachment({ rules: [{ matches: [{ headers: [{ type: "Exact", name: "x a:", value: "1" }] }] }] })] }),
    );
    expect(badName.ok).toBe(false);
  });

  it("refuses regular expressions a linear-time engine cannot run (backreferences, lookaround)", () => {
    expect(regexProblem("^/api/v[0-9]+/.*$")).toBeUndefined();
    expect(regexProblem("(a+)+$")).toBeUndefined(); // fine: RE2 matches it in linear time
    expect(regexProblem("(a)\\1")).toMatch(/not an RE2/);
    expect(regexProblem("(?=a)b")).toMatch(/not an RE2/);
    expect(regexProblem("a".repeat(1025))).toMatch(/longer than/);
    const r = validateSnapshot(
      snapshot({ backends, routes: [attachment({ rules: [{ matches: [{ path: { type: "RegularExpression", value: "(x)\\1" } }] }] })] }),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain("gateway.routes.0.rules.0.matches.0.path.value");
  });

  it("refuses a section whose routes hold more hostname × match entries than the edge keeps", () => {
    const matches = Array.from({ length: 64 }, (_, i) => ({ path: { type: "Exact" as const, value: `/p${i}` } }));
    const hostnames = Array.from({ length: 16 }, (_, i) => `h${i}.example.com`);
    const rules = Array.from({ length: 16 }, () => ({ matches, backendRefs: [{ namespace: "default", name: "web", port: 80 }] }));
    // 16 hostnames × 16 rules × 64 matches = 16,384 per route: 15 such routes fit, 16 do not.
    const routes = (n: number) => Array.from({ length: n }, (_, i) => attachment({ name: `r${i}`, hostnames, rules }));
    expect(validateSnapshot(snapshot({ backends, routes: routes(15) })).ok).toBe(true);
    const r = validateSnapshot(snapshot({ backends, routes: routes(16) }));
    expect(!r.ok && r.error).toContain("262144 hostname × match entries in all routes, more than the edge keeps (250000)");
    expect(validateSnapshot(snapshot({ backends, routes: [attachment({ hostnames: [...hostnames, "x.example.com"] })] })).ok).toBe(false);
  });

  it("refuses wildcard redirect hostnames and paths that are not absolute", () => {
    const redirect = (requestRedirect: unknown) =>
      validateSnapshot(snapshot({ backends, routes: [attachment({ rules: [{ filters: [{ type: "RequestRedirect", requestRedirect }] }] })] })).ok;
    expect(redirect({ hostname: "example.com" })).toBe(true);
    expect(redirect({ hostname: "*.example.com" })).toBe(false);
    expect(redirect({ path: { type: "ReplaceFullPath", replaceFullPath: "nope" } })).toBe(false);
    expect(redirect({ path: { type: "ReplaceFullPath", replaceFullPath: "/a b" } })).toBe(false);
    expect(redirect({ statusCode: 200 })).toBe(false);
  });
});
