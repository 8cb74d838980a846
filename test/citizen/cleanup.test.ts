// `edgelb-sync-agent cleanup --cluster NAME`: removes the cluster's snapshot
// from the edge, through either sink.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addCleanupCommand } from "../../sync-agent/citizen/cli.ts";
import { quietErrors } from "../../sync-agent/cli/index.ts";
import { main } from "../../sync-agent/main.ts";
import { parseTombstone } from "../../worker/config/stored.ts";
import { startFakeCloudflare, type FakeCloudflare } from "../cloudflare/fake-kv-api.ts";

let cf: FakeCloudflare;
const stored = {
  schema: "edgelb.dev/snapshot/v1",
  cluster: "home",
  generation: 41,
  publishedAt: "2026-11-26T08:00:00.000Z",
  nodes: [],
  services: [],
};

beforeAll(async () => {
  cf = await startFakeCloudflare({ accountId: "acc", namespaceId: "ns", token: "cf-token" });
});
afterAll(async () => {
  await cf.stop();
});

async function cleanup(args: string[], env: NodeJS.ProcessEnv) {
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const program = new Command("edgelb-sync-agent");
  addCleanupCommand(program, env, { log });
  quietErrors(program);
  await program.parseAsync(["node", "edgelb-sync-agent", "cleanup", ...args]);
  return lines.map((l) => l.msg);
}

const kvArgs = () => ["--cluster", "home", "--sink", "kv-api", "--account-id", "acc", "--namespace-id", "ns", "--cloudflare-api-url", cf.baseUrl];

describe("cleanup with the KV sink", () => {
  it("replaces cluster/<name> by a deletion tombstone and says which generation it removed; repeating is harmless", async () => {
    cf.values.set("cluster/home", JSON.stringify(stored));
    cf.values.set("cluster/other", JSON.stringify({ ...stored, cluster: "other" }));
    expect(await cleanup(kvArgs(), { CLOUDFLARE_API_TOKEN: "cf-token" })).toEqual([expect.stringContaining("removed cluster home (generation 41)")]);
    // A tombstone, as the worker's DELETE leaves: the worker hands it on to the fast path (worker/config/fast).
    expect(parseTombstone(cf.values.get("cluster/home")!)).toMatchObject({ cluster: "home", generation: 42 });
    expect(cf.values.has("cluster/other")).toBe(true);
    expect(await cleanup(kvArgs(), { CLOUDFLARE_API_TOKEN: "cf-token" })).toEqual([expect.stringContaining("nothing to remove")]);
  });

  it("exits 1 with one clear line when the edge refuses, and 2 for bad flags", async () => {
    cf.values.set("cluster/home", JSON.stringify(stored));
    const errors: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => (errors.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["node", "x", "cleanup", ...kvArgs()], { CLOUDFLARE_API_TOKEN: "wrong" })).toBe(1);
      expect(await main(["node", "x", "cleanup", "--sink", "kv-api"], {})).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errors[0]).toMatch(/^edgelb-sync-agent: cleanup of cluster home failed, nothing was removed: .*403/);
    expect(errors[0]!.split("\n").filter(Boolean)).toHaveLength(1);
    expect(errors[1]).toMatch(/--cluster is required/);
    expect(cf.values.has("cluster/home")).toBe(true);
  });
});

describe("cleanup with the worker sink", () => {
  let server: Server;
  let url: string;
  const seen: Array<{ method: string; path: string; auth: string | undefined }> = [];
  beforeAll(async () => {
    // The worker's push endpoint: GET/PUT/DELETE /__edgelb/v1/clusters/:name with the push token.
    server = createServer((req, res) => {
      seen.push({ method: req.method!, path: req.url!, auth: req.headers.authorization });
      if (req.method === "GET") res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stored));
      else res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("sends DELETE /__edgelb/v1/clusters/<name> with the push token from a file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgelb-cleanup-"));
    writeFileSync(join(dir, "token"), "push-secret\n");
    let msgs: string[];
    try {
      msgs = await cleanup(["--cluster", "home", "--worker-url", url, "--push-token-file", join(dir, "token")], {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(seen.at(-1)).toEqual({ method: "DELETE", path: "/__edgelb/v1/clusters/home", auth: "Bearer push-secret" });
    expect(msgs[0]).toContain("removed cluster home (generation 41)");
  });
});
