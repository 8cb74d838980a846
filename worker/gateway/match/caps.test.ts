// The worker's side of the regex cap, through the whole worker: a pushed
// snapshot whose routes hold more unindexable regexes on one hostname than a
// decision may run is refused at load, and the last good one keeps serving.
import { describe, expect, it } from "vitest";
import { testEdge } from "../../../test/worker/helpers.ts";
import type { GatewaySectionInput } from "../../snapshot/gateway.ts";
import { MAX_REGEX_PATHS_PER_KEY } from "../../snapshot/regex-key.ts";
import { SNAPSHOT_SCHEMA, type SnapshotInput } from "../../snapshot/schema.ts";

const HOST = "caps.example.com";

/** Routes that redirect: they answer without any origin, so only the routing decision is under test. */
function regexRoute(i: number, pattern: string): GatewaySectionInput["routes"][number] {
  return {
    namespace: "default",
    name: `r-${i}`,
    creationTimestamp: "2026-12-01T00:00:00Z",
    gateway: "default/edge",
    hostnames: [HOST],
    rules: [{ matches: [{ path: { type: "RegularExpression", value: pattern } }], filters: [{ type: "RequestRedirect", requestRedirect: { path: { type: "ReplaceFullPath", replaceFullPath: `/to/${i}` } } }] }],
  };
}

function snapshot(generation: number, routes: GatewaySectionInput["routes"]): SnapshotInput {
  return { schema: SNAPSHOT_SCHEMA, cluster: "default", generation, publishedAt: new Date().toISOString(), nodes: [], services: [], gateway: { backends: [], routes } };
}

describe("worker: a snapshot over the per-hostname regex cap", () => {
  it("is refused at load with a clear error, and the last good routes keep serving", async () => {
    const edge = testEdge();
    const good = Array.from({ length: MAX_REGEX_PATHS_PER_KEY }, (_, i) => regexRoute(i, `/[a-z]+-${i}`));
    await edge.seed(snapshot(1, good));
    const before = await edge.request(HOST, "/abc-7", { redirect: "manual" });
    expect(before.status).toBe(302);
    expect(before.headers.get("location")).toBe(`https://${HOST}/to/7`);

    const res = await edge.push(snapshot(2, [...good, regexRoute(999, "/[a-z]+-new")]));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(`hostname ${HOST} would have ${MAX_REGEX_PATHS_PER_KEY + 1} distinct RegularExpression path patterns`);
    // Generation 1 still routes; the refused route never does.
    expect((await edge.request(HOST, "/abc-7", { redirect: "manual" })).headers.get("location")).toBe(`https://${HOST}/to/7`);
    expect((await edge.request(HOST, "/abc-new", { redirect: "manual" })).status).toBe(404);
  });
});
