// The demo's kubectl knobs: what a user may type, and the message for a typo.
import { describe, expect, it } from "vitest";
import { parseFault, parsePods } from "../../lab/demo/knobs.ts";

describe("sim.edgelb.dev/fault", () => {
  it("accepts the documented faults; absent or empty means none", () => {
    expect(parseFault(undefined)).toEqual({ ok: true, fault: "none" });
    expect(parseFault("")).toEqual({ ok: true, fault: "none" });
    expect(parseFault(" Down ")).toEqual({ ok: true, fault: "down" });
    for (const f of ["unhealthy", "error", "slow"]) expect(parseFault(f)).toEqual({ ok: true, fault: f });
  });

  it("names the valid values for anything else", () => {
    expect(parseFault("dead")).toEqual({
      ok: false,
      error: 'unknown sim.edgelb.dev/fault "dead": use one of none, down, unhealthy, error, slow',
    });
  });
});

describe("sim.edgelb.dev/pods", () => {
  const nodes = ["node-1", "node-2", "node-3"];
  it("is one pod per entry; repeats give a node more pods", () => {
    expect(parsePods("node-1, node-1,node-3", nodes)).toEqual({ ok: true, nodes: ["node-1", "node-1", "node-3"] });
    expect(parsePods("none", nodes)).toEqual({ ok: true, nodes: [] });
    expect(parsePods("", nodes)).toEqual({ ok: true, nodes: [] });
  });

  it("refuses unknown nodes and lists the real ones", () => {
    expect(parsePods("node-1,node-9", nodes)).toEqual({
      ok: false,
      error: 'sim.edgelb.dev/pods "node-1,node-9" names unknown node(s) node-9; nodes are node-1, node-2, node-3',
    });
  });
});
