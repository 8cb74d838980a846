import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { CliError, quietErrors } from "../cli/index.ts";
import { addCitizenOptions, resolveCitizenConfig, type CitizenFlags } from "./cli.ts";

function parse(args: string[], env: NodeJS.ProcessEnv = {}, dryRun = false) {
  const cmd = quietErrors(addCitizenOptions(new Command("x")).action(() => {}));
  cmd.parse(["node", "x", ...args], { from: "node" });
  return resolveCitizenConfig(cmd.opts<CitizenFlags>(), env, { dryRun });
}

describe("citizen flags", () => {
  it("defaults to client-go's timings, leader election on, metrics on :9090", () => {
    expect(parse([])).toMatchObject({
      metricsAddress: ":9090",
      leaderElect: true,
      leaseName: "edgelb-sync-agent",
      timings: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      writeStatus: true,
    });
  });

  it("reads durations and switches", () => {
    const c = parse(["--leader-elect-lease-duration", "30s", "--leader-elect-renew-deadline", "20s", "--leader-elect-retry-period", "4s", "--no-leader-elect"]);
    expect(c.timings).toEqual({ leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 4_000 });
    expect(c.leaderElect).toBe(false);
    expect(parse([], { EDGELB_LEADER_ELECT: "false" }).leaderElect).toBe(false);
    expect(parse([], {}, true).writeStatus).toBe(false); // --dry-run writes nothing to the cluster either
  });

  it("refuses what cannot work, with one clear message", () => {
    expect(() => parse(["--metrics-address", "9090"])).toThrow(CliError);
    expect(() => parse(["--metrics-address", "9090"])).toThrow(/--metrics-address: .*must look like ":9090"/);
    expect(() => parse(["--leader-elect-renew-deadline", "15s"])).toThrow(/lease duration \(15000 ms\) must be greater than the renew deadline/);
    expect(() => parse([], { EDGELB_LEADER_ELECT: "maybe" })).toThrow(/EDGELB_LEADER_ELECT="maybe": expected true or false/);
    expect(() => parse(["--leader-elect-lease-name", "Not_A_Name"])).toThrow(/DNS subdomain/);
    expect(() => parse(["--leader-elect-retry-period", "soon"])).toThrow(/not a duration/);
  });
});

describe("--dry-run", () => {
  it("does not campaign for the production agents' Lease (it would create and hold edgelb/edgelb-sync-agent)", () => {
    const cmd = quietErrors(addCitizenOptions(new Command("x")).action(() => {}));
    cmd.parse(["node", "x"], { from: "node" });
    expect(resolveCitizenConfig(cmd.opts<CitizenFlags>(), {}, { dryRun: true }).leaderElect).toBe(false);
    expect(resolveCitizenConfig(cmd.opts<CitizenFlags>(), {}, { dryRun: false }).leaderElect).toBe(true);
  });

  it("cleanup's help says to stop the agent first (a running agent pushes the cluster back), then delete", async () => {
    const { buildCli } = await import("../main.ts");
    const cleanup = buildCli({}).commands.find((c) => c.name() === "cleanup")!;
    const help = cleanup.helpInformation().replace(/\s+/g, " ");
    expect(help).toMatch(/Stop the agent first \(kubectl -n edgelb scale deployment\/edgelb-sync-agent --replicas=0\), or it pushes the cluster back; then kubectl delete -k/);
  });
});

