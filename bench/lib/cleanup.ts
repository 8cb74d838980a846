// Everything the bench starts (child processes, servers, workerd instances)
// registers a stop function here, so a normal end, an error or Ctrl-C all
// leave nothing running. Stops run newest first, like nested try/finally.
import type { ChildProcess } from "node:child_process";

type Stop = () => Promise<void> | void;

const stops = new Map<number, { what: string; stop: Stop }>();
let nextId = 1;
let installed = false;
let exiting = false;

/** Registers a stop function; returns a function that runs it once and unregisters it. */
export function track(what: string, stop: Stop): () => Promise<void> {
  install();
  const id = nextId++;
  stops.set(id, { what, stop });
  return async () => {
    const entry = stops.get(id);
    if (!entry) return;
    stops.delete(id);
    await entry.stop();
  };
}

/** Tracks a child process: SIGTERM, then SIGKILL if it lingers. */
export function trackChild(what: string, child: ChildProcess): () => Promise<void> {
  return track(what, () => killChild(child));
}

export async function killChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs every registered stop (newest first), logging failures without stopping. */
export async function cleanupAll(): Promise<void> {
  const entries = [...stops.entries()].reverse();
  stops.clear();
  for (const [, { what, stop }] of entries) {
    try {
      await stop();
    } catch (err) {
      process.stderr.write(`bench: cleanup of ${what} failed: ${(err as Error).message}\n`);
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\nbench: ${signal}: stopping everything it started…\n`);
    const hard = setTimeout(() => process.exit(130), 15_000);
    hard.unref();
    void cleanupAll().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
