// What both commands in the image (edgelb-sync-agent, edgelb-node-gate) do as processes: parse argv
// into an exit code, wait for SIGTERM/SIGINT, and run when started as a script. Exit codes: 0 clean
// shutdown or --help, 1 runtime failure (stack on stderr, unless already logged), 2 bad flags or environment (one line).
import { pathToFileURL } from "node:url";
import { CommanderError, type Command } from "commander";
import { EXIT_USAGE, quietErrors, usageMessage } from "../cli/index.ts";

const HELP_CODES = new Set(["commander.helpDisplayed", "commander.help", "commander.version"]);

/**
 * A failure the command has already reported as a structured log line (e.g. gate.port_taken): exit 1
 * without printing it again as a stack trace, which reads like a crash in `kubectl logs`.
 */
export class LoggedFailure extends Error {}

/** Parses argv with the command's program and runs it; resolves to the process exit code. */
export async function runCommand(program: Command, argv: readonly string[]): Promise<number> {
  const name = program.name();
  try {
    await quietErrors(program).parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError && HELP_CODES.has(err.code)) return 0;
    const usage = usageMessage(err);
    if (usage !== undefined) {
      process.stderr.write(`${name}: ${usage}\n(see ${name} --help)\n`);
      return EXIT_USAGE;
    }
    if (err instanceof LoggedFailure) return 1;
    process.stderr.write(`${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

/** Resolves with "SIGTERM", "SIGINT" or "abort", whichever comes first; the other listeners are removed. */
export function untilStopped(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const onTerm = () => done("SIGTERM");
    const onInt = () => done("SIGINT");
    const onAbort = () => done("abort");
    const done = (why: string) => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      signal?.removeEventListener("abort", onAbort);
      resolve(why);
    };
    process.once("SIGTERM", onTerm);
    process.once("SIGINT", onInt);
    if (signal?.aborted) done("abort");
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Runs main() and exits with its code when the module at `moduleUrl` is the script node was started with. */
export function runIfMain(moduleUrl: string, main: () => Promise<number>): void {
  if (process.argv[1] && moduleUrl === pathToFileURL(process.argv[1]).href) {
    main().then((code) => process.exit(code));
  }
}
