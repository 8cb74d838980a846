// The client's fields from a parsed response head.
import { describe, expect, it } from "vitest";
import type { ResponseHead } from "./response-parser.ts";
import { responseHeaders } from "./response-body.ts";

const head = (headers: [string, string][]): ResponseHead => ({ version: "1.1", status: 200, statusText: "OK", headers, framing: { kind: "none" } });

describe("responseHeaders", () => {
  it("drops hop-by-hop fields and those the origin's Connection names, keeps the rest in order", () => {
    const h = head([["x-a", "1"], ["connection", "close, x-secret"], ["x-secret", "s"], ["transfer-encoding", "chunked"], ["set-cookie", "a"], ["set-cookie", "b"]]);
    expect(responseHeaders(h)).toEqual([["x-a", "1"], ["set-cookie", "a"], ["set-cookie", "b"]]);
    expect(responseHeaders(head([["x-a", "1"], ["sec-websocket-accept", "k"]]), ["sec-websocket-accept"])).toEqual([["x-a", "1"]]);
  });

  it("hands over the parsed fields as they are when none is to be dropped (no copy per request)", () => {
    const fields: [string, string][] = [["content-length", "2"], ["x-edgelb-node", "node-1"]];
    expect(responseHeaders(head(fields))).toBe(fields);
  });
});
