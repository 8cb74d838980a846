// Issue 14: an origin that sends its head and then stops sending the body must
// not hold the client (or the origin's in-flight slot) forever over the fetch()
// transport. Inside workerd, through the whole worker, against a real loopback
// origin that stalls (the raw origin of socket-origins.setup.ts):
// - a declared length ends within responseTimeoutMs + length ÷ minBodyRate,
//   both for small bodies handed over as fetch() returned them and for large
//   ones that are piped;
// - a body of unknown length must end within bodyTimeoutMs (it is piped
//   natively, which shows no progress, so the bound is on the whole body);
// and in each case the origin stops counting as in flight at the deadline (not
// at some later end of the pipe), the stall is logged (origin.body_stalled) and
// counted against the node, and the client's response errors (never ends as if
// complete: the abort through fetch()'s signal reaches the client in workerd).
import { describe, expect, inject, it } from "vitest";
import { createFetchTransport } from "../../worker/transport/fetch/index.ts";
import { socketTransport } from "../../worker/transport/socket/index.ts";
import { testEdge, uniqueCluster, snapshot, service, until, type TestEdge } from "./helpers.ts";

const o = inject("socketOrigins");
const RESPONSE_TIMEOUT_MS = 300;
const BODY_MS = 300;
const HOST = "stall.example.com";

async function stallEdge(lines: unknown[][]): Promise<TestEdge> {
  const fetchT = createFetchTransport(undefined, {
    // 1 MiB at 8 MiB/s: 125 ms on top of the response timeout.
    minBodyRate: 8 * 2 ** 20,
    bodyTimeoutMs: BODY_MS,
    log: (...line) => lines.push(line),
  });
  const cluster = uniqueCluster("stall");
  const edge = testEdge({ EDGELB_CLUSTERS: cluster, EDGELB_TRANSPORT: "fetch" }, { transports: { fetch: fetchT, socket: socketTransport } });
  await edge.seed(
    snapshot(cluster, [{ name: "raw", address: o.raw.address, healthy: true }], [
      service({ hostnames: [HOST], nodePort: o.raw.port, policy: { responseTimeoutMs: RESPONSE_TIMEOUT_MS } }),
    ]),
  );
  return edge;
}

/** Reads the client's body to its end; the error it ends with (or undefined), the bytes before it and when. */
async function readAll(res: Response): Promise<{ text: string; error: unknown; ms: number }> {
  const started = Date.now();
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return { text, error: undefined, ms: Date.now() - started };
      text += decoder.decode(r.value, { stream: true });
    }
  } catch (error) {
    return { text, error, ms: Date.now() - started };
  }
}

function inFlight(edge: TestEdge): number {
  return edge.status().clusters.flatMap((c) => c.nodes.flatMap((n) => n.origins.map((x) => x.inFlight))).reduce((a, b) => a + b, 0);
}

describe("a fetch() body that stalls after the head", () => {
  for (const [kind, path, boundMs] of [
    // 100 bytes declared, 10 sent: handed over untouched, cut by the body deadline (300 ms + ~0).
    ["small Content-Length", "/raw/stall-body", RESPONSE_TIMEOUT_MS + 1 + 2_000],
    // 1 MiB declared, 10 bytes sent: piped, cut by the body deadline (300 ms + 125 ms).
    ["large Content-Length", "/raw/stall-large", RESPONSE_TIMEOUT_MS + 125 + 2_000],
    // An event stream that goes quiet: cut at bodyTimeoutMs after the head.
    ["unknown length (chunked)", "/raw/stall-chunked", BODY_MS + 2_000],
  ] as const) {
    it(`ends the client's response with an error within a bounded time and releases in-flight (${kind})`, async () => {
      const lines: unknown[][] = [];
      const edge = await stallEdge(lines);
      const res = await edge.request(HOST, path);
      expect(res.status).toBe(200);
      const got = await readAll(res);
      expect(got.error, "the client's response errors instead of ending as if complete").toBeDefined();
      // The first bytes reach the client; the stall is bounded (slack for a loaded machine).
      expect(got.text.length).toBeGreaterThan(0);
      expect(got.ms).toBeLessThan(boundMs);
      expect(inFlight(edge)).toBe(0);
    });
  }

  it("reports a large body cut by its deadline as the origin's failure (counts toward ejection)", async () => {
    const lines: unknown[][] = [];
    const edge = await stallEdge(lines);
    const got = await readAll(await edge.request(HOST, "/raw/stall-large"));
    expect(got.error).toBeDefined();
    expect(lines).toContainEqual(["error", "origin.body_stalled", { node: "raw", error: expect.stringMatching(/did not end within 425 ms/) }]);
    expect(edge.status().clusters[0]!.nodes[0]!.origins[0]).toMatchObject({ consecutiveFailures: 1, lastError: expect.stringMatching(/did not end/) });
  });

  it("reports an unknown-length body that did not end by its deadline as the origin's failure (counts toward ejection)", async () => {
    const lines: unknown[][] = [];
    const edge = await stallEdge(lines);
    const got = await readAll(await edge.request(HOST, "/raw/stall-chunked"));
    expect(got.error).toBeDefined();
    expect(lines).toContainEqual(["error", "origin.body_stalled", { node: "raw", error: expect.stringMatching(/unknown length\) did not end within 300 ms/) }]);
    expect(edge.status().clusters[0]!.nodes[0]!.origins[0]).toMatchObject({ inFlight: 0, consecutiveFailures: 1, lastError: expect.stringMatching(/stalled/) });
  });

  it("releases in-flight and counts the failure at the deadline even while the client is not reading", async () => {
    // The guarantee does not depend on the client: nobody reads this response, yet the node's
    // slot comes back and the stall is counted within the bound.
    const lines: unknown[][] = [];
    const edge = await stallEdge(lines);
    const started = Date.now();
    const res = await edge.request(HOST, "/raw/stall-chunked");
    expect(res.status).toBe(200);
    await until(() => (lines.some((l) => l[1] === "origin.body_stalled") ? true : undefined), "origin.body_stalled logged");
    expect(Date.now() - started).toBeLessThan(BODY_MS + 2_000);
    expect(inFlight(edge)).toBe(0);
    expect(edge.status().clusters[0]!.nodes[0]!.origins[0]).toMatchObject({ consecutiveFailures: 1 });
    await res.body?.cancel().catch(() => {});
  });

  it("does not cut a complete body of unknown length", async () => {
    const lines: unknown[][] = [];
    const edge = await stallEdge(lines);
    const whole = await readAll(await edge.request(HOST, "/raw/close-delimited"));
    expect(whole).toMatchObject({ text: "read until the origin closes", error: undefined });
    expect(lines).toEqual([]);
    // The pipe's completion (which releases the count) settles just after the client saw the end.
    await until(() => (inFlight(edge) === 0 ? true : undefined), "in-flight back to 0 after a whole body");
    expect(lines).toEqual([]);
  });
});

