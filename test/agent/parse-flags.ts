// The agent's command line as a test sees it: the real parser with the smallest valid sink (a worker URL
// and a push token file), returning the config the agent would run with.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { buildProgram, quietErrors } from "../../sync-agent/cli/index.ts";
import type { AgentConfig } from "../../sync-agent/config.ts";

/** A parser for this test file; its token file is removed after the file's tests. */
export function agentFlagParser(): { tokenFile: string; parse(args: string[], env?: Record<string, string>): Promise<AgentConfig> } {
  const dir = mkdtempSync(join(tmpdir(), "edgelb-flags-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "t0ken\n");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    tokenFile,
    async parse(args, env = {}) {
      let config: AgentConfig | undefined;
      const program = quietErrors(buildProgram({ run: async (c) => void (config = c), env }));
      await program.parseAsync(["node", "edgelb-sync-agent", "--cluster", "home", "--worker-url", "https://edge.example.com", "--push-token-file", tokenFile, ...args]);
      return config!;
    },
  };
}
