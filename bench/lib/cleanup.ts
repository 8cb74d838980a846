// Everything the bench starts (child processes, servers, workerd instances,
// temp dirs) registers a stop function here, so a normal end, an error or
// Ctrl-C all leave nothing running. Stops run newest first, like nested
// try/finally. Child processes and temp dirs also register a synchronous
// stop that runs on process exit: Miniflare installs its own SIGINT handler
// that exits at once, before any asynchronous cleanup could finish.
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

type Stop = () => Promise<void> | void;

const stops = new Map<number, { what: string; stop: Stop; sync?: () => void }>();
let nextId = 1;
let installed = false;
let exiting = false;

/**
 * Registers a stop function (and optionally a synchronous last resort for
 * process exit); returns a function that runs the stop once and unregisters it.
 */
export function track(what: string, stop: Stop, sync?: () => void): () => Promise<void> {
  install();
  const id = nextId++;
  stops.set(id, { what, stop, ...(sync ? { sync } : {}) });
  return async () => {
    const entry = stops.get(id);
    if (!entry) return;
    stops.delete(id);
    await entry.stop();
  };
}

/** Tracks a child process: SIGTERM, then SIGKILL if it lingers. */
export function trackChild(what: string, child: ChildProcess): () => Promise<void> {
  return track(what, () => killChild(child), () => signalChild(child));
}

/** Tracks a temp dir: removed at the end, also on a hurried exit. */
export function trackDir(dir: string): () => Promise<void> {
  return track(`temp dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }), () => rmSync(dir, { recursive: true, force: true }));
}

function signalChild(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
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
  for (const [id, { what, stop }] of entries) {
    stops.delete(id);
    try {
      await stop();
    } catch (err) {
      process.stderr.write(`bench: cleanup of ${what} failed: ${(err as Error).message}\n`);
    }
  }
}

function syncCleanup(): void {
  for (const { sync } of [...stops.values()].reverse()) {
    try {
      sync?.();
    } catch {
      /* best effort on exit */
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", syncCleanup);
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\nbench: ${signal}: stopping everything it started…\n`);
    // Children first and synchronously: another handler may exit the process next.
    syncCleanup();
    const hard = setTimeout(() => process.exit(130), 15_000);
    hard.unref();
    void cleanupAll().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}
