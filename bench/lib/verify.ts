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
export async function probe(url: string, host: string | undefined, pathAndQuery: string, timeoutMs = 10_000, fields?: Record<string, string>): Promise<Probe> {
  const u = new URL(url);
  try {
    const res = await requestWithHost(u.hostname, Number(u.port), host ?? u.host, pathAndQuery, { signal: AbortSignal.timeout(timeoutMs), ...(fields ? { headers: fields } : {}) });
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

/**
 * The size of the body the origin sent, as a row's client got it: the body itself, or for a raw row (the floor)
 * what follows the origin's head inside it, de-chunked when the origin chunked it. Undefined when the probe failed
 * or a raw answer is not a whole HTTP/1.1 message within the probe's first 4 KiB (then only its total is known).
 * Pure.
 */
export function originBodyBytes(e: Pick<Expectation, "rawHttp">, p: Probe): number | undefined {
  if (p.error || p.status === 0) return undefined;
  if (!e.rawHttp) return p.bytes;
  const raw = new TextEncoder().encode(p.head);
  const end = p.head.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const headBytes = new TextEncoder().encode(p.head.slice(0, end + 4)).byteLength;
  const head = p.head.slice(0, end).toLowerCase();
  if (!/\r\ntransfer-encoding:[ \t]*chunked[ \t]*(\r\n|$)/.test(head)) return p.bytes - headBytes;
  // A raw answer whole within the probe's text: de-chunk it.
  if (raw.byteLength !== p.bytes) return undefined;
  return dechunkedBytes(raw.subarray(headBytes));
}

/** Bytes of data in a chunked body (RFC 9112 §7.1; extensions and trailers skipped); undefined if malformed or cut. Pure. */
export function dechunkedBytes(body: Uint8Array): number | undefined {
  const text = new TextDecoder("latin1").decode(body);
  let at = 0;
  let total = 0;
  for (;;) {
    const eol = text.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = /^([0-9a-fA-F]{1,8})(?:[ \t]*;[^\r\n]*)?$/.exec(text.slice(at, eol));
    if (!size) return undefined;
    const n = parseInt(size[1]!, 16);
    at = eol + 2;
    if (n === 0) return text.indexOf("\r\n", at) >= 0 ? total : undefined;
    if (text.slice(at + n, at + n + 2) !== "\r\n") return undefined;
    total += n;
    at += n + 2;
  }
}

/** Sends `times` probes one after another and judges them; also the sizes of the origin's bodies they got. */
export async function verifyRowAnswers(url: string, host: string | undefined, pathAndQuery: string, e: Expectation, times: number): Promise<{ problems: string[]; answerBytes: number[] }> {
  const probes: Probe[] = [];
  for (let i = 0; i < times; i++) probes.push(await probe(url, host, pathAndQuery));
  const sizes = probes.map((p) => originBodyBytes(e, p)).filter((n): n is number => n !== undefined);
  return { problems: judgeProbes(e, probes), answerBytes: [...new Set(sizes)].sort((a, b) => a - b) };
}

/** Sends `times` probes one after another and judges them. */
export async function verifyRow(url: string, host: string | undefined, pathAndQuery: string, e: Expectation, times: number): Promise<string[]> {
  return (await verifyRowAnswers(url, host, pathAndQuery, e, times)).problems;
}

/**
 * The fields a browser's page request reaches a Worker with through Cloudflare (Chrome 131, a navigation:
 * its own fields, then the edge's CF-Connecting-IP, CF-IPCountry, CF-Ray, CF-Visitor, X-Forwarded-Proto and
 * X-Real-IP), for counting what a realistic request costs (npm run bench:instructions -- --browser): a load
 * generator sends Host alone. Host is the probe's own.
 */
export const BROWSER_FIELDS: Readonly<Record<string, string>> = {
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
  "accept-encoding": "gzip, deflate, br, zstd",
  "accept-language": "en-GB,en;q=0.9,de;q=0.8",
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  cookie: "session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.1.123456789.1700000000",
  "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
  "sec-ch-ua-mobile": "?0",
  "sec-ch-ua-platform": '"Linux"',
  "sec-fetch-dest": "document",
  "sec-fetch-mode": "navigate",
  "sec-fetch-site": "none",
  "sec-fetch-user": "?1",
  "upgrade-insecure-requests": "1",
  "cf-connecting-ip": "203.0.113.7",
  "cf-ipcountry": "DE",
  "cf-ray": "8f1a2b3c4d5e6f70-FRA",
  "cf-visitor": '{"scheme":"https"}',
  "x-forwarded-proto": "https",
  "x-real-ip": "203.0.113.7",
};
