// Process placement for the data-plane and gate benches (bench/lib/placement):
// with taskset, workerd on the last CPU and the rest on the others, read back
// from the kernel (/proc/<pid>/status); without it, or when turned off,
// nothing is pinned and the notes say so.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { findBinary } from "../../bench/lib/loadgen.ts";
import { choosePlacement, cpuLists } from "../../bench/lib/placement/index.ts";

const allowed = (pid: number) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];

describe("placement", () => {
  it("puts workerd on the last CPU and everything else on the others; one CPU pins nothing", () => {
    expect(cpuLists(2)).toEqual({ worker: "1", rest: "0" });
    expect(cpuLists(8)).toEqual({ worker: "7", rest: "0-6" });
    expect(cpuLists(1)).toBeUndefined();
    expect(choosePlacement({}, 1)).toMatchObject({ pinned: false });
    const off = choosePlacement({ EDGELB_BENCH_PIN: "0" }, 2);
    expect(off.pinned).toBe(false);
    expect(off.describe()).toMatch(/not pinned \(EDGELB_BENCH_PIN=0\)/);
    expect(off.command("rest", "wrk", ["-c1"])).toEqual(["wrk", ["-c1"]]);
  });

  it("pins a running process (all its threads) and starts a command on its role's CPUs, as the kernel reports; or says taskset is missing", async () => {
    const placement = choosePlacement({}, 2);
    if (!findBinary("taskset")) {
      expect(placement.describe()).toMatch(/taskset \(util-linux\) not installed/);
      return;
    }
    expect(placement.pinned).toBe(true);
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      placement.pin(child.pid!, "worker", "sleep");
      expect(allowed(child.pid!)).toBe("1");
      placement.release(child.pid!);
      expect(allowed(child.pid!)).toBe("0-1");
    } finally {
      child.kill();
    }
    const [cmd, args] = placement.command("rest", "grep", ["Cpus_allowed_list", "/proc/self/status"]);
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      c.stdout.on("data", (d: Buffer) => (text += d.toString()));
      c.on("error", reject);
      c.on("exit", () => resolve(text));
    });
    expect(out).toMatch(/Cpus_allowed_list:\s*0\s*$/);
    expect(placement.describe()).toMatch(/every workerd on CPU 1; the load generator, .* on CPU 0/);
    // A process that is gone cannot be pinned: the notes say so instead of claiming a placement.
    placement.pin(2 ** 22 + 12345, "worker", "a process that is gone");
    expect(placement.describe()).toMatch(/^pinning FAILED for a process that is gone/);
  });
});
