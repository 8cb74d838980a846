// edgelb-sync-agent entry point (`npm run agent -- …`, the `edgelb-sync-agent` bin).
//
// Extension points for the modules that make the agent a good cluster citizen
// (leader election, Service status + Events, metrics):
// - PLUGINS below: each gets the created-but-not-started Agent (see agent.ts:
//   `agent.controller.addHooks(...)`, `agent.controller.shouldWrite`,
//   `agent.controller.resume()`, `agent.informers.restarts()`, `agent.health.states()`)
//   and may return a stop function, called on shutdown before the agent stops.
// - Subcommands (e.g. `cleanup`): add them in `buildCli()` with
//   `program.command("cleanup")`, reusing `addSinkOptions` / `resolveSinkConfig`
//   from ./cli/index.ts and `buildSink` from ./agent.ts.
// Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 runtime failure, 2 bad
// flags, environment or unreadable files (one line on stderr).
import type { Command } from "commander";
import { createAgent, type Agent, type AgentDeps } from "./agent.ts";
import { buildProgram, CliError } from "./cli/index.ts";
import type { AgentConfig } from "./config.ts";
import { citizenPlugin } from "./citizen/attach.ts";
import { addCitizenOptions, addCleanupCommand, resolveCitizenConfig, type CitizenFlags } from "./citizen/cli.ts";
import { runCommand, runIfMain, untilStopped } from "./process/index.ts";

export type AgentPlugin = (agent: Agent) => Promise<(() => Promise<void>) | void> | (() => Promise<void>) | void;

/** Plugins attached to every agent the CLI starts, in order. */
export const PLUGINS: AgentPlugin[] = [];

/** Runs the agent until SIGTERM/SIGINT (or `signal` aborts). */
export async function runAgent(config: AgentConfig, signal?: AbortSignal, plugins: AgentPlugin[] = PLUGINS, deps: AgentDeps = {}): Promise<void> {
  let agent: Agent;
  try {
    agent = createAgent(config, deps);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  // "starting: …" first: the plugins (leader election) log as they attach.
  agent.announce();
  const stops: (() => Promise<void>)[] = [];
  for (const plugin of plugins) {
    const stop = await plugin(agent);
    if (stop) stops.push(stop);
  }
  await agent.start();
  const sig = await untilStopped(signal);
  agent.log.info({ signal: sig }, `received ${sig}, shutting down`);
  // Order matters: no new push, the push in flight lands, and only then do the
  // plugins stop (the lease is released), so the next leader's first push can
  // never be overtaken by ours.
  await agent.stopWriting();
  for (const stop of stops.reverse()) await stop().catch((err: Error) => agent.log.error({ err: err.message }, `plugin stop failed: ${err.message}`));
  await agent.stop();
}

export function buildCli(env: NodeJS.ProcessEnv = process.env): Command {
  // Leader election, Service status/Events and metrics (sync-agent/citizen):
  // their flags join the agent's, and they attach as the first plugin.
  const program: Command = buildProgram({
    run: (config) => {
      const citizen = resolveCitizenConfig(program.opts<CitizenFlags>(), env, { dryRun: config.dryRun });
      return runAgent(config, undefined, [citizenPlugin(citizen), ...PLUGINS]);
    },
    env,
  });
  addCitizenOptions(program);
  addCleanupCommand(program, env);
  return program;
}

/** Parses argv and runs; resolves to the process exit code. */
export function main(argv: string[] = process.argv, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runCommand(buildCli(env), argv);
}

runIfMain(import.meta.url, () => main());
