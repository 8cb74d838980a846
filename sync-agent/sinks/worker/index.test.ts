// The worker sink against a stand-in that answers as the push endpoint's
// contract says (the real worker is exercised by test/agent/*).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../../worker/snapshot/schema.ts";
import { SinkError } from "../types.ts";
import { WorkerSink } from "./index.ts";

let server: http.Server;
let url: string;
let stored: string | undefined;
const seen: { method: string; path: string; auth?: string }[] = [];

beforeAll(async () => {
  server = http.createServer(async (req, res) => {
    seen.push({ method: req.method!, path: req.url!, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    let body = "";
    for await (const c of req) body += c;
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (req.headers.authorization !== "Bearer push-token") return json(401, { error: "bad push token" });
    if (req.method === "GET") return stored ? json(200, JSON.parse(stored)) : json(404, { error: "no snapshot" });
    if (req.method === "DELETE") {
      stored = undefined;
      return json(200, { deleted: true });
    }
    if (body.length > 2000) return json(413, { error: "snapshot too large" });
    const s = JSON.parse(body) as Snapshot;
    const old = stored ? (JSON.parse(stored) as Snapshot) : undefined;
    if (old && s.generation <= old.generation) return json(409, { error: "generation is not newer", storedGeneration: old.generation });
    stored = body;
    return json(200, { accepted: true, generation: s.generation, unchanged: false });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const snap = (generation: number, extra = 0): Snapshot => ({
  schema: "edgelb.dev/snapshot/v1",
  cluster: "home",
  generation,
  publishedAt: "2026-01-01T00:00:00.000Z",
  nodes: Array.from({ length: 1 + extra }, (_, i) => ({ name: `node-${i}`, address: "10.0.0.1", healthy: true })),
  services: [],
});

async function failure(p: Promise<unknown>): Promise<SinkError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(SinkError);
  return e as SinkError;
}

describe("worker sink", () => {
  it("PUTs to /__edgelb/v1/clusters/<name> with the bearer token and reads it back", async () => {
    const s = new WorkerSink({ workerUrl: url, cluster: "home", token: "push-token" });
    expect(await s.read()).toEqual({ snapshot: null, generation: 0 });
    await s.write(snap(4));
    expect(seen.at(-1)).toEqual({ method: "PUT", path: "/__edgelb/v1/clusters/home", auth: "Bearer push-token" });
    expect((await s.read()).generation).toBe(4);
  });
  it("reports an older generation as a conflict with the stored generation", async () => {
    const s = new WorkerSink({ workerUrl: url, cluster: "home", token: "push-token" });
    const err = await failure(s.write(snap(3)));
    expect(err.kind).toBe("conflict");
    expect(err.details.storedGeneration).toBe(4);
  });
  it("reports a bad token and a too-large snapshot as fatal, with a hint", async () => {
    const bad = new WorkerSink({ workerUrl: url, cluster: "home", token: "wrong" });
    const err = await failure(bad.write(snap(5)));
    expect(err.kind).toBe("fatal");
    expect(err.message).toMatch(/401: bad push token \(check --push-token-file/);
    const big = await failure(new WorkerSink({ workerUrl: url, cluster: "home", token: "push-token" }).write(snap(5, 40)));
    expect(big).toMatchObject({ kind: "fatal", details: { status: 413 } });
  });
  it("removes the snapshot", async () => {
    const s = new WorkerSink({ workerUrl: url, cluster: "home", token: "push-token" });
    await s.remove();
    expect((await s.read()).snapshot).toBeNull();
  });
});
