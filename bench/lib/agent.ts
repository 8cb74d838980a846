// The real sync agent as a child process, built the way the container image
// builds it (the Dockerfile's esbuild step for sync-agent/main.ts, run as
// written) and run the way the image runs it (the ENTRYPOINT's node flags and
// NODE_OPTIONS), so its RSS is what a pod would use. Its JSON log lines tell when it synced,
// pushed and saw health transitions.
import { imageNodeHere, type ImageNode } from "./image-node/index.ts";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { trackChild } from "./cleanup.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Inside the repo so the bundle's bare imports resolve from node_modules (gitignored). */
const BUNDLE = path.join(ROOT, "bench/.tmp/edgelb-sync-agent.mjs");
let bundled: Promise<string> | undefined;

/**
 * The Dockerfile's esbuild step for the agent, as written (continuations
 * joined), with its output sent to `outfile`: the bench measures the bundle
 * the image ships, whatever options the image uses.
 */
export function dockerfileAgentBuild(outfile: string): string {
  const step = readFileSync(path.join(ROOT, "Dockerfile"), "utf8")
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .find((l) => l.startsWith("RUN esbuild sync-agent/main.ts "));
  if (!step) throw new Error("Dockerfile: no `RUN esbuild sync-agent/main.ts` step");
  return step.slice(4).replace(/--outfile=\S+/, `--outfile=${outfile}`);
}

/** Bundles the agent like the Dockerfile does (once per bench run). */
export function agentBundle(): Promise<string> {
  bundled ??= (async () => {
    await mkdir(path.dirname(BUNDLE), { recursive: true });
    const cmd = dockerfileAgentBuild(BUNDLE);
    await new Promise<void>((resolve, reject) =>
      execFile("sh", ["-c", cmd], { cwd: ROOT, env: { ...process.env, PATH: `${path.join(ROOT, "node_modules/.bin")}:${process.env.PATH}` } }, (err, _out, stderr) =>
        err ? reject(new Error(`agent bundle (${cmd}): ${stderr || err.message}`)) : resolve(),
      ),
    );
    return BUNDLE;
  })();
  return bundled;
}

export interface AgentLine {
  /** When the bench received the line (ms epoch). */
  at: number;
  /** The agent's own timestamp (ms epoch). */
  time: number;
  /** pino level label, e.g. "info" (the agent logs labels, not numbers). */
  level: string;
  msg: string;
  [k: string]: unknown;
}

export interface AgentProcess {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  lines: AgentLine[];
  /** Resolves with the first line matching, waiting up to timeoutMs. */
  waitFor(pred: (l: AgentLine) => boolean, timeoutMs: number, after?: number): Promise<AgentLine>;
  /** Why the process exited (with its stderr tail), or undefined while it runs. */
  exitReason(): string | undefined;
  /** Peak and current resident set size from /proc (MiB), when available. */
  memory(): { peakMiB: number; currentMiB: number } | undefined;
  stop(): Promise<void>;
}

/** The image's `ENV NODE_OPTIONS=…` from the Dockerfile (heap cap), so the agent runs as in a pod. */
export function imageNodeOptions(): string | undefined {
  try {
    const m = /^ENV\s+NODE_OPTIONS=(?:"([^"]*)"|(\S+))/m.exec(readFileSync(path.join(ROOT, "Dockerfile"), "utf8"));
    return m ? (m[1] ?? m[2]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The node flags of the Dockerfile's ENTRYPOINT (those between the node binary and the bundle),
 * so the agent runs with exactly the flags a pod runs it with.
 */
export function entrypointNodeFlags(dockerfile: string): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!m) throw new Error("Dockerfile: no ENTRYPOINT in exec form");
  const argv = JSON.parse(m[1]!) as string[];
  const bundle = argv.findIndex((a) => a.endsWith("edgelb-sync-agent.mjs"));
  if (bundle < 1) throw new Error(`Dockerfile: ENTRYPOINT does not run dist/edgelb-sync-agent.mjs: ${m[1]}`);
  return argv.slice(1, bundle);
}

/** entrypointNodeFlags of this repository's Dockerfile. */
export function imageNodeFlags(): string[] {
  return entrypointNodeFlags(readFileSync(path.join(ROOT, "Dockerfile"), "utf8"));
}

/** The Node the image ships, resolved once per bench run (bench/lib/image-node): the agent runs on it as in a pod. */
let agentNode: ImageNode | undefined;
export function agentNodeHere(): ImageNode {
  return (agentNode ??= imageNodeHere(ROOT));
}

/** Starts the bundled agent (see agentBundle) with these flags, on the image's Node. */
export async function startAgentProcess(args: string[], env: Record<string, string> = {}): Promise<AgentProcess> {
  const bundle = await agentBundle();
  const startedAt = Date.now();
  // BENCH_AGENT_NODE_ARGS: extra node flags for the agent, after the image's (later flags win), to explore memory.
  const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
  const child = spawn(agentNodeHere().path, [...imageNodeFlags(), ...nodeArgs, bundle, "--log-format", "json", "--metrics-address", "127.0.0.1:0", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...(imageNodeOptions() ? { NODE_OPTIONS: imageNodeOptions()! } : {}), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: AgentLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = "";
  createInterface({ input: child.stdout! }).on("line", (raw) => {
    if (!raw.trim()) return;
    try {
      const j = JSON.parse(raw) as Record<string, unknown>;
      lines.push({ ...j, at: Date.now(), time: Date.parse(String(j.time)), level: String(j.level), msg: String(j.msg) } as AgentLine);
    } catch {
      return; // not a log line
    }
    for (const w of waiters) w();
  });
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited: string | undefined;
  child.on("exit", (code, signal) => {
    exited = `agent exited with ${signal ?? code}: ${stderr.trim().slice(-600)}`;
    for (const w of waiters) w();
  });
  const stop = trackChild(`sync agent pid ${child.pid}`, child);
  return {
    child,
    pid: child.pid!,
    startedAt,
    lines,
    waitFor(pred, timeoutMs, after = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => l.at >= after && pred(l));
          if (hit) return done(() => resolve(hit));
          if (exited) return done(() => reject(new Error(exited)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`agent: condition not met within ${timeoutMs} ms`))), timeoutMs);
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    exitReason: () => exited,
    memory() {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
        const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
        return { peakMiB: kb("VmHWM") / 1024, currentMiB: kb("VmRSS") / 1024 };
      } catch {
        return undefined;
      }
    },
    stop,
  };
}
