// The agent's flags that publish the gate's mode and port in the snapshot.
import { describe, expect, it } from "vitest";
import { agentFlagParser } from "../agent/parse-flags.ts";

const { parse } = agentFlagParser();

describe("--origins and --gate-port", () => {
  it("default to direct: nothing is added to the snapshot", async () => {
    expect((await parse([])).origins).toBeUndefined();
  });

  it("--origins gate publishes the gate's port (default 29080, settable, also from the environment)", async () => {
    expect((await parse(["--origins", "gate"])).origins).toEqual({ mode: "gate", port: 29080 });
    expect((await parse(["--origins", "gate", "--gate-port", "8443"])).origins).toEqual({ mode: "gate", port: 8443 });
    // commander reads option variables from process.env.
    Object.assign(process.env, { EDGELB_ORIGINS: "gate", EDGELB_GATE_PORT: "9000" });
    try {
      expect((await parse([])).origins).toEqual({ mode: "gate", port: 9000 });
    } finally {
      delete process.env.EDGELB_ORIGINS;
      delete process.env.EDGELB_GATE_PORT;
    }
    await expect(parse(["--origins", "tunnel"])).rejects.toThrow(/Allowed choices are direct, gate/);
    await expect(parse(["--origins", "gate", "--gate-port", "70000"])).rejects.toThrow(/out of range/);
  });
});
