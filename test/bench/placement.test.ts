// Process placement for the data-plane bench (bench/lib/placement): with
// taskset, workerd on the last CPU the bench was given and the rest on the
// others, read back from the kernel (/proc/<pid>/status); never beyond the
// CPUs it was given; without taskset, with one CPU, or when turned off,
// nothing is pinned and the notes say so.
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findBinary } from "../../bench/lib/loadgen.ts";
import { allowedCpuList, choosePlacement, cpuLists, parseCpuList } from "../../bench/lib/placement/index.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("placement", () => {
  it("puts workerd on the last allowed CPU and everything else on the others; one allowed CPU pins nothing", () => {
    expect(parseCpuList("0-2,5")).toEqual([0, 1, 2, 5]);
    expect(() => parseCpuList("x")).toThrow(/not a CPU list/);
    expect(cpuLists([0, 1])).toEqual({ worker: "1", rest: "0" });
    expect(cpuLists([0, 2, 3])).toEqual({ worker: "3", rest: "0,2" });
    expect(cpuLists([1])).toBeUndefined();
    expect(choosePlacement({}, "1")).toMatchObject({ pinned: false });
    expect(choosePlacement({}, "1").describe()).toMatch(/not pinned \(1 CPU allowed\)/);
    const off = choosePlacement({ EDGELB_BENCH_PIN: "0" }, "0-1");
    expect(off.pinned).toBe(false);
    expect(off.describe()).toMatch(/not pinned \(EDGELB_BENCH_PIN=0\)/);
    expect(off.command("rest", "wrk", ["-c1"])).toEqual(["wrk", ["-c1"]]);
  });

  it("pins a running process (all its threads), gives back the CPUs it was given, and starts a command on its role's CPUs, as the kernel reports; or says taskset is missing", async () => {
    const placement = choosePlacement({}, "0-1");
    if (!findBinary("taskset")) {
      expect(placement.describe()).toMatch(/taskset \(util-linux\) not installed/);
      return;
    }
    expect(placement.pinned).toBe(true);
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      placement.pin(child.pid!, "worker", "sleep");
      expect(allowedCpuList(child.pid!)).toBe("1");
      placement.release(child.pid!);
      expect(allowedCpuList(child.pid!)).toBe("0-1");
    } finally {
      child.kill();
    }
    const [cmd, args] = placement.command("rest", "grep", ["Cpus_allowed_list", "/proc/self/status"]);
    expect(execFileSync(cmd, args, { encoding: "utf8" })).toMatch(/Cpus_allowed_list:\s*0\s*$/);
    expect(placement.describe()).toMatch(/every workerd on CPU 1; the load generator and the bench process serving the origins on CPU 0/);
    // A process that is gone cannot be pinned: the notes say so instead of claiming a placement.
    placement.pin(2 ** 22 + 12345, "worker", "a process that is gone");
    expect(placement.describe()).toMatch(/^pinning FAILED for a process that is gone/);
  });

  it("stays within the CPUs the bench was started on (taskset -c 0 npm run bench): one CPU given, nothing pinned", () => {
    if (!findBinary("taskset")) return expect(findBinary("taskset")).toBeUndefined();
    const script = `import { choosePlacement } from "./bench/lib/placement/index.ts"; console.log(choosePlacement().describe());`;
    const out = execFileSync("taskset", ["-c", "0", process.execPath, "--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(out).toMatch(/not pinned \(1 CPU allowed\)/);
  });
});
