// Same work for every row of a target, the pure parts: a target whose rows'
// origins answered different sizes is invalid, and the raw floor's answer is
// de-framed to the origin's body. The rows themselves, started as the bench
// starts them, are checked in dataplane.test.ts ("answer the same bytes").
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { dechunkedBytes, originBodyBytes } from "../../bench/lib/verify.ts";
import { summarize, type RowSpec } from "../../bench/lib/rows.ts";
import { dataPlaneTargets, DATAPLANE_PATH } from "../../bench/dataplane.ts";

const round = { rps: 100, p50Ms: 1, p99Ms: 2, requests: 200, bytes: 4000, errors: 0, cpuS: 0.04 };
const spec = (id: string): RowSpec => ({ id, label: `(${id})`, url: "http://x", path: DATAPLANE_PATH, connections: 1, expect: { nodes: ["node-1"] } });

describe("a target whose rows' answers differ in size", () => {
  it("is invalid, naming each row's size", () => {
    const rows = ["c", "cA", "d", "e", "c2", "f"].map((id) => ({ ...summarize(spec(id), Array(8).fill(round), [], []), answerBytes: id === "d" ? [345] : [19] }));
    const byId = (id: string) => rows.find((r) => r.spec.id === id);
    const d = dataPlaneTargets(byId).filter((t) => t.target.startsWith("(d)"));
    expect(d).toHaveLength(2);
    for (const t of d) {
      expect(t.verdict).toBe("invalid");
      expect(t.limit).toMatch(/answers differ in size \(d: 345 B; c: 19 B\)/);
    }
    // The socket targets' rows answered alike: judged as usual.
    expect(dataPlaneTargets(byId).find((t) => t.target.startsWith("(e)"))!.verdict).not.toBe("invalid");
  });
});

const chunked = (parts: string[]) => parts.filter((p) => p.length).map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join("") + "0\r\n\r\n";

describe("originBodyBytes (the raw floor's answer, de-framed)", () => {
  it("counts a plain row's body as is, and a raw row's body after the origin's head", () => {
    const probe = (head: string, bytes = Buffer.byteLength(head)) => ({ status: 200, node: undefined, head, bytes });
    expect(originBodyBytes({}, probe("node-1: status 200\n"))).toBe(19);
    expect(originBodyBytes({ rawHttp: true }, probe("HTTP/1.1 200 OK\r\ncontent-length: 19\r\n\r\nnode-1: status 200\n"))).toBe(19);
    expect(originBodyBytes({ rawHttp: true }, probe(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(["node-1: status 200\n"])}`))).toBe(19);
    expect(originBodyBytes({ rawHttp: true }, probe("HTTP/1.1 200 OK\r\ncontent-le"))).toBeUndefined(); // no whole head
    expect(originBodyBytes({}, { status: 0, node: undefined, head: "", bytes: 0, error: "refused" })).toBeUndefined();
  });

  it("de-chunks any split of any body to its length, and refuses a cut or malformed framing", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 40 }), { maxLength: 6 }), (parts) => {
        const body = new TextEncoder().encode(chunked(parts));
        expect(dechunkedBytes(body)).toBe(Buffer.byteLength(parts.join("")));
        expect(dechunkedBytes(body.subarray(0, body.length - 1))).toBeUndefined();
      }),
    );
    expect(dechunkedBytes(new TextEncoder().encode("zz\r\nab\r\n0\r\n\r\n"))).toBeUndefined();
    expect(dechunkedBytes(new TextEncoder().encode("2\r\nabc\r\n0\r\n\r\n"))).toBeUndefined();
  });
});
