// Headless Chromium for page tests: Debian's `chromium` package, installed
// here when missing and we are root with apt; otherwise the caller skips with
// the reason. Pages are loaded with --dump-dom after a virtual-time budget, so
// the page's own fetches and timers run before the DOM is read.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

export type ChromiumLookup = { path: string; reason?: undefined } | { path?: undefined; reason: string };

function find(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

export function ensureChromium(): ChromiumLookup {
  const found = find();
  if (found) return { path: found };
  const root = process.getuid?.() === 0;
  if (!root || !existsSync("/usr/bin/apt-get")) {
    return { reason: `chromium is not installed and cannot be installed here (${root ? "no apt-get" : "not root"}): apt-get install -y chromium` };
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    try {
      execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "ignore", env, timeout: 300_000 });
    } catch {
      execFileSync("apt-get", ["update"], { stdio: "ignore", env, timeout: 120_000 });
      execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], { stdio: "ignore", env, timeout: 300_000 });
    }
  } catch (err) {
    return { reason: `apt-get install -y chromium failed: ${(err as Error).message.split("\n")[0]}` };
  }
  const installed = find();
  return installed ? { path: installed } : { reason: "apt-get installed chromium but no chromium binary was found" };
}

function flags(userDataDir: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    `--user-data-dir=${userDataDir}`,
  ];
}

function runChromium(binary: string, extra: string[], timeoutMs: number): Promise<string> {
  const profile = mkdtempSync(path.join(tmpdir(), "edgelb-chromium-"));
  return new Promise<string>((resolve, reject) => {
    execFile(binary, [...flags(profile), ...extra], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

/** The DOM after the page ran for `budgetMs` of virtual time. */
export function dumpDom(binary: string, url: string, budgetMs = 3_000): Promise<string> {
  return runChromium(binary, [`--virtual-time-budget=${budgetMs}`, "--dump-dom", url], 60_000);
}

export async function screenshot(binary: string, url: string, file: string, budgetMs = 3_000): Promise<void> {
  await runChromium(binary, [`--virtual-time-budget=${budgetMs}`, "--window-size=1280,900", "--hide-scrollbars", `--screenshot=${file}`, url], 60_000);
}
