// The Gateway API conformance report (docs/gateway.md) against the tests: every
// upstream core test is listed, and every test the report says passes is the
// title of a test here (a typo, or a translation dropped later, shows).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../e2e/process.ts";

/**
 * kubernetes-sigs/gateway-api conformance/tests at 4564255 (Aug 2026): the ShortNames whose
 * Features are only SupportGateway and/or SupportHTTPRoute (core conformance for HTTP).
 */
const UPSTREAM_CORE = [
  "GatewayClassObservedGenerationBump",
  "GatewayInvalidParametersRef",
  "GatewayInvalidRouteKind",
  "GatewayInvalidTLSConfiguration",
  "GatewayListenerUnsupportedProtocol",
  "GatewayModifyListeners",
  "GatewayNameMaximumLength",
  "GatewayObservedGenerationBump",
  "HTTPRouteCrossNamespace",
  "HTTPRouteExactPathMatching",
  "HTTPRouteHTTPSListener",
  "HTTPRouteHeaderMatching",
  "HTTPRouteHostnameIntersection",
  "HTTPRouteInvalidBackendRefUnknownKind",
  "HTTPRouteInvalidCrossNamespaceParentRef",
  "HTTPRouteInvalidNonExistentBackendRef",
  "HTTPRouteInvalidParentRefNotMatchingSectionName",
  "HTTPRouteListenerHostnameMatching",
  "HTTPRouteMatching",
  "HTTPRouteMatchingAcrossRoutes",
  "HTTPRouteMultipleGateways",
  "HTTPRouteNoBackendRefs",
  "HTTPRouteObservedGenerationBump",
  "HTTPRoutePathMatchOrder",
  "HTTPRouteRedirectHostAndStatus",
  "HTTPRouteRequestHeaderModifier",
  "HTTPRouteServiceTypes",
  "HTTPRouteSimpleSameNamespace",
  "HTTPRouteWeight",
];

const TEST_FILES = [
  "test/worker/gateway.test.ts",
  "test/agent/gateway-edge.test.ts",
  "test/agent/gateway-status.test.ts",
  "test/agent/gateway-no-write.test.ts",
  "test/lab/gateway-demo.test.ts",
];

const read = (p: string) => readFileSync(path.join(ROOT, p), "utf8");

/** The report's rows: the names in the first column and the result column. */
function reportRows(md: string): { names: string[]; result: string }[] {
  const section = md.slice(md.indexOf("## Conformance report"));
  return section
    .split("\n")
    .filter((l) => /^\| (Gateway|HTTPRoute)/.test(l))
    .map((l) => {
      const [, first, result] = l.split("|").map((c) => c.trim());
      return { names: first!.match(/\b(?:GatewayClass|Gateway|HTTPRoute)[A-Za-z0-9]*\b/g) ?? [], result: result! };
    });
}

/** Titles of it()/describe() in the test files. */
function titles(): string[] {
  return TEST_FILES.flatMap((f) => [...read(f).matchAll(/\b(?:it|describe)(?:\.skipIf\([^)]*\))?\(\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
}

describe("the Gateway API conformance report", () => {
  const rows = reportRows(read("docs/gateway.md"));

  it("lists every upstream core test", () => {
    const listed = new Set(rows.flatMap((r) => r.names));
    expect(UPSTREAM_CORE.filter((n) => !listed.has(n))).toEqual([]);
  });

  it("names a test title for every test it says passes", () => {
    const all = titles().join("\n");
    const passing = rows.filter((r) => /^(passes|pass|partly|status part passes)\b/.test(r.result)).flatMap((r) => r.names);
    expect(passing.length).toBeGreaterThan(30);
    expect(passing.filter((n) => !new RegExp(`\\b${n}\\b`).test(all))).toEqual([]);
  });

  it("finds what it checks: a report row and a title each", () => {
    expect(reportRows("## Conformance report\n| HTTPRouteWeight | passes |\n| Gateway* | do not apply |")).toEqual([
      { names: ["HTTPRouteWeight"], result: "passes" },
      { names: ["Gateway"], result: "do not apply" },
    ]);
    expect(titles()).toContain("HTTPRouteWeight: traffic splits by weight and weight 0 gets none");
  });
});
