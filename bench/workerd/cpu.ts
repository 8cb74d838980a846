// CPU time of a process from /proc/<pid>/stat (Linux): utime + stime of all
// its threads, in clock ticks. The bench reads it before and after a load
// window; the delta over the requests served is the CPU per request that
// Workers would bill (workerd's own overhead included).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, in ticks.
 * The command name (field 2) is in parentheses and may itself hold spaces
 * and parentheses, so fields are counted from the last ")".
 */
export function parseProcStat(line: string): { utime: number; stime: number } {
  const close = line.lastIndexOf(")");
  if (close < 0) throw new Error(`not a /proc/<pid>/stat line: ${JSON.stringify(line.slice(0, 80))}`);
  // After ")": field 3 (state) is index 0, so field n is index n - 3.
  const rest = line.slice(close + 1).trim().split(/\s+/);
  const utime = Number(rest[14 - 3]);
  const stime = Number(rest[15 - 3]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime) || utime < 0 || stime < 0) {
    throw new Error(`/proc/<pid>/stat: utime/stime are not tick counts in ${JSON.stringify(line.slice(0, 200))}`);
  }
  return { utime, stime };
}

let ticksPerSecond: number | undefined;

/** The kernel's USER_HZ (almost always 100). */
export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Seconds of CPU (user + system) the process has used so far. */
export function processCpuSeconds(pid: number): number {
  const { utime, stime } = parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  return (utime + stime) / clockTicks();
}
