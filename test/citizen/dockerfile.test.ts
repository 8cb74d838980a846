// Docker is not available here, so check the Dockerfile the way a build would
// use it: its esbuild step, run as written, must bundle an agent that starts
// (client-node inside, for memory);
// the final stage must be non-root; the context must hold what is copied.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { entrypointNodeFlags } from "../../bench/lib/agent.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8");
// Inside the repository so the bundle's external packages resolve from node_modules, like /app/node_modules in the image.
const OUT = join(ROOT, "node_modules", ".cache", `edgelb-docker-test-${process.pid}`);
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

/** RUN lines with their continuations joined. */
function runLines(): string[] {
  return dockerfile
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .filter((l) => l.startsWith("RUN "))
    .map((l) => l.slice(4).trim());
}

describe("Dockerfile", () => {
  it("is multi-stage and ends non-root on a distroless base", () => {
    const froms = dockerfile.split("\n").filter((l) => l.startsWith("FROM "));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms.at(-1)).toMatch(/distroless\/nodejs.*:nonroot/);
    const lastStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
    expect(lastStage).toMatch(/\nUSER 65532:65532\n/);
    expect(lastStage).not.toMatch(/npm (ci|install)/);
  });

  it("its esbuild step bundles an agent that starts, with client-node inside the bundle", () => {
    const step = runLines().find((l) => l.startsWith("esbuild sync-agent/main.ts "));
    expect(step).toBeDefined();
    // Run as a shell would (the banner is a quoted argument), writing to our own directory.
    const cmd = step!.replace(/--outfile=\S+/, `--outfile=${join(OUT, "agent.mjs")}`);
    mkdirSync(OUT, { recursive: true });
    execFileSync("sh", ["-c", cmd], { cwd: ROOT, stdio: "pipe", env: { ...process.env, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` } });
    const help = execFileSync(process.execPath, [...entrypointNodeFlags(dockerfile), join(OUT, "agent.mjs"), "--help"], { encoding: "utf8" });
    expect(help).toContain("--leader-elect-lease-duration");
    expect(help).toContain("cleanup");
    // Loading client-node's ~970 modules from node_modules costs the agent ~40 MiB of RSS
    // (docs/production.md, "Sizing"): the image's bundle must not import it at run time.
    const bundle = readFileSync(join(OUT, "agent.mjs"), "utf8");
    expect(/from\s*"@kubernetes\/client-node"|import\(\s*"@kubernetes\/client-node"/.test(bundle), "the bundle imports @kubernetes/client-node").toBe(false);
    // Stack traces still name our sources (the map keeps positions, not contents).
    const map = JSON.parse(readFileSync(join(OUT, "agent.mjs.map"), "utf8")) as { sources: string[]; sourcesContent?: unknown };
    expect(map.sources.some((s) => s.includes("@kubernetes/client-node/"))).toBe(true);
    expect(map.sources.some((s) => s.endsWith("sync-agent/main.ts"))).toBe(true);
    expect(map.sourcesContent).toBeUndefined();
  });

  it("runs without source maps by default: on Node 24 they cost the idle agent ~42 MiB of RSS", () => {
    // docs/production.md, "Sizing": NODE_OPTIONS=--enable-source-maps turns them on to debug.
    expect(entrypointNodeFlags(dockerfile)).not.toContain("--enable-source-maps");
    expect(dockerfile).toMatch(/--sourcemap --sources-content=false/);
  });

  // The bundled client-node reaches node-fetch@2 (url.parse, a runtime deprecation on Node 24) and
  // whatwg-url@5 (the punycode builtin): unstructured warning lines in `kubectl logs` that nobody can act
  // on. On this Node both are pending deprecations, so --pending-deprecation shows them here.
  it.each([
    ["with the ENTRYPOINT's flags, the agent's first API request writes no deprecation warning", true],
    ["without them, it writes DEP0040 and DEP0169 (the control)", false],
  ])("%s", async (_title, withFlags) => {
    mkdirSync(OUT, { recursive: true });
    const bundle = join(OUT, "agent.mjs");
    if (!existsSync(bundle)) return expect.fail("the esbuild test above did not leave a bundle");
    const kubeconfig = join(OUT, "refused.kubeconfig");
    writeFileSync(
      kubeconfig,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    const flags = withFlags ? entrypointNodeFlags(dockerfile) : [];
    const child = spawn(process.execPath, ["--pending-deprecation", ...flags, bundle, "--dry-run", "--cluster", "t", "--kubeconfig", kubeconfig, "--metrics-address", "", "--no-leader-elect", "--log-format", "json"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    try {
      // The first request to the API server (refused) has gone through node-fetch once this is logged.
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on("line", (l) => l.includes("cannot read this cluster's identity") && resolve());
        child.on("exit", (code) => reject(new Error(`agent exited with ${code}: ${stderr}`)));
      });
    } finally {
      child.kill("SIGKILL");
    }
    if (withFlags) expect(stderr).not.toMatch(/DeprecationWarning/);
    else {
      expect(stderr).toMatch(/\[DEP0040\]/);
      expect(stderr).toMatch(/\[DEP0169\]/);
    }
  });

  it("the build context keeps what the stages copy and drops tests and secrets", () => {
    const copied = dockerfile.split("\n").filter((l) => l.startsWith("COPY ") && !l.includes("--from")).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(copied.sort()).toEqual(
      ["package-lock.json", "package.json", "package.json", "sync-agent", "worker/snapshot", "worker/source-ranges", "worker/config/stored.ts", "worker/transport/socket"].sort(),
    );
    const lines = ignore.split("\n").map((l) => l.trim());
    for (const p of ["**/node_modules", ".git", ".dev.vars", "test", "**/*.test.ts", "worker/*"]) expect(lines).toContain(p);
    // worker/* is left out of the context: every part of it a stage copies is let back in, or the COPY fails.
    for (const p of copied.filter((c) => c.startsWith("worker/"))) expect(lines, `.dockerignore lets ${p} in`).toContain(`!${p}`);
  });
});
