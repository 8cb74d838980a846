// Every command the docs show for the local lab runs: the shell blocks marked
// `<!-- lab-commands -->` in README.md and docs/*.md are run in order, one
// bash per page, against a fresh `npm start` per page (its own port, loopback
// range and state directory; see localize() for how the commands are rewritten
// to match), with the real /usr/bin/kubectl and curl. Each must exit 0, and a curl
// must get a success status (pageScript() in markdown.ts).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { exec, freePort, ROOT, run } from "../e2e/process.ts";
import { labBlocks, pageScript } from "./markdown.ts";

const PAGES = [
  "README.md",
  ...readdirSync(path.join(ROOT, "docs"))
    .filter((n) => n.endsWith(".md"))
    .sort()
    .map((n) => `docs/${n}`),
].filter((p) => labBlocks(readFileSync(path.join(ROOT, p), "utf8")).length > 0);


describe.concurrent("the docs' lab commands", () => {
  it("README.md and docs/lab.md show commands for the lab", () => {
    expect(PAGES).toContain("README.md");
    expect(PAGES).toContain("docs/lab.md");
  });

  // Each page gets its own /24 in this suite's 127.28.0.0/16.
  it.each(PAGES.map((p, i) => [p, `127.28.${i + 1}`] as const))("%s: every marked command runs against npm start", async (page, addressBase) => {
    const [port, apiPort, healthzPort] = [await freePort(), await freePort(), await freePort()];
    // Inside the repository (gitignored), so `npm start -- …` in a block and
    // `$PWD/.edgelb/…` both work from one working directory.
    const scratch = mkdtempSync(path.join(ROOT, ".scratch-docs-"));
    const stateDir = path.relative(ROOT, path.join(scratch, "state"));
    // The pages run concurrently: each cleans up only what it started.
    const lab = run("npm", [
      "start", "--",
      "--port", String(port),
      "--api-port", String(apiPort),
      "--address-base", addressBase,
      "--healthz-port", String(healthzPort),
      "--state-dir", stateDir,
    ]);
    try {
      await lab.waitFor(/Ctrl-C stops everything/, "npm start's instructions", 90_000);
      const result = await exec("bash", ["-c", pageScript(page, readFileSync(path.join(ROOT, page), "utf8"), { port, stateDir, addressBase })], 60_000);
      expect(result.code, `${page}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`).toBe(0);
      expect(result.stderr).not.toContain("FAILED");
    } finally {
      await lab.kill();
      rmSync(scratch, { recursive: true, force: true });
    }
  }, 180_000);
});
