// The worker as `wrangler deploy` bundles it (and as the bench runs it): no
// esbuild keep_names wrappers, whose __name() call runs every time a closure
// is created, i.e. on every request of the hot path.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");

it("the deployed bundle carries no __name wrappers (wrangler.toml: keep_names = false)", async () => {
  const out = await mkdtemp(path.join(tmpdir(), "edgelb-bundle-test-"));
  try {
    await promisify(execFile)(process.execPath, [path.join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", out], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" },
    });
    const modules = (await readdir(out)).filter((f) => f.endsWith(".js"));
    expect(modules).toHaveLength(1);
    const code = await readFile(path.join(out, modules[0]!), "utf8");
    expect(code).toContain("proxy");
    expect(code.match(/__name\(/g) ?? []).toEqual([]);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
