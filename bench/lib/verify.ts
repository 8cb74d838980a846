// A row's answers must be the real thing: before and after its load the bench
// sends a few requests and checks each is 200, came from an origin the row
// is meant to reach (the simulated node's x-edgelb-node header, or, for the
// socket floor that returns the origin's raw bytes, its status line and
// header inside the body) and carried the whole body. A row that fails a
// check, or had errors under load, is invalid: its numbers are not results.
import { requestWithHost } from "../../lab/edge/start-worker.ts";

export interface Expectation {
  /** Origins (simulated node names) a good answer may come from. */
  nodes: readonly string[];
  /** Every one of `nodes` must answer among the probes (round-robin rows). */
  everyNode?: boolean;
  /** The row returns the origin's raw HTTP/1.1 response as its body (socket floor). */
  rawHttp?: boolean;
  /** Exact bytes of the origin's body (large-body rows); raw rows carry the head on top. */
  bodyBytes?: number;
}

export interface Probe {
  status: number;
  /** x-edgelb-node of the answer, if any. */
  node: string | undefined;
  /** The first 4 KiB of the body, as text. */
  head: string;
  bytes: number;
  /** Transport failure (refused, reset, timeout). */
  error?: string;
}

/** One request through the row, the body read to the end and counted. */
export async function probe(url: string, host: string | undefined, pathAndQuery: string, timeoutMs = 10_000): Promise<Probe> {
  const u = new URL(url);
  try {
    const res = await requestWithHost(u.hostname, Number(u.port), host ?? u.host, pathAndQuery, { signal: AbortSignal.timeout(timeoutMs) });
    let bytes = 0;
    let head = "";
    const decoder = new TextDecoder();
    if (res.body) {
      for await (const chunk of res.body) {
        bytes += chunk.byteLength;
        if (head.length < 4096) head += decoder.decode(chunk.subarray(0, 4096), { stream: true });
      }
    }
    return { status: res.status, node: res.headers.get("x-edgelb-node") ?? undefined, head: head.slice(0, 4096), bytes };
  } catch (err) {
    return { status: 0, node: undefined, head: "", bytes: 0, error: (err as Error).message };
  }
}

/** The origin that answered, or undefined. */
function answeredBy(e: Expectation, p: Probe): string | undefined {
  if (!e.rawHttp) return p.node;
  return /\r\nx-edgelb-node: ([^\r\n]+)\r\n/i.exec(p.head)?.[1];
}

/** What is wrong with a row's probes (empty: the row answers as it should). Pure. */
export function judgeProbes(e: Expectation, probes: readonly Probe[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  if (probes.length === 0) problems.push("no probe answered");
  for (const [i, p] of probes.entries()) {
    const what = `probe ${i + 1}`;
    if (p.error) {
      problems.push(`${what}: ${p.error}`);
      continue;
    }
    if (p.status !== 200) {
      problems.push(`${what}: status ${p.status} (${JSON.stringify(p.head.slice(0, 120))})`);
      continue;
    }
    if (e.rawHttp && !/^HTTP\/1\.1 200 /.test(p.head)) {
      problems.push(`${what}: the origin's raw answer is not "HTTP/1.1 200" (${JSON.stringify(p.head.slice(0, 60))})`);
      continue;
    }
    const node = answeredBy(e, p);
    if (!node) {
      problems.push(`${what}: no x-edgelb-node, so not from a simulated origin`);
      continue;
    }
    if (!e.nodes.includes(node)) {
      problems.push(`${what}: answered by ${node}, expected ${e.nodes.join(" or ")}`);
      continue;
    }
    if (e.bodyBytes !== undefined) {
      const ok = e.rawHttp ? p.bytes > e.bodyBytes : p.bytes === e.bodyBytes;
      if (!ok) problems.push(`${what}: body of ${p.bytes} bytes, expected ${e.rawHttp ? "the head plus " : ""}${e.bodyBytes}`);
    }
    seen.add(node);
  }
  if (e.everyNode && problems.length === 0) {
    const missing = e.nodes.filter((n) => !seen.has(n));
    if (missing.length) problems.push(`round-robin did not reach ${missing.join(", ")} in ${probes.length} requests`);
  }
  return problems;
}

/** Sends `times` probes one after another and judges them. */
export async function verifyRow(url: string, host: string | undefined, pathAndQuery: string, e: Expectation, times: number): Promise<string[]> {
  const probes: Probe[] = [];
  for (let i = 0; i < times; i++) probes.push(await probe(url, host, pathAndQuery));
  return judgeProbes(e, probes);
}
