// Reviewer's finding 1 (issue 18): a later cluster's exact name under an earlier
// cluster's wildcard must not take that name, with or without a steering rule.
import { describe, expect, it } from "vitest";
import { SNAPSHOT_SCHEMA, validateSnapshot, type Snapshot, type SnapshotInput } from "../snapshot/schema.ts";
import { buildIndex, lookupRoute } from "../config/routes.ts";
import { parseSteering } from "./settings.ts";
import { steerRequest } from "./request.ts";
import { hostClaims } from "./claims.ts";
import { NO_STEERING } from "./settings.ts";
function parse(input: Omit<SnapshotInput, "schema" | "generation" | "publishedAt">): Snapshot {
  const r = validateSnapshot({ schema: SNAPSHOT_SCHEMA, generation: 1, publishedAt: "2026-01-01T00:00:00Z", ...input });
  if (!r.ok) throw new Error(r.error);
  return r.snapshot;
}
const owner = parse({ cluster: "east", nodes: [{ name: "e1", address: "192.0.2.1", healthy: true }],
  services: [{ namespace: "shop", name: "web", hostnames: ["*.example.com"], nodePort: 30080 }] });
const attacker = parse({ cluster: "evil", nodes: [{ name: "x1", address: "203.0.113.9", healthy: true }],
  services: [{ namespace: "x", name: "x", hostnames: ["shop.example.com"], nodePort: 30666 }] });
describe("hostname ownership across exact and wildcard patterns", () => {
  const index = buildIndex([{ cluster: "east", snapshot: owner }, { cluster: "evil", snapshot: attacker }]);
  it("without a steering entry, a later cluster's exact name must not take a name an earlier cluster's wildcard serves", () => {
    expect(lookupRoute(index, "shop.example.com")!.cluster).toBe("east");
  });
  it("with a wildcard steering entry that lists only east, the name must still be served by east", () => {
    const steering = parseSteering(JSON.stringify({ "*.example.com": { policy: "failover", clusters: ["east"] } }), ["east", "evil"]);
    const route = lookupRoute(index, "shop.example.com")!;
    const s = steerRequest(index, route, "shop.example.com", new Request("https://shop.example.com/"), {
      steering: (steering as any).steering ?? steering, staleAfterMs: undefined, localMode: false,
      cluster: () => ({}), now: () => 0, random: () => 0.5,
    })!;
    expect(s.routes.map((r) => r.cluster)).toEqual(["east"]);
  });
  it("the refused exact claim is listed (log and status page) with east as the owner", () => {
    const claims = hostClaims(index, NO_STEERING);
    expect(claims).toContainEqual(expect.objectContaining({ pattern: "shop.example.com", owner: "east", refused: ["evil"] }));
  });
  it("a steering rule for the exact name that lists evil lets evil's own route serve it", () => {
    const steering = parseSteering(JSON.stringify({ "shop.example.com": { policy: "failover", clusters: ["evil", "east"] } }), ["east", "evil"]);
    if (!steering.ok) throw new Error(steering.error);
    const route = lookupRoute(index, "shop.example.com")!;
    const s = steerRequest(index, route, "shop.example.com", new Request("https://shop.example.com/"), {
      steering: steering.steering, staleAfterMs: undefined, localMode: false, cluster: () => ({}), now: () => 0, random: () => 0.5,
    })!;
    expect(s.routes.map((r) => [r.cluster, r.pattern])).toEqual([["evil", "shop.example.com"], ["east", "*.example.com"]]);
  });
});
