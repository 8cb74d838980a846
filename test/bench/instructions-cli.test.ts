// bench/instructions.ts's command line: --help prints the usage; a bad option or row is one line and exit 2,
// before any workerd or valgrind starts.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const run = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "bench/instructions.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });

describe("npm run bench:instructions", () => {
  it("--help prints the usage and exits 0", () => {
    const r = run("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("usage: npm run bench:instructions -- [--rows c,d,e]");
  });

  it("a bad option or an unknown row says so in one line, with the usage, and exits 2", () => {
    for (const [args, line] of [
      [["--bogus"], "bench:instructions: Unknown option '--bogus'"],
      [["--rows", "c,x"], "bench:instructions: unknown row x (rows: c, d, e)"],
      [["--requests", "0"], "bench:instructions: --warmup, --requests and --repeat must be whole numbers"],
    ] as const) {
      const r = run(...args);
      expect(r.status).toBe(2);
      expect(r.stderr.split("\n")[0]).toContain(line);
      expect(r.stderr).toContain("usage: npm run bench:instructions");
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
