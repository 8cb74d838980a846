// Where the bench's processes run. Unpinned, the kernel moves workerd, the
// load generator, the origins and the gates between the 2 cores as it likes,
// and a round where workerd shared a core with its load generator is a
// different experiment from one where it did not. Pinned (taskset, util-linux),
// every workerd runs on the last CPU and everything else (the load generator,
// the bench process serving the origins, the gates and the floor proxy) on the
// others, the same for every row. taskset absent, one CPU, or
// EDGELB_BENCH_PIN=0: nothing is pinned and the notes say so.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { findBinary } from "../loadgen.ts";

export type Role = "worker" | "rest";

export interface Placement {
  /** Whether processes are pinned. */
  pinned: boolean;
  /** How processes were placed, for the results' notes. */
  describe(): string;
  /** The command line that starts `cmd` on the role's CPUs. */
  command(role: Role, cmd: string, args: readonly string[]): [string, string[]];
  /** Moves a running process (all its threads) to the role's CPUs. */
  pin(pid: number, role: Role, what: string): void;
  /** Gives a process every CPU back (the bench's own process, after its section). */
  release(pid: number): void;
}

/** CPU lists per role for `cpus` CPUs: workerd on the last, the rest on the others. Pure. */
export function cpuLists(cpus: number): Record<Role, string> | undefined {
  if (cpus < 2) return undefined;
  return { worker: String(cpus - 1), rest: cpus === 2 ? "0" : `0-${cpus - 2}` };
}

export function unpinned(why: string): Placement {
  return {
    pinned: false,
    describe: () => `processes not pinned (${why}): the kernel placed workerd, the load generator, the origins and the gates on the ${os.cpus().length} cores as it chose`,
    command: (_role, cmd, args) => [cmd, [...args]],
    pin: () => {},
    release: () => {},
  };
}

export function choosePlacement(env: NodeJS.ProcessEnv = process.env, cpus = os.cpus().length): Placement {
  if (env.EDGELB_BENCH_PIN === "0") return unpinned("EDGELB_BENCH_PIN=0");
  const lists = cpuLists(cpus);
  if (!lists) return unpinned(`${cpus} CPU`);
  const taskset = findBinary("taskset");
  if (!taskset) return unpinned("taskset (util-linux) not installed");
  const failures: string[] = [];
  const all = `0-${cpus - 1}`;
  const set = (list: string, pid: number) => {
    execFileSync(taskset, ["-a", "-p", "-c", list, String(pid)], { stdio: "ignore" });
    // taskset -a says nothing about a pid that is gone: read back what the kernel holds.
    const held = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    if (held !== list) throw new Error(`the kernel holds CPUs ${held ?? "?"} for it, not ${list}`);
  };
  return {
    pinned: true,
    describe: () =>
      failures.length
        ? `pinning FAILED for ${failures.join("; ")}: those processes ran wherever the kernel put them`
        : `processes pinned with taskset: every workerd on CPU ${lists.worker}; the load generator, the bench process serving the origins, the gates and the floor proxy on CPU ${lists.rest} (the same for every row; EDGELB_BENCH_PIN=0 turns it off)`,
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
        set(all, pid);
      } catch {
        /* the process is gone or was never pinned */
      }
    },
  };
}
