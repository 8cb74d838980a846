// The sync agent as users run it (the real CLI in its own process), so the
// chaos suite can SIGKILL it: no shutdown hook runs, the Lease stays held
// until it expires, and the next process must pick up from what is stored.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface AgentLine {
  msg: string;
  /** Which process (1, 2, …) wrote it. */
  run: number;
  [k: string]: unknown;
}

export interface AgentProcess {
  readonly run: number;
  readonly pid: number | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the process has ended. */
  readonly ended: boolean;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `node --import tsx sync-agent/main.ts ...args`; its JSON log lines go to `lines`. */
export function spawnAgent(args: string[], env: Record<string, string>, lines: AgentLine[], run: number): AgentProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("EDGELB_") && !k.startsWith("CLOUDFLARE_")));
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "sync-agent/main.ts", ...args], {
    cwd: ROOT,
    env: { ...clean, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      lines.push({ ...(JSON.parse(line) as { msg: string }), run });
    } catch {
      lines.push({ msg: line, run });
    }
  });
  child.stderr!.on("data", (d: Buffer) => lines.push({ msg: `stderr: ${d.toString().trimEnd()}`, run }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    run,
    pid: child.pid,
    exited,
    get ended() {
      return ended;
    },
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
