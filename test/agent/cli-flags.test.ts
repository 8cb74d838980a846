// The flags of this part of the agent, through the real CLI parser.
import { describe, expect, it } from "vitest";
import { agentFlagParser } from "./parse-flags.ts";

const { parse, tokenFile } = agentFlagParser();

describe("agent flags", () => {
  it("keeps where the push token came from, so a rotated file is re-read", async () => {
    expect(await parse([])).toMatchObject({ pushToken: "t0ken", pushTokenFile: tokenFile });
  });

  it("--take-over and --max-concurrent-probes", async () => {
    const defaults = await parse([]);
    expect(defaults.takeOver).toBe(false);
    expect(defaults.health.maxConcurrentProbes).toBe(64);
    const set = await parse(["--take-over", "--max-concurrent-probes", "8"]);
    expect(set.takeOver).toBe(true);
    expect(set.health.maxConcurrentProbes).toBe(8);
    expect((await parse([], { EDGELB_TAKE_OVER: "true" })).takeOver).toBe(true);
    await expect(parse(["--max-concurrent-probes", "0"])).rejects.toThrow(/out of range/);
  });
});
