// Command-line surface of the citizen modules: the flags for metrics and
// leader election (added to the agent's program), and the `cleanup`
// subcommand that removes this cluster's snapshot from the edge.
import { Command, Option } from "commander";
import type { Logger } from "pino";
import { buildSink } from "../agent.ts";
import { CliError, addSinkOptions, parseDuration, resolveSinkConfig, type SinkFlags } from "../cli/index.ts";
import { defaultConfig } from "../config.ts";
import { createLogger } from "../log/index.ts";
import { parseListenAddress } from "../metrics/index.ts";
import { DEFAULT_LEASE_NAME, DEFAULT_TIMINGS, validateTimings } from "../leader/index.ts";
import { CITIZEN_DEFAULTS, type CitizenConfig } from "./index.ts";
import { SinkError } from "../sinks/types.ts";

export function addCitizenOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--metrics-address <host:port>", 'where /metrics, /healthz and /readyz listen ("" disables)')
        .default(CITIZEN_DEFAULTS.metricsAddress)
        .env("EDGELB_METRICS_ADDRESS"),
    )
    .addOption(
      new Option("--no-leader-elect", "do not elect a leader: this replica always pushes and writes status (run only one); env EDGELB_LEADER_ELECT=false"),
    )
    .addOption(
      new Option("--leader-elect-lease-name <name>", "name of the coordination.k8s.io Lease the replicas share")
        .default(DEFAULT_LEASE_NAME)
        .env("EDGELB_LEADER_ELECT_LEASE_NAME"),
    )
    .addOption(
      new Option("--leader-elect-namespace <ns>", "namespace of the Lease (default: the pod's namespace, else edgelb)").env("EDGELB_LEADER_ELECT_NAMESPACE"),
    )
    .addOption(
      new Option("--leader-elect-lease-duration <duration>", "a standby takes over after the leader has not renewed for this long")
        .argParser(parseDuration)
        .default(DEFAULT_TIMINGS.leaseDurationMs, "15s")
        .env("EDGELB_LEADER_ELECT_LEASE_DURATION"),
    )
    .addOption(
      new Option("--leader-elect-renew-deadline <duration>", "the leader stops writing if it could not renew for this long (< lease duration)")
        .argParser(parseDuration)
        .default(DEFAULT_TIMINGS.renewDeadlineMs, "10s")
        .env("EDGELB_LEADER_ELECT_RENEW_DEADLINE"),
    )
    .addOption(
      new Option("--leader-elect-retry-period <duration>", "time between attempts to acquire or renew the Lease")
        .argParser(parseDuration)
        .default(DEFAULT_TIMINGS.retryPeriodMs, "2s")
        .env("EDGELB_LEADER_ELECT_RETRY_PERIOD"),
    )
    .addOption(
      new Option("--max-push-lag <duration>", "log a warning when a change has not reached the edge for this long (see edgelb_push_lag_seconds)")
        .argParser(parseDuration)
        .default(CITIZEN_DEFAULTS.maxPushLagMs, "5m")
        .env("EDGELB_MAX_PUSH_LAG"),
    );
}

export interface CitizenFlags {
  metricsAddress: string;
  leaderElect: boolean;
  leaderElectLeaseName: string;
  leaderElectNamespace?: string;
  leaderElectLeaseDuration: number;
  leaderElectRenewDeadline: number;
  leaderElectRetryPeriod: number;
  maxPushLag: number;
}

export function resolveCitizenConfig(o: CitizenFlags, env: NodeJS.ProcessEnv, opts: { dryRun: boolean }): CitizenConfig {
  if (o.metricsAddress) {
    try {
      parseListenAddress(o.metricsAddress);
    } catch (err) {
      throw new CliError(`--metrics-address: ${(err as Error).message}`);
    }
  }
  const raw = env.EDGELB_LEADER_ELECT;
  let leaderElect = o.leaderElect;
  if (leaderElect && raw !== undefined && raw !== "") {
    if (/^(0|false|no|off)$/i.test(raw)) leaderElect = false;
    else if (!/^(1|true|yes|on)$/i.test(raw)) throw new CliError(`EDGELB_LEADER_ELECT=${JSON.stringify(raw)}: expected true or false`);
  }
  const timings = {
    leaseDurationMs: o.leaderElectLeaseDuration,
    renewDeadlineMs: o.leaderElectRenewDeadline,
    retryPeriodMs: o.leaderElectRetryPeriod,
  };
  const invalid = validateTimings(timings);
  if (leaderElect && invalid) throw new CliError(invalid.replace(/^leader election: /, "--leader-elect-*: "));
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(o.leaderElectLeaseName)) {
    throw new CliError(`--leader-elect-lease-name "${o.leaderElectLeaseName}": must be a DNS subdomain name`);
  }
  return {
    metricsAddress: o.metricsAddress,
    // A dry run (often from a laptop, against the real cluster) must not campaign for the deployed
    // replicas' Lease: holding it would leave them standing by and nothing pushed.
    leaderElect: leaderElect && !opts.dryRun,
    leaseName: o.leaderElectLeaseName,
    leaseNamespace: o.leaderElectNamespace,
    timings,
    // A dry run writes nothing to the cluster either.
    writeStatus: !opts.dryRun,
    maxPushLagMs: o.maxPushLag,
  };
}

/**
 * `edgelb-sync-agent cleanup --cluster NAME`: removes the cluster's snapshot
 * from the edge (the worker's DELETE /__edgelb/v1/clusters/NAME, or a DELETE
 * of the KV value). For uninstalling; the edge then stops routing the
 * cluster's hostnames. Safe to repeat.
 */
export function addCleanupCommand(program: Command, env: NodeJS.ProcessEnv, deps: { log?: Logger } = {}): Command {
  const cmd = addSinkOptions(new Command("cleanup"))
    .description(
      "remove this cluster's snapshot from the edge; the edge stops routing its hostnames. Stop the agent first " +
        "(kubectl -n edgelb scale deployment/edgelb-sync-agent --replicas=0), or it pushes the cluster back; then kubectl delete -k",
    )
    .addOption(
      new Option("--log-format <format>", "json or pretty").choices(["json", "pretty"]).default("pretty").env("EDGELB_LOG_FORMAT"),
    )
    .action(async (flags: SinkFlags & { logFormat: "json" | "pretty" }) => {
      const sinkConfig = resolveSinkConfig(flags, env);
      const log = deps.log ?? createLogger({ format: flags.logFormat, level: "info" });
      const sink = buildSink(defaultConfig({ ...sinkConfig }));
      let stored: Awaited<ReturnType<typeof sink.read>> | null;
      try {
        // A fatal read error (wrong namespace, account or token) fails the command: saying
        // "nothing to remove" would leave the real snapshot routing the cluster's hostnames.
        stored = await sink.read().catch((err: unknown) => {
          if (err instanceof SinkError && err.kind === "fatal") throw err;
          return null;
        });
        await sink.remove();
      } catch (err) {
        // One line for the user, not a stack trace (exit code 1: nothing was removed).
        const e = new Error(`cleanup of cluster ${sinkConfig.cluster} failed, nothing was removed: ${(err as Error).message}`);
        e.stack = e.message;
        throw e;
      }
      log.info(
        { cluster: sinkConfig.cluster, sink: sink.description, removedGeneration: stored?.generation || null },
        stored && stored.generation > 0 && !stored.deleted
          ? `removed cluster ${sinkConfig.cluster} (generation ${stored.generation}) from ${sink.description}`
          : `cluster ${sinkConfig.cluster} had no snapshot at ${sink.description}; nothing to remove`,
      );
    });
  // The agent's own flags (--cluster, --sink, ...) share names with the
  // subcommand's: options after `cleanup` belong to `cleanup`.
  program.enablePositionalOptions();
  program.addCommand(cmd);
  return cmd;
}
