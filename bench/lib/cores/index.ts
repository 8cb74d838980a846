// How busy each CPU was over a round, from /proc/stat: with workerd pinned on
// one CPU and the load generator and origins on the other(s), the busier side
// is what limits a row's throughput. A workerd-bound row's throughput follows
// 1 ÷ its CPU per request; a row whose other CPU is saturated measures the
// load generator and the origins as much as the worker.
import { readFileSync } from "node:fs";

/** Jiffies of one CPU: busy (everything but idle and iowait) and total. */
export interface CpuTicks {
  busy: number;
  total: number;
}

/**
 * The per-CPU lines of /proc/stat ("cpu3 user nice system idle iowait irq softirq steal guest guest_nice"), by
 * CPU number. guest and guest_nice are already counted in user and nice, so they are left out; steal (the
 * hypervisor ran something else while this CPU wanted to run) counts as busy: the row could not use it either.
 * Lines that are not a numbered CPU's are ignored. Pure.
 */
export function parseProcStat(text: string): Map<number, CpuTicks> {
  const out = new Map<number, CpuTicks>();
  for (const line of text.split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    if (f.length < 4 || f.some((x) => !Number.isFinite(x) || x < 0)) continue;
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    out.set(Number(m[1]), { busy, total: busy + idle + iowait });
  }
  return out;
}

/**
 * The busy share (0–1) of a group of CPUs between two /proc/stat readings: busy jiffies over all jiffies of those
 * CPUs. Undefined when none of them is in both readings or no time passed. Pure.
 */
export function busyShare(before: ReadonlyMap<number, CpuTicks>, after: ReadonlyMap<number, CpuTicks>, cpus: readonly number[]): number | undefined {
  let busy = 0;
  let total = 0;
  for (const c of cpus) {
    const [a, b] = [before.get(c), after.get(c)];
    if (!a || !b) continue;
    busy += Math.max(0, b.busy - a.busy);
    total += Math.max(0, b.total - a.total);
  }
  return total > 0 ? Math.min(1, busy / total) : undefined;
}

/** This machine's per-CPU ticks now (empty where /proc/stat cannot be read). */
export function readCpuTicks(): Map<number, CpuTicks> {
  try {
    return parseProcStat(readFileSync("/proc/stat", "utf8"));
  } catch {
    return new Map();
  }
}

/** A share as a percentage, e.g. "97%". */
export function percent(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "–" : `${Math.round(x * 100)}%`;
}
