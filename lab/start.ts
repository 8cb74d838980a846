// `npm start`: the whole system on this machine, logs in the terminal, until
// Ctrl-C (SIGINT) or SIGTERM. See demo.ts for what runs and instructions.ts
// for what it prints.
//
//   npm start [-- --port 8787] [--host 127.0.0.1] [--address-base 127.0.0]
//             [--healthz-port 10256] [--api-port 0] [--state-dir .edgelb]
//             [--kubeconfig ~/.kube/config] [--clusters 2]
//
// Exit codes: 0 stopped by a signal, 1 could not start (one line on stderr),
// 2 bad flags.
import { rmSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import type { Demo } from "./demo/demo.ts";
import { assertPortFree, DemoError, PortInUseError } from "./demo/ports.ts";
import { takeStateLock } from "./demo/state-lock.ts";
import { agentLogger, demoLog, formatWorkerLine, terminalOutput } from "./demo/logs.ts";

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError(`"${value}" is not a port (0–65535)`);
  return Number(value);
}

function addressBase(value: string): string {
  const parts = value.split(".");
  if (parts.length !== 3 || parts[0] !== "127" || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new InvalidArgumentError(`"${value}" must be the first three octets of a loopback address, e.g. 127.0.0`);
  }
  return value;
}

const program = new Command("npm start --")
  .description("edgelb on this machine: a simulated cluster, the worker in local workerd, and the sync agent")
  .addOption(new Option("--port <port>", "the worker's port (0 = any free port)").argParser(port).default(8787).env("EDGELB_DEMO_PORT"))
  .addOption(new Option("--host <address>", "the worker's listen address").default("127.0.0.1").env("EDGELB_DEMO_HOST"))
  .addOption(
    new Option("--address-base <a.b.c>", "simulated nodes listen on <a.b.c>.11, .12, .13")
      .argParser(addressBase)
      .default("127.0.0")
      .env("EDGELB_DEMO_ADDRESS_BASE"),
  )
  .addOption(new Option("--healthz-port <port>", "kube-proxy's healthz port on the simulated nodes (0 = any)").argParser(port).default(10256).env("EDGELB_DEMO_HEALTHZ_PORT"))
  .addOption(new Option("--api-port <port>", "the simulated Kubernetes API server's port (0 = any)").argParser(port).default(0).env("EDGELB_DEMO_API_PORT"))
  .addOption(new Option("--state-dir <dir>", "where the kubeconfig and the push and read tokens are written").default(".edgelb").env("EDGELB_DEMO_STATE_DIR"))
  .addOption(
    new Option("--kubeconfig <path>", "use this real cluster instead of the simulated one (read-only: serves Services with loadBalancerClass edgelb.dev/worker)").env(
      "EDGELB_DEMO_KUBECONFIG",
    ),
  )
  .addOption(
    new Option("--clusters <n>", "simulated clusters behind the one worker (2–4: multi-cluster steering and failover, see docs/multi-cluster.md)")
      .argParser((v) => {
        if (!/^[1-4]$/.test(v)) throw new InvalidArgumentError(`"${v}" must be 1 to 4`);
        return Number(v);
      })
      .default(1),
  )
  .addOption(new Option("--gate", "put a node gate (edgelb-node-gate) in front of every simulated node: the worker signs each request (docs/gate.md)"))
  .addOption(new Option("--log-level <level>", "agent log level").choices(["debug", "info", "warn", "error"]).default("info"))
  .exitOverride()
  .configureOutput({ outputError: () => {} });

interface Flags {
  port: number;
  host: string;
  addressBase: string;
  healthzPort: number;
  apiPort: number;
  stateDir: string;
  kubeconfig?: string;
  logLevel: string;
  clusters: number;
  gate?: boolean;
}

let flags: Flags;
try {
  flags = program.parse(process.argv).opts<Flags>();
} catch (err) {
  const e = err as { code?: string; message: string };
  if (e.code === "commander.helpDisplayed" || e.code === "commander.help") process.exit(0);
  process.stderr.write(`edgelb demo: ${e.message.replace(/^error:\s*/, "")}\n(see npm start -- --help)\n`);
  process.exit(2);
}

const out = terminalOutput();

let demo: Pick<Demo, "stop"> | undefined;
/** What to print once everything is up (the single- or the multi-cluster lab's instructions). */
let ready: () => string[] = () => [];
let stopping = false;

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (!demo) {
    // Still starting: nothing worth a graceful stop yet. Exiting ends every
    // in-process listener; Miniflare's exit hook ends workerd.
    process.stderr.write(`edgelb demo: ${signal} during startup, stopped\n`);
    process.exit(130);
  }
  demoLog(out, "info", `${signal}: stopping the agent, the worker and the simulated cluster`);
  const guard = setTimeout(() => {
    process.stderr.write("edgelb demo: shutdown took longer than 10 s; exiting anyway\n");
    process.exit(1);
  }, 10_000);
  guard.unref();
  await demo.stop();
  demoLog(out, "info", "stopped; nothing is left running");
  process.exit(0);
}
const onSigint = () => void shutdown("SIGINT");
const onSigterm = () => void shutdown("SIGTERM");
process.on("SIGINT", onSigint);
process.on("SIGTERM", onSigterm);
// A closed terminal (SIGHUP) stops it the same way; its output may be gone by then.
process.on("SIGHUP", () => void shutdown("SIGHUP"));
process.stdout.on("error", () => {});
process.stderr.on("error", () => {});

// Miniflare installs exit hooks that kill workerd and exit(130) at once on
// SIGINT/SIGTERM; the demo stops its parts in order itself (its 'exit' hook
// stays as a last resort).
function keepOnlyOurSignalHandlers(): void {
  for (const [sig, ours] of [["SIGINT", onSigint], ["SIGTERM", onSigterm]] as const) {
    for (const l of process.listeners(sig)) if (l !== ours) process.removeListener(sig, l as () => void);
  }
}

demoLog(out, "info", flags.kubeconfig ? `starting against the cluster in ${flags.kubeconfig}` : "starting a simulated cluster, the worker and the agent");
try {
  // First: a lab killed hard may have left its workerd on the port checked next.
  const stateLock = await takeStateLock(path.resolve(flags.stateDir), {
    // The files a lab writes there (a real cluster's kubeconfig given by --kubeconfig is never one of them).
    staleFile: (name) => /^(push-token|read-token|kubeconfig(-[a-z0-9-]+)?)$/.test(name),
    say: (text) => demoLog(out, "info", text),
  });
  process.on("exit", () => stateLock.release());
  // Before the worker, the agent and wrangler's config reader load (seconds on a busy machine).
  await assertPortFree(flags.host, flags.port, "the worker's port", "Stop what uses it, or pick another port: npm start -- --port 8788");
  // From here on the demo's own files go with it however it ends (after the
  // port check: a second `npm start` that fails on the port must not remove
  // the first one's files; a real cluster's kubeconfig is never touched).
  process.on("exit", () => {
    const files = [
      path.join(flags.stateDir, "push-token"),
      path.join(flags.stateDir, "read-token"),
      ...(flags.kubeconfig ? [] : [path.join(flags.stateDir, "kubeconfig")]),
    ];
    for (const f of files) rmSync(f, { force: true });
  });
  if (flags.clusters > 1) {
    if (flags.kubeconfig) throw new DemoError("--clusters runs simulated clusters only; drop --kubeconfig");
    if (flags.gate) throw new DemoError("--clusters does not combine with --gate yet; drop one of them");
    const { startMultiClusterDemo, multiClusterInstructions } = await import("./demo/multi-cluster.ts");
    const multi = await startMultiClusterDemo({
      clusters: flags.clusters,
      host: flags.host,
      port: flags.port,
      addressBase: flags.addressBase,
      healthzPort: flags.healthzPort,
      stateDir: flags.stateDir,
      agentLog: agentLogger(out, flags.logLevel),
      onWorkerLog: (line) => out.line(formatWorkerLine(out, line)),
      onWorkerStarted: (url) => stateLock.update({ url }),
      onSimulator: (level, text) => demoLog(out, level, text),
    });
    demo = multi;
    ready = () => {
      multi.startupMs = Math.round(process.uptime() * 1000);
      return multiClusterInstructions(multi, out);
    };
  } else {
    const { startDemo } = await import("./demo/demo.ts");
    const single = await startDemo({
      host: flags.host,
      port: flags.port,
      addressBase: flags.addressBase,
      healthzPort: flags.healthzPort,
      apiPort: flags.apiPort,
      stateDir: flags.stateDir,
      ...(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {}),
      agentLog: agentLogger(out, flags.logLevel),
      ...(flags.gate ? { gate: {} } : {}),
      onWorkerLog: (line) => out.line(formatWorkerLine(out, line)),
      onWorkerStarted: (url) => stateLock.update({ url }),
      onSimulator: (level, text) => demoLog(out, level, text),
    });
    demo = single;
    const { instructions } = await import("./demo/instructions.ts");
    ready = () => {
      // What the user waited for: from the process start, module loading included.
      single.startupMs = Math.round(process.uptime() * 1000);
      return instructions(single, out);
    };
  }
} catch (err) {
  if (err instanceof PortInUseError || err instanceof DemoError) {
    process.stderr.write(`edgelb demo: ${err.message}\n`);
  } else {
    process.stderr.write(`edgelb demo: could not start: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
}

keepOnlyOurSignalHandlers();
for (const line of ready()) out.line(line);
