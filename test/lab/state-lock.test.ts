// One `npm start` per state directory (lab/demo/state-lock.ts): a second one
// is refused with the first's pid and the flag to use; a lock whose launcher
// is gone is taken over, and the processes that launcher left running are
// stopped (only those still running the recorded command line).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { childrenOf, LOCK_FILE, takeStateLock } from "../../lab/demo/state-lock.ts";

const started: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "edgelb-lock-"));
  dirs.push(d);
  return d;
}

/** A long-running process (stands in for a launcher or its workerd). */
async function sleeper(): Promise<ChildProcess> {
  const c = spawn("sleep", ["600"], { stdio: "ignore" });
  started.push(c);
  await new Promise((resolve, reject) => c.once("spawn", resolve).once("error", reject));
  return c;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn("true", { stdio: "ignore" });
  await new Promise((r) => c.once("exit", r));
  return c.pid!;
}

/** Whether `pid` runs (a zombie not reaped yet has ended). */
const isAlive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

describe("the lab's state-directory lock", () => {
  it("refuses a second npm start while the first runs, naming its pid, its URL and --state-dir; its files stay", async () => {
    const dir = stateDir();
    const first = await sleeper();
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: first.pid, url: "http://127.86.0.1:8787", children: [] }));
    writeFileSync(path.join(dir, "push-token"), "the first lab's token\n");
    await expect(takeStateLock(dir, { staleFile: () => true })).rejects.toThrow(
      new RegExp(`is used by another npm start \\(pid ${first.pid}, http://127\\.86\\.0\\.1:8787\\): stop it, or give this one its own directory: npm start -- --state-dir <dir>$`),
    );
    expect(readFileSync(path.join(dir, "push-token"), "utf8")).toBe("the first lab's token\n");
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid).toBe(first.pid);
  });

  it("takes over from a launcher killed hard: stops the workerd it left running and removes its stale files", async () => {
    const dir = stateDir();
    const orphan = await sleeper(); // what the dead launcher's workerd is
    const reused = await sleeper(); // a recorded pid now running something else: never touched
    const command = childrenOf(process.pid).find((c) => c.pid === orphan.pid)!.command;
    expect(command).toBe("sleep 600");
    const launcher = await deadPid();
    writeFileSync(
      path.join(dir, LOCK_FILE),
      JSON.stringify({ pid: launcher, url: "http://127.86.0.1:8787", children: [{ pid: orphan.pid, command }, { pid: reused.pid, command: "/usr/bin/workerd serve" }] }),
    );
    writeFileSync(path.join(dir, "push-token"), "stale\n");
    writeFileSync(path.join(dir, "notes.txt"), "the user's own file\n");
    const said: string[] = [];
    const lock = await takeStateLock(dir, { staleFile: (f) => f === "push-token", say: (t) => said.push(t) });
    expect(said).toEqual([`cleaned up after an earlier npm start that did not stop (pid ${launcher}): stopped the process it left running (pid ${orphan.pid})`]);
    expect(isAlive(orphan.pid!)).toBe(false);
    expect(isAlive(reused.pid!)).toBe(true);
    expect(existsSync(path.join(dir, "push-token"))).toBe(false);
    expect(existsSync(path.join(dir, "notes.txt"))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);

    // It records its own children for the next one, and gives the directory back when it stops.
    const child = await sleeper();
    lock.update({ url: "http://127.86.0.1:8788" });
    const record = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8"));
    expect(record.url).toBe("http://127.86.0.1:8788");
    expect(record.children).toContainEqual({ pid: child.pid, command: "sleep 600" });
    lock.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it("an unreadable lock file does not block a start forever", async () => {
    const dir = stateDir();
    writeFileSync(path.join(dir, LOCK_FILE), "{not json");
    const lock = await takeStateLock(dir);
    expect(JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    lock.release();
  });
});
