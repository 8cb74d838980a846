import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { epochOf, isOlder, nextInstallEpoch, parseTombstone, tombstoneText, TOMBSTONE_SCHEMA } from "./stored.ts";

const clusterName = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const generation = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 1 });
const epoch = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

describe("tombstones", () => {
  it("round-trip: the text parses back to the deleted generation + 1 and the ended epoch", () => {
    fc.assert(
      fc.property(clusterName, generation, epoch, (cluster, g, e) => {
        const t = parseTombstone(tombstoneText(cluster, g, e, 0));
        expect(t).toEqual({ schema: TOMBSTONE_SCHEMA, cluster, generation: g + 1, deletedAt: "1970-01-01T00:00:00.000Z", installEpoch: e });
      }),
    );
  });

  it("anything else, including mutated tombstones, is not a tombstone and never throws", () => {
    const valid = tombstoneText("east", 4, 9, 0);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.string().map((s) => valid.slice(0, valid.length - 1) + s)), (text) => {
        const t = parseTombstone(text);
        if (t !== undefined) expect(t.schema).toBe(TOMBSTONE_SCHEMA);
      }),
    );
    expect(parseTombstone(valid.replace('"generation":5', '"generation":-1'))).toBeUndefined();
    expect(parseTombstone(JSON.stringify({ schema: "edgelb.dev/snapshot/v1", generation: 5 }))).toBeUndefined();
  });

  it("reads an install epoch only from sane metadata", () => {
    expect(epochOf({ installEpoch: 42 })).toBe(42);
    for (const m of [null, undefined, "42", { installEpoch: "42" }, { installEpoch: -1 }, { installEpoch: 1.5 }, { installEpoch: 2 ** 60 }]) {
      expect(epochOf(m), JSON.stringify(m)).toBeUndefined();
    }
  });
});

describe("ordering of stored values", () => {
  it("epochs decide when both are known, generations otherwise", () => {
    expect(isOlder({ epoch: 1, generation: 9 }, { epoch: 2, generation: 1 })).toBe(true);
    expect(isOlder({ epoch: 2, generation: 1 }, { epoch: 1, generation: 9 })).toBe(false);
    expect(isOlder({ epoch: undefined, generation: 1 }, { epoch: 2, generation: 9 })).toBe(true);
    expect(isOlder({ epoch: 3, generation: 8 }, { epoch: 3, generation: 9 })).toBe(true);
    expect(isOlder({ epoch: 3, generation: 9 }, { epoch: 3, generation: 9 })).toBe(false);
  });

  it("is a strict order: never both older than each other", () => {
    const version = fc.record({ epoch: fc.option(epoch, { nil: undefined }), generation });
    fc.assert(fc.property(version, version, (x, y) => !(isOlder(x, y) && isOlder(y, x))));
  });

  it("a new install's epoch follows the clock and always the ended one", () => {
    expect(nextInstallEpoch(undefined, 1000.7)).toBe(1000);
    expect(nextInstallEpoch(5000, 1000)).toBe(5001);
    expect(nextInstallEpoch(10, 1000)).toBe(1000);
  });
});
