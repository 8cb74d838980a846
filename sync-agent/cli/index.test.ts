import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { AgentConfig } from "../config.ts";
import {
  ANNOTATION_ALGORITHM,
  ANNOTATION_BACKEND_PROTOCOL,
  ANNOTATION_HOSTNAMES,
  ANNOTATION_PORT,
  ANNOTATION_RESPONSE_TIMEOUT,
  ANNOTATION_RETRY_NON_IDEMPOTENT,
} from "../model/constants.ts";
import { buildProgram, parseDuration, quietErrors, usageMessage } from "./index.ts";

// commander reads option env vars from process.env itself: set them for the call.
async function parse(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentConfig> {
  let got: AgentConfig | undefined;
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith("EDGELB_") || k.startsWith("CLOUDFLARE_")) delete process.env[k];
  Object.assign(process.env, env);
  try {
    const program = quietErrors(buildProgram({ run: async (c) => void (got = c), env }));
    await program.parseAsync(args, { from: "user" });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return got!;
}

async function usageError(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const err = await parse(args, env).then(() => undefined, (e: unknown) => e);
  const msg = usageMessage(err);
  if (msg === undefined) throw new Error(`expected a usage error, got ${String(err)}`);
  return msg;
}

const dir = mkdtempSync(path.join(tmpdir(), "edgelb-cli-"));
const tokenFile = path.join(dir, "token");
writeFileSync(tokenFile, "s3cret\n");

describe("cli", () => {
  it("--help names every Service annotation with its default", () => {
    let out = "";
    const program = buildProgram({ run: async () => {} }).configureOutput({ writeOut: (t) => void (out += t) });
    program.outputHelp();
    for (const a of [ANNOTATION_HOSTNAMES, ANNOTATION_PORT, ANNOTATION_BACKEND_PROTOCOL, ANNOTATION_ALGORITHM, ANNOTATION_RETRY_NON_IDEMPOTENT, ANNOTATION_RESPONSE_TIMEOUT]) {
      expect(out).toContain(`  ${a}  `);
    }
    expect(out).toMatch(/retry-non-idempotent[^\n]*\n[^\n]*default false/);
    expect(out).toMatch(/response-timeout[^\n]*up to 1h\n[^\n]*default 30s/);
  });

  it("builds a worker config with defaults and reads the token file", async () => {
    const c = await parse(["--cluster", "home", "--worker-url", "https://edge.example.com/", "--push-token-file", tokenFile]);
    expect(c).toMatchObject({
      cluster: "home",
      sink: "worker",
      workerUrl: "https://edge.example.com",
      pushToken: "s3cret",
      loadBalancerClass: "edgelb.dev/worker",
      onlyClass: false,
      addressPreference: ["ExternalIP", "InternalIP"],
      health: { mode: "kube-proxy", intervalMs: 5000, timeoutMs: 2000, rise: 2, fall: 2, healthzPort: 10256 },
      dryRun: false,
    });
  });

  it("takes every flag from the environment too", async () => {
    const c = await parse([], {
      EDGELB_CLUSTER: "lab",
      EDGELB_SINK: "kv-api",
      CLOUDFLARE_ACCOUNT_ID: "acc",
      EDGELB_NAMESPACE_ID: "ns",
      CLOUDFLARE_API_TOKEN: "tok",
      EDGELB_HEALTH_CHECK_INTERVAL: "200ms",
      EDGELB_HEALTH_CHECK_TIMEOUT: "100ms",
      EDGELB_NODE_ADDRESS_PREFERENCE: "InternalIP",
      EDGELB_ONLY_CLASS: "true",
      EDGELB_DAILY_WRITE_BUDGET: "1000",
    });
    expect(c).toMatchObject({
      cluster: "lab",
      sink: "kv-api",
      accountId: "acc",
      namespaceId: "ns",
      apiToken: "tok",
      onlyClass: true,
      addressPreference: ["InternalIP"],
      dailyWriteBudget: 1000,
      health: { intervalMs: 200, timeoutMs: 100 },
    });
  });

  it("explains what is missing or wrong in one line", async () => {
    expect(await usageError([])).toMatch(/--cluster is required/);
    expect(await usageError(["--cluster", "home"])).toBe("--sink worker needs --worker-url (or EDGELB_WORKER_URL)");
    expect(await usageError(["--cluster", "home", "--worker-url", "https://e"])).toMatch(/push token/);
    expect(await usageError(["--cluster", "home", "--sink", "kv"])).toMatch(/--sink <kind>' argument 'kv' is invalid/);
    expect(await usageError(["--cluster", "home", "--rise", "0"])).toMatch(/out of range/);
    expect(await usageError(["--cluster", "home", "--node-address-preference", "Public"])).toMatch(/comma-separated list/);
    expect(await usageError(["--cluster", "home", "--health-check-interval", "1s", "--health-check-timeout", "2s", "--dry-run"])).toMatch(
      /must be shorter than --health-check-interval/,
    );
    expect(await usageError(["--cluster", "home", "--dry-run", "--kubeconfig", path.join(dir, "missing")])).toMatch(/cannot read it \(ENOENT\)/);
  });

  it("reads --region and --location LAT,LON, from flags or the environment", async () => {
    expect(await parse(["--cluster", "home", "--dry-run", "--region", "eu-central", "--location", "50.11, 8.68"])).toMatchObject({
      region: "eu-central",
      location: { lat: 50.11, lon: 8.68 },
    });
    expect(await parse(["--cluster", "home", "--dry-run"], { EDGELB_REGION: "us-east", EDGELB_LOCATION: "-33.87,151.21" })).toMatchObject({
      region: "us-east",
      location: { lat: -33.87, lon: 151.21 },
    });
    const none = await parse(["--cluster", "home", "--dry-run"]);
    expect(none.region).toBeUndefined();
    expect(none.location).toBeUndefined();
  });

  it("refuses a location or region the edge could not use, saying what is expected", async () => {
    for (const bad of ["50.11", "8.68,50.11,1", "91,0", "0,181", "north,east", ",8"]) {
      expect(await usageError(["--cluster", "home", "--dry-run", "--location", bad])).toMatch(/must be LAT,LON in degrees/);
    }
    expect(await usageError(["--cluster", "home", "--dry-run", "--region", "eu central"])).toMatch(/must be 1-63 letters/);
  });

  it("needs no secrets for a dry run", async () => {
    const c = await parse(["--cluster", "home", "--dry-run"]);
    expect(c.dryRun).toBe(true);
  });

  it("parses durations", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("40")).toBe(40);
    expect(() => parseDuration("soon")).toThrow(/not a duration/);
  });

  it("takes address family, private-address allowance and allowed hostnames, and refuses bad ones", async () => {
    const base = ["--cluster", "home", "--worker-url", "https://edge.example.com/", "--push-token-file", tokenFile];
    const c = await parse([...base, "--address-family", "prefer-ipv6", "--allow-private-addresses", "--allowed-hostnames", "*.Example.com, example.com."]);
    expect(c).toMatchObject({ addressFamily: "prefer-ipv6", allowPrivateAddresses: true, allowedHostnames: ["*.example.com", "example.com"] });
    const d = await parse(base, { EDGELB_ALLOW_PRIVATE_ADDRESSES: "true", EDGELB_ADDRESS_FAMILY: "ipv4" });
    expect(d).toMatchObject({ addressFamily: "ipv4", allowPrivateAddresses: true, allowedHostnames: undefined });
    expect(await usageError([...base, "--address-family", "ipv5"])).toMatch(/--address-family.*ipv4, ipv6, prefer-ipv4, prefer-ipv6/);
    expect(await usageError([...base, "--allowed-hostnames", "*.example.com,ex ample.com"])).toMatch(/invalid: ex ample.com/);
  });

  it("--probe-address-preference: InternalIP first by default, a list of types or \"published\", from a flag or the environment", async () => {
    const base = ["--cluster", "home", "--worker-url", "https://edge.example.com/", "--push-token-file", tokenFile];
    expect((await parse(base)).probeAddressPreference).toEqual(["InternalIP", "ExternalIP"]);
    expect((await parse([...base, "--probe-address-preference", "published"])).probeAddressPreference).toBe("published");
    expect((await parse(base, { EDGELB_PROBE_ADDRESS_PREFERENCE: "ExternalIP" })).probeAddressPreference).toEqual(["ExternalIP"]);
    expect(await usageError([...base, "--probe-address-preference", "PrivateIP"])).toMatch(/--probe-address-preference.*"published" or a comma-separated list of ExternalIP, InternalIP/);
    let help = "";
    buildProgram({ run: async () => {} }).configureOutput({ writeOut: (t) => void (help += t) }).outputHelp();
    expect(help.replace(/\s+/g, " ")).toMatch(/--probe-address-preference <types> .*?\(default: InternalIP,ExternalIP, env: EDGELB_PROBE_ADDRESS_PREFERENCE\)/);
  });

  it("--endpoint-loss-hold sets noEndpointHoldMs (default 10s; 0 = no hold), from a flag or the environment, and refuses a bad value", async () => {
    const base = ["--cluster", "home", "--worker-url", "https://edge.example.com/", "--push-token-file", tokenFile];
    expect((await parse(base)).noEndpointHoldMs).toBe(10_000);
    expect((await parse([...base, "--endpoint-loss-hold", "2s"])).noEndpointHoldMs).toBe(2_000);
    expect((await parse([...base, "--endpoint-loss-hold", "0"])).noEndpointHoldMs).toBe(0);
    expect((await parse(base, { EDGELB_ENDPOINT_LOSS_HOLD: "500ms" })).noEndpointHoldMs).toBe(500);
    expect(await usageError([...base, "--endpoint-loss-hold", "soon"])).toMatch(/--endpoint-loss-hold.*"soon" is not a duration/);
    expect(await usageError([...base, "--endpoint-loss-hold", "10m"])).toMatch(/--endpoint-loss-hold.*longer than 5m/);
    expect(await usageError(base, { EDGELB_ENDPOINT_LOSS_HOLD: "-1s" })).toMatch(/not a duration/);
    let help = "";
    buildProgram({ run: async () => {} }).configureOutput({ writeOut: (t) => void (help += t) }).outputHelp();
    expect(help.replace(/\s+/g, " ")).toMatch(/--endpoint-loss-hold <duration> .*?\(default: 10s, env: EDGELB_ENDPOINT_LOSS_HOLD\)/);
  });
});
