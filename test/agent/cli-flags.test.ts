// The flags of this part of the agent, through the real CLI parser.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildProgram, quietErrors } from "../../sync-agent/cli/index.ts";
import type { AgentConfig } from "../../sync-agent/config.ts";

const dir = mkdtempSync(join(tmpdir(), "edgelb-flags-"));
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, "t0ken\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function parse(args: string[], env: Record<string, string> = {}): Promise<AgentConfig> {
  let config: AgentConfig | undefined;
  const program = quietErrors(buildProgram({ run: async (c) => void (config = c), env }));
  await program.parseAsync(["node", "edgelb-sync-agent", "--cluster", "home", "--worker-url", "https://edge.example.com", "--push-token-file", tokenFile, ...args]);
  return config!;
}

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
