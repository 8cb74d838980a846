// The agent's image also carries the node gate: the Dockerfile's gate esbuild
// step, run as written, must bundle a gate that starts and the DaemonSet's
// command must name that bundle.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const OUT = join(ROOT, "node_modules", ".cache", `edgelb-gate-docker-test-${process.pid}`);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

describe("the gate (and the agent) in the image", () => {
  it("is bundled by the Dockerfile and starts (--help)", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const step = dockerfile
      .replace(/\\\n\s*/g, " ")
      .split("\n")
      .find((l) => l.startsWith("RUN esbuild sync-agent/gate/main.ts"));
    expect(step).toBeDefined();
    const outfile = /--outfile=(\S+)/.exec(step!)![1]!;
    const args = step!.slice(4).trim().split(/\s+/).slice(1).map((a) => (a.startsWith("--outfile=") ? `--outfile=${join(OUT, "gate.mjs")}` : a));
    mkdirSync(OUT, { recursive: true });
    execFileSync(join(ROOT, "node_modules/.bin/esbuild"), args, { cwd: ROOT, stdio: "pipe" });
    const help = execFileSync(process.execPath, [join(OUT, "gate.mjs"), "--help"], { encoding: "utf8" });
    expect(help).toContain("edgelb-node-gate");
    expect(help).toContain("--connect <mode>");
    const daemonset = readFileSync(join(ROOT, "deploy/gate/daemonset.yaml"), "utf8");
    expect(daemonset).toContain(`"${outfile}"`);
  });

  it("every esbuild step of the image (the agent's and the gate's) reads only sources its build stage copies", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    const copied = [
      ...[...dockerfile.matchAll(/^COPY (?!--from)(\S+) /gm)].map((m) => m[1]!.replace(/\/$/, "")),
      // What the build stage takes from another stage (the production node_modules the agent's bundle reads), by its destination.
      ...[...dockerfile.matchAll(/^COPY --from=\S+ \S+ \.\/(\S+)$/gm)].map((m) => m[1]!.replace(/\/$/, "")),
    ];
    const steps = dockerfile.replace(/\\\n\s*/g, " ").split("\n").filter((l) => l.startsWith("RUN esbuild "));
    expect(steps.length).toBe(2);
    const missing: string[] = [];
    for (const [i, step] of steps.entries()) {
      const meta = join(OUT, `meta-${i}.json`);
      // Run by a shell as the image's RUN does: a step may quote its arguments (the agent's --banner:js="…").
      const cmd = `${step.slice(4).replace(/--outfile=\S+/, `--outfile=${join(OUT, `step-${i}.mjs`)}`)} --metafile=${meta}`;
      mkdirSync(OUT, { recursive: true });
      execFileSync("sh", ["-c", cmd], { cwd: ROOT, stdio: "pipe", env: { ...process.env, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` } });
      const inputs = Object.keys((JSON.parse(readFileSync(meta, "utf8")) as { inputs: Record<string, unknown> }).inputs);
      missing.push(...inputs.filter((f) => !copied.some((c) => f === c || f.startsWith(`${c}/`))));
    }
    expect(missing).toEqual([]);
  });
});
