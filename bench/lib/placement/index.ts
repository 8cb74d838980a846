// Where the bench's processes run. Unpinned, the kernel moves workerd, the
// load generator and the origins between the 2 cores as it likes, and a round
// where workerd shared a core with its load generator is a different
// experiment from one where it did not. Pinned (taskset, util-linux), every
// workerd runs on the last CPU the bench was given and everything else (the
// load generator, the bench process serving the origins) on the others, the
// same for every row. Section 1 only: section 1g stays unpinned (a gate on a
// CPU of its own would stop costing throughput). taskset absent or refused,
// fewer than 2 CPUs allowed, or EDGELB_BENCH_PIN=0: nothing is pinned and the
// notes say so.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { findBinary } from "../loadgen.ts";

export type Role = "worker" | "rest";

export interface Placement {
  /** Whether processes are pinned. */
  pinned: boolean;
  /** The CPUs of each role when pinned (what limits a row: bench/lib/cores). */
  cpus?: Record<Role, number[]>;
  /** How processes were placed, for the results' notes. */
  describe(): string;
  /** The command line that starts `cmd` on the role's CPUs. */
  command(role: Role, cmd: string, args: readonly string[]): [string, string[]];
  /** Moves a running process (all its threads) to the role's CPUs. */
  pin(pid: number, role: Role, what: string): void;
  /** Gives a process every CPU back (the bench's own process, after its section). */
  release(pid: number): void;
}

/** "0-2,5" → [0, 1, 2, 5] (the kernel's CPU list syntax). Pure. */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`not a CPU list: ${JSON.stringify(list)}`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let c = a; c <= b; c++) out.push(c);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

/** CPU lists per role among the CPUs this process may use: workerd on the last, the rest on the others. Pure. */
export function cpuLists(allowed: readonly number[]): Record<Role, string> | undefined {
  if (allowed.length < 2) return undefined;
  return { worker: String(allowed[allowed.length - 1]), rest: allowed.slice(0, -1).join(",") };
}

/** The kernel's CPU list for a process (Cpus_allowed_list), or undefined when it cannot be read. */
export function allowedCpuList(pid: number | "self" = "self"): string | undefined {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return undefined;
  }
}

export function unpinned(why: string): Placement {
  return {
    pinned: false,
    describe: () => `processes not pinned (${why}): the kernel placed workerd, the load generator and the origins on the ${os.cpus().length} cores as it chose`,
    command: (_role, cmd, args) => [cmd, [...args]],
    pin: () => {},
    release: () => {},
  };
}

/**
 * Pins within the CPUs this process was given (taskset, a cpuset, systemd's CPUAffinity), never beyond them;
 * gives back exactly those on release. Unpinned when fewer than 2 are allowed or taskset cannot place a process.
 */
export function choosePlacement(env: NodeJS.ProcessEnv = process.env, own: string | undefined = allowedCpuList()): Placement {
  if (env.EDGELB_BENCH_PIN === "0") return unpinned("EDGELB_BENCH_PIN=0");
  const ownList = own ?? `0-${os.cpus().length - 1}`;
  const allowed = parseCpuList(ownList);
  const lists = cpuLists(allowed);
  if (!lists) return unpinned(`${allowed.length} CPU allowed`);
  const taskset = findBinary("taskset");
  if (!taskset) return unpinned("taskset (util-linux) not installed");
  try {
    // A cpuset may refuse a CPU the affinity mask names: try both lists before promising them.
    for (const list of [lists.worker, lists.rest]) execFileSync(taskset, ["-c", list, "true"], { stdio: "ignore" });
  } catch (err) {
    return unpinned(`taskset could not place a process: ${(err as Error).message.split("\n")[0]}`);
  }
  const failures: string[] = [];
  const set = (list: string, pid: number) => {
    execFileSync(taskset, ["-a", "-p", "-c", list, String(pid)], { stdio: "ignore" });
    // taskset -a says nothing about a pid that is gone: read back what the kernel holds.
    const held = allowedCpuList(pid);
    if (held === undefined || parseCpuList(held).join(",") !== parseCpuList(list).join(",")) throw new Error(`the kernel holds CPUs ${held ?? "?"} for it, not ${list}`);
  };
  return {
    pinned: true,
    cpus: { worker: parseCpuList(lists.worker), rest: parseCpuList(lists.rest) },
    describe: () =>
      failures.length
        ? `pinning FAILED for ${failures.join("; ")}: those processes ran wherever the kernel put them`
        : `processes pinned with taskset among the CPUs the bench was given (${ownList}): every workerd on CPU ${lists.worker}; the load generator and the bench process serving the origins on CPU ${lists.rest} (the same for every row; EDGELB_BENCH_PIN=0 turns it off)`,
    command: (role, cmd, args) => [taskset, ["-c", lists[role], cmd, ...args]],
    pin(pid, role, what) {
      try {
        set(lists[role], pid);
      } catch (err) {
        failures.push(`${what} (${(err as Error).message.split("\n")[0]})`);
      }
    },
    release(pid) {
      try {
        set(ownList, pid);
      } catch {
        /* the process is gone or was never pinned */
      }
    },
  };
}
