// One bench row's worker in plain workerd (`workerd serve` with a capnp
// config), no Miniflare entry layer: the runtime the issue compares in. Every
// row is started the same way: the entry bundled by `wrangler deploy --dry-run`
// (the exact artifact a deploy uploads, with wrangler.toml's keep_names = false), the
// compatibility date and flags and [vars] of wrangler.toml plus the row's
// vars, an optional in-memory KV namespace, one workerd process per row so its
// CPU time (/proc/<pid>/stat) belongs to that row alone.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { copyFile, mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { killChild, track, trackDir } from "../lib/cleanup.ts";
import { renderConfig, type WorkerdConfigInput } from "./config.ts";
import { processCpuSeconds } from "./cpu.ts";

// The platform binary the workerd package installed (its bin/ may be a shim).
const workerdBinary = (createRequire(import.meta.url)("workerd") as { default: string }).default;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const WRANGLER = path.join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const OFFLINE = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

export interface PlainWorkerOptions {
  /** For logs and errors, e.g. "edgelb (socket)". */
  name: string;
  /** Entry module (TypeScript or JavaScript). */
  entry: string;
  /** Text bindings on top of wrangler.toml's [vars]. */
  vars?: Record<string, string>;
  /** Bind an in-memory KV namespace under this name (edgelb: EDGELB_KV). */
  kvBinding?: string;
  /** Source of the KV service module instead of the in-memory one (e.g. one that forwards to a shared emulation). */
  kvModuleSource?: string;
  /** More files beside the config (modules an own config embeds). */
  extraFiles?: Record<string, string>;
  /** Renders the capnp config instead of renderConfig (e.g. with Durable Object namespaces). */
  render?: (input: WorkerdConfigInput) => string;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  startTimeoutMs?: number;
  /** Open workerd's inspector (CPU profiles: bench/profile.ts) on this address:port. */
  inspectorAddr?: string;
  /** Told of everything workerd writes to stdout (the worker's console.log lines, e.g. its JSON logs). */
  onStdout?: (text: string) => void;
  /**
   * Runs workerd under this command (its arguments before workerd's binary), e.g. valgrind's
   * (bench/instructions.ts). The wrapper must keep workerd's pid (valgrind does: the tool runs the
   * program in its own process) and pass fd 3 on.
   */
  wrapper?: readonly string[];
  /** V8 flags for workerd (its config's v8Flags). */
  v8Flags?: readonly string[];
}

export interface PlainWorker {
  name: string;
  url: string;
  host: string;
  port: number;
  pid: number;
  /** Bytes of the bundled module. */
  bundleBytes: number;
  /** CPU seconds (user + system, all threads) the workerd process has used. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

interface WranglerSettings {
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
}

let settings: Promise<WranglerSettings> | undefined;
/** One bundle per entry per process: rows that share a worker share its build. */
const bundles = new Map<string, Promise<string>>();

/** The bundle this process built for `entry` (an absolute path), shared by every worker of that entry; undefined before any. */
export function builtBundle(entry: string): Promise<string> | undefined {
  return bundles.get(entry);
}

/** wrangler.toml as wrangler reads it (date, flags, [vars]). */
function wranglerSettings(): Promise<WranglerSettings> {
  settings ??= (async () => {
    for (const [k, v] of Object.entries(OFFLINE)) process.env[k] ??= v;
    const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
    const wo = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml")).workerOptions as Record<string, unknown>;
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries((wo.bindings as Record<string, unknown>) ?? {})) if (typeof v === "string") vars[k] = v;
    return { compatibilityDate: String(wo.compatibilityDate), compatibilityFlags: (wo.compatibilityFlags as string[]) ?? [], vars };
  })();
  return settings;
}

function run(cmd: string, args: string[], what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...OFFLINE }, stdio: ["ignore", "pipe", "pipe"] });
    const untrack = track(what, () => killChild(child, 500));
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.stderr!.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-4000)));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      void untrack();
      if (code === 0) resolve();
      else reject(new Error(`${what} exited with ${signal ?? code}: ${out.trim().slice(-1500)}`));
    });
  });
}

/** Bundles `entry` exactly as `wrangler deploy` would; returns the module's path. */
export async function bundleLikeWrangler(entry: string, outdir: string): Promise<string> {
  // The edge worker builds with wrangler.toml itself. Other rows' workers (trivial proxies, the socket floor) get a
  // config with the same date, flags and build settings but none of its bindings: wrangler refuses an entry that does
  // not export the Durable Object class wrangler.toml binds.
  let config = path.join(ROOT, "wrangler.toml");
  if (path.resolve(ROOT, entry) !== path.join(ROOT, "worker/index.ts")) {
    const s = await wranglerSettings();
    config = path.join(outdir, "wrangler.bench-row.toml");
    await writeFile(
      config,
      [
        `name = "edgelb-bench-row"`,
        `compatibility_date = ${JSON.stringify(s.compatibilityDate)}`,
        `compatibility_flags = ${JSON.stringify(s.compatibilityFlags)}`,
        `keep_names = false`,
        "",
      ].join("\n"),
    );
  }
  await run(
    process.execPath,
    [WRANGLER, "deploy", "--dry-run", "--outdir", outdir, "--config", config, entry],
    `wrangler deploy --dry-run ${path.relative(ROOT, entry)}`,
  );
  const modules = (await readdir(outdir)).filter((f) => /\.(m?js)$/.test(f));
  if (modules.length !== 1) throw new Error(`wrangler bundled ${path.relative(ROOT, entry)} into ${modules.length} modules (${modules.join(", ")}); the bench config embeds exactly one`);
  return path.join(outdir, modules[0]!);
}

/** Waits for workerd's control-fd message that the socket listens; returns its port. */
function listeningPort(control: Readable, exited: () => string | undefined, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: control });
    const timer = setTimeout(() => finish(new Error(exited() ?? `workerd did not report a listening socket within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | undefined, port?: number) => {
      clearTimeout(timer);
      lines.removeAllListeners("line");
      if (err) reject(err);
      else resolve(port!);
    };
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string; socket?: string; port?: number };
        if (msg.event === "listen" && msg.socket === "http" && typeof msg.port === "number") finish(undefined, msg.port);
      } catch {
        /* not a control message */
      }
    });
    lines.on("close", () => finish(new Error(exited() ?? "workerd closed its control fd before listening")));
  });
}

export async function startPlainWorker(o: PlainWorkerOptions): Promise<PlainWorker> {
  const s = await wranglerSettings();
  const dir = await mkdtemp(path.join(tmpdir(), "edgelb-bench-workerd-"));
  const removeDir = trackDir(dir);
  try {
    let bundled = bundles.get(o.entry);
    if (!bundled) {
      const bundleDir = await mkdtemp(path.join(tmpdir(), "edgelb-bench-bundle-"));
      const entry = o.entry;
      const remove = () => rmSync(bundleDir, { recursive: true, force: true });
      track(`bundle of ${path.relative(ROOT, entry)}`, () => {
        bundles.delete(entry);
        remove();
      }, remove);
      bundled = bundleLikeWrangler(o.entry, bundleDir);
      bundles.set(o.entry, bundled);
      bundled.catch(() => bundles.delete(o.entry));
    }
    const module = "worker.js";
    await copyFile(await bundled, path.join(dir, module));
    if (o.kvBinding && o.kvModuleSource !== undefined) await writeFile(path.join(dir, "kv-memory.js"), o.kvModuleSource);
    else if (o.kvBinding) await copyFile(path.join(HERE, "kv-memory.js"), path.join(dir, "kv-memory.js"));
    const host = o.host ?? "127.0.0.1";
    const configPath = path.join(dir, "config.capnp");
    for (const [name, text] of Object.entries(o.extraFiles ?? {})) await writeFile(path.join(dir, name), text);
    await writeFile(
      configPath,
      (o.render ?? renderConfig)({
        module,
        compatibilityDate: s.compatibilityDate,
        compatibilityFlags: s.compatibilityFlags,
        vars: { ...s.vars, ...(o.vars ?? {}) },
        ...(o.kvBinding ? { kv: { binding: o.kvBinding, module: "kv-memory.js" } } : {}),
        listen: `${host}:0`,
        ...(o.v8Flags?.length ? { v8Flags: o.v8Flags } : {}),
      }),
    );
    const args = ["serve", configPath, "--control-fd=3", ...(o.inspectorAddr ? [`--inspector-addr=${o.inspectorAddr}`] : [])];
    const [command, ...prefix] = o.wrapper?.length ? [...o.wrapper, workerdBinary] : [workerdBinary];
    const child = spawn(command!, [...prefix, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe", "pipe"] });
    const stopChild = track(`workerd ${o.name}`, () => killChild(child), () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let output = "";
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    child.stdout!.on("data", keep);
    if (o.onStdout) child.stdout!.on("data", (d: Buffer) => o.onStdout!(d.toString()));
    child.stderr!.on("data", keep);
    let exit: string | undefined;
    child.on("exit", (code, signal) => (exit = `workerd (${o.name}) exited with ${signal ?? code}: ${output.trim().slice(-1500)}`));
    let port: number;
    try {
      port = await listeningPort(child.stdio[3] as Readable, () => exit, o.startTimeoutMs ?? 15_000);
    } catch (err) {
      await stopChild();
      throw err;
    }
    const pid = child.pid!;
    return {
      name: o.name,
      url: `http://${host}:${port}`,
      host,
      port,
      pid,
      bundleBytes: (await stat(path.join(dir, module))).size,
      cpuSeconds: () => processCpuSeconds(pid),
      async stop() {
        await stopChild();
        await removeDir();
      },
    };
  } catch (err) {
    await removeDir();
    throw err;
  }
}
