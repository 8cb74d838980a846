// Hostile cluster objects: whatever a GatewayClass, Gateway, HTTPRoute or
// ReferenceGrant holds (wrong types, junk values, missing fields), resolution
// never throws, and the gateway section it publishes is always one the worker
// accepts: a bad route is reported in its status, not pushed.
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { GatewaySection } from "../../worker/snapshot/gateway.ts";
import { resolveGateway } from "./resolve.ts";

const junk = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 2 }));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, junk);
const word = fc.constantFrom("a", "b", "web", "edge", "Edge", "*", "*.x.com", "x.com", "a\r\nb", "/", "/api", "(a+)+$", "(?=x)", "");
const path = fc.record({ type: maybe(fc.constantFrom("Exact", "PathPrefix", "RegularExpression", "Bogus")), value: maybe(word) }, { requiredKeys: [] });
const header = fc.record({ type: maybe(fc.constantFrom("Exact", "RegularExpression")), name: maybe(word), value: maybe(word) }, { requiredKeys: [] });
const match = fc.record({ path: maybe(path), headers: maybe(fc.array(header, { maxLength: 3 })), queryParams: maybe(fc.array(header, { maxLength: 2 })), method: maybe(fc.constantFrom("GET", "POST", "BREW")) }, { requiredKeys: [] });
const filter = fc.record(
  {
    type: maybe(fc.constantFrom("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "RequestMirror")),
    requestHeaderModifier: maybe(fc.record({ set: maybe(fc.array(header, { maxLength: 2 })), remove: maybe(fc.array(word, { maxLength: 2 })) }, { requiredKeys: [] })),
    requestRedirect: maybe(fc.record({ scheme: maybe(word), hostname: maybe(word), statusCode: maybe(fc.constantFrom(301, 302, 418)), port: maybe(fc.integer()), path: maybe(fc.record({ type: maybe(fc.constantFrom("ReplaceFullPath", "ReplacePrefixMatch")), replaceFullPath: maybe(word), replacePrefixMatch: maybe(word) }, { requiredKeys: [] })) }, { requiredKeys: [] })),
    urlRewrite: maybe(fc.record({ hostname: maybe(word), path: maybe(fc.record({ type: maybe(word), replaceFullPath: maybe(word) }, { requiredKeys: [] })) }, { requiredKeys: [] })),
  },
  { requiredKeys: [] },
);
const backendRef = fc.record({ group: maybe(fc.constantFrom("", "x.io")), kind: maybe(fc.constantFrom("Service", "Bucket")), name: maybe(fc.constantFrom("svc", "cip", "nope")), namespace: maybe(fc.constantFrom("d", "o")), port: maybe(fc.constantFrom(80, 81)), weight: maybe(fc.integer({ min: -5, max: 2_000_000 })), filters: maybe(fc.array(filter, { maxLength: 1 })) }, { requiredKeys: [] });
const rule = fc.record({ name: maybe(word), matches: maybe(fc.array(match, { maxLength: 3 })), filters: maybe(fc.array(filter, { maxLength: 2 })), backendRefs: maybe(fc.array(backendRef, { maxLength: 3 })) }, { requiredKeys: [] });
const route = fc.record({
  metadata: fc.record({ name: fc.constantFrom("r1", "r2", "R3"), namespace: fc.constantFrom("d", "o"), generation: maybe(fc.nat()), creationTimestamp: maybe(fc.constantFrom("2026-01-01T00:00:00Z", "not a date")) }),
  spec: maybe(fc.record({ parentRefs: maybe(fc.array(fc.record({ name: maybe(fc.constantFrom("gw", "x")), namespace: maybe(fc.constantFrom("d", "o")), sectionName: maybe(fc.constantFrom("http", "https", "nope")), port: maybe(fc.constantFrom(80, 443)) }, { requiredKeys: [] }), { maxLength: 3 })), hostnames: maybe(fc.array(word, { maxLength: 3 })), rules: maybe(fc.array(rule, { maxLength: 3 })) }, { requiredKeys: [] })),
});
const listener = fc.record({ name: maybe(fc.constantFrom("http", "https")), port: maybe(fc.constantFrom(80, 443)), protocol: maybe(fc.constantFrom("HTTP", "HTTPS", "TCP")), hostname: maybe(word), allowedRoutes: maybe(fc.record({ namespaces: maybe(fc.record({ from: maybe(fc.constantFrom("Same", "All", "Selector")), selector: maybe(fc.record({ matchLabels: maybe(fc.dictionary(word, word, { maxKeys: 1 })), matchExpressions: maybe(fc.array(fc.record({ key: maybe(word), operator: maybe(fc.constantFrom("In", "Exists", "Bogus")), values: maybe(fc.array(word, { maxLength: 2 })) }, { requiredKeys: [] }), { maxLength: 2 })) }, { requiredKeys: [] })) }, { requiredKeys: [] })) }, { requiredKeys: [] })) }, { requiredKeys: [] });
const gateway = fc.record({ metadata: fc.record({ name: fc.constantFrom("gw", "x"), namespace: fc.constantFrom("d", "o") }), spec: maybe(fc.record({ gatewayClassName: maybe(fc.constantFrom("edgelb", "other")), listeners: maybe(fc.array(listener, { maxLength: 3 })), addresses: maybe(fc.array(junk, { maxLength: 1 })) }, { requiredKeys: [] })) });

describe("resolveGateway with hostile objects", () => {
  it("never throws, and publishes only what the worker's schema accepts", () => {
    fc.assert(
      fc.property(fc.array(gateway, { maxLength: 3 }), fc.array(route, { maxLength: 4 }), fc.array(junk, { maxLength: 2 }), (gateways, routes, grants) => {
        const res = resolveGateway({
          gatewayClasses: [{ metadata: { name: "edgelb" }, spec: { controllerName: "edgelb.dev/gateway-controller" } }],
          gateways: gateways as any,
          httpRoutes: routes as any,
          referenceGrants: grants.map((spec) => ({ metadata: { name: "g", namespace: "d" }, spec })) as any,
          services: [
            { metadata: { name: "svc", namespace: "d" }, spec: { type: "NodePort", ports: [{ port: 80, nodePort: 30080, protocol: "TCP" }] } },
            { metadata: { name: "cip", namespace: "d" }, spec: { type: "ClusterIP", ports: [{ port: 80, protocol: "TCP" }] } },
          ],
          namespaces: [],
        });
        const parsed = v.safeParse(GatewaySection, res.section);
        if (!parsed.success) throw new Error(parsed.issues.map((i) => `${v.getDotPath(i)}: ${i.message}`).join("; "));
        for (const parents of res.routes.values()) for (const p of parents) expect(p.conditions.map((c) => c.type)).toEqual(["Accepted", "ResolvedRefs"]);
      }),
      { numRuns: 400 },
    );
  });
});
