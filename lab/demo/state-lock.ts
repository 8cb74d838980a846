// One `npm start` per state directory. The lab writes its kubeconfig and
// tokens there and removes them when it stops, so a second lab on the same
// directory would overwrite the first one's files and delete them under it.
// The lock file names the launcher's pid, its worker URL and its child
// processes (workerd): a launcher that was killed hard (SIGKILL, OOM killer)
// cannot stop its children, so the next start finds them through the lock
// and stops them before it takes the directory over.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DemoError } from "./ports.ts";

/** What the lock file holds (JSON). */
export interface LockRecord {
  pid: number;
  /** The worker's URL, once it is up. */
  url?: string;
  /** The launcher's child processes, each with its command line (a pid the kernel reuses has another one). */
  children: { pid: number; command: string }[];
}

export interface StateLock {
  readonly file: string;
  /** Records the worker's URL and the launcher's current child processes. */
  update(info: { url: string }): void;
  /** Removes the lock if it is still ours. */
  release(): void;
}

export const LOCK_FILE = "lock";

/** Whether a process with this pid runs (EPERM: it runs but is someone else's; a zombie has ended). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  return !stateOf(pid)?.startsWith("Z");
}

/** The process state `ps` shows ("S", "R", "Z" for a zombie whose parent has not reaped it…), or undefined. */
function stateOf(pid: number): string | undefined {
  try {
    return execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Command line of a running process, or undefined (gone). `ps` works on Linux and macOS alike. */
function commandOf(pid: number): string | undefined {
  try {
    return execFileSync("ps", ["-o", "args=", "-p", String(pid)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of `parent` with their command lines. */
export function childrenOf(parent: number): { pid: number; command: string }[] {
  let table: string;
  try {
    table = execFileSync("ps", ["-A", "-o", "pid=,ppid=,args="], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return [];
  }
  const out: { pid: number; command: string }[] = [];
  for (const line of table.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m && Number(m[2]) === parent) out.push({ pid: Number(m[1]), command: m[3]!.trim() });
  }
  return out;
}

function readLock(file: string): LockRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, "utf8")) as Partial<LockRecord>;
    if (typeof r.pid !== "number" || !Number.isInteger(r.pid) || r.pid <= 0) return undefined;
    const children = Array.isArray(r.children) ? r.children.filter((c) => Number.isInteger(c?.pid) && c.pid > 0 && typeof c.command === "string") : [];
    return { pid: r.pid, ...(typeof r.url === "string" ? { url: r.url } : {}), children };
  } catch {
    return undefined;
  }
}

/**
 * Stops what an earlier launcher left running: each recorded child that
 * still runs the same command line gets SIGTERM, then SIGKILL after
 * `graceMs`. Returns the pids it stopped.
 */
async function stopOrphans(record: LockRecord, graceMs: number): Promise<number[]> {
  const stopped: number[] = [];
  for (const c of record.children) {
    if (!alive(c.pid) || commandOf(c.pid) !== c.command) continue;
    try {
      process.kill(c.pid, "SIGTERM");
    } catch {
      continue;
    }
    const deadline = Date.now() + graceMs;
    while (alive(c.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive(c.pid)) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        /* gone meanwhile */
      }
    }
    stopped.push(c.pid);
  }
  return stopped;
}

/**
 * Takes `<dir>/lock` for this process. Refuses (DemoError naming the other
 * launcher's pid and --state-dir) while another live `npm start` holds it;
 * takes over a lock whose launcher is gone, stopping the children it left
 * running and removing its stale files (the names in `dir` `staleFile` picks).
 * `say` reports what was cleaned up.
 */
export async function takeStateLock(
  dir: string,
  opts: { staleFile?: (name: string) => boolean; say?: (text: string) => void; graceMs?: number; pid?: number } = {},
): Promise<StateLock> {
  const pid = opts.pid ?? process.pid;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const relative = path.relative(process.cwd(), dir);
  const shown = relative && !relative.startsWith("..") ? relative : dir; // .edgelb, or where it is
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify({ pid, children: [] } satisfies LockRecord), { flag: "wx", mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 3) throw err;
    }
    const held = readLock(file);
    if (held && held.pid !== pid && alive(held.pid)) {
      throw new DemoError(
        `${shown} is used by another npm start (pid ${held.pid}${held.url ? `, ${held.url}` : ""}): stop it, or give this one its own directory: npm start -- --state-dir <dir>`,
      );
    }
    // The launcher is gone (or the file is unreadable): what it left behind is stale.
    if (held) {
      const stopped = await stopOrphans(held, opts.graceMs ?? 3000);
      for (const f of readdirSync(dir)) if (f !== LOCK_FILE && opts.staleFile?.(f)) rmSync(path.join(dir, f), { force: true });
      opts.say?.(
        `cleaned up after an earlier npm start that did not stop (pid ${held.pid})` +
          (stopped.length ? `: stopped the process${stopped.length > 1 ? "es" : ""} it left running (pid ${stopped.join(", ")})` : ""),
      );
    }
    rmSync(file, { force: true });
  }
  let record: LockRecord = { pid, children: [] };
  const ours = () => readLock(file)?.pid === pid;
  return {
    file,
    update(info) {
      if (!ours()) return;
      record = { pid, url: info.url, children: childrenOf(pid) };
      writeFileSync(file, JSON.stringify(record), { mode: 0o600 });
    },
    release() {
      if (ours()) rmSync(file, { force: true });
    },
  };
}
