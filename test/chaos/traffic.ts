// A steady stream of user requests through the worker: a few loops of GETs and
// small POSTs, each checked the way a user would (right status, an answer from
// a real node, the body they sent echoed back). Every outcome is kept with the
// phase it started in, so the suite can say which fault caused what.
//
// The loops are open (users arrive at a fixed rate whether or not earlier ones
// got their answer, up to a cap in flight): a request held by a hung node must
// not stop everyone else from arriving.

export type Method = "GET" | "POST";

export interface Outcome {
  phase: string;
  method: Method;
  path: string;
  startedAt: number;
  ms: number;
  status: number;
  /** The node that answered (x-edgelb-node), when one did. */
  node?: string;
  ok: boolean;
  /** Why it is not ok: status, connection error, wrong body. */
  failure?: string;
  /** A 5xx that a node sent and the worker passed through (vs one the worker made itself). */
  originStatus?: boolean;
}

export type Send = (host: string, path: string, init: RequestInit) => Promise<Response>;

export interface TrafficOptions {
  send: Send;
  host: string;
  getLoops: number;
  postLoops: number;
  /** Time between request starts of one loop: steady, without saturating 2 cores. */
  everyMs: number;
  /** Most requests one loop keeps in flight. */
  maxInFlight: number;
  /** Give up on one request after this long (longer than the worker's response timeout). */
  requestTimeoutMs: number;
}

export class Traffic {
  phase = "warmup";
  readonly outcomes: Outcome[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly opts: TrafficOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.opts.getLoops; i++) this.loops.push(this.loop("GET", i));
    for (let i = 0; i < this.opts.postLoops; i++) this.loops.push(this.loop("POST", i));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.splice(0));
  }

  /** Outcomes of requests started in a phase. */
  of(phase: string): Outcome[] {
    return this.outcomes.filter((o) => o.phase === phase);
  }

  /**
   * Requests started in `phase` (or in any phase), before `startedBefore` if given, and not yet
   * answered. A phase stays current while the suite waits on it, so new requests keep joining it:
   * "every request of the phase has its answer" must bound them by start time, or a steady stream
   * on a busy machine never reaches zero in flight although each request is answered in time.
   */
  inFlight(phase?: string, startedBefore = Number.POSITIVE_INFINITY): number {
    let n = 0;
    for (const p of this.pending) if ((phase === undefined || p.phase === phase) && p.startedAt < startedBefore) n++;
    return n;
  }

  /** The longest a request of `phase` (or any) has been waiting for its answer, in ms (0: none pending). */
  oldestInFlightMs(phase?: string): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const p of this.pending) if (phase === undefined || p.phase === phase) oldest = Math.min(oldest, p.startedAt);
    return oldest === Number.POSITIVE_INFINITY ? 0 : Date.now() - oldest;
  }

  private readonly pending = new Set<{ phase: string; startedAt: number }>();

  private async loop(method: Method, loop: number): Promise<void> {
    const mine = new Set<Promise<void>>();
    for (let i = 0; this.running; i++) {
      if (mine.size >= this.opts.maxInFlight) await Promise.race(mine);
      const phase = this.phase;
      const entry = { phase, startedAt: Date.now() };
      this.pending.add(entry);
      const p: Promise<void> = this.once(phase, method, loop, i).then((o) => {
        this.outcomes.push(o);
        this.pending.delete(entry);
        mine.delete(p);
      });
      mine.add(p);
      await new Promise((r) => setTimeout(r, this.opts.everyMs));
    }
    await Promise.all(mine);
  }

  private async once(phase: string, method: Method, loop: number, i: number): Promise<Outcome> {
    const startedAt = Date.now();
    const path = `/chaos/${method.toLowerCase()}/${loop}/${i}`;
    // A small JSON body, like a form post or an API call.
    const sent = method === "POST" ? JSON.stringify({ loop, i, note: "x".repeat(200) }) : undefined;
    const base = { phase, method, path, startedAt };
    try {
      const res = await this.opts.send(this.opts.host, path, {
        method,
        // A fresh connection per user: a pooled idle connection that the local
        // server closes as it is reused fails in the client, not in edgelb.
        headers: { connection: "close", ...(sent ? { "content-type": "application/json" } : {}) },
        ...(sent ? { body: sent } : {}),
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs),
      });
      const text = await res.text();
      const node = res.headers.get("x-edgelb-node") ?? undefined;
      const done = { ...base, ms: Date.now() - startedAt, status: res.status, ...(node ? { node } : {}) };
      if (res.status !== 200) {
        return { ...done, ok: false, failure: `${res.status}: ${text.trim().slice(0, 160)}`, originStatus: node !== undefined };
      }
      let echo: { node?: string; method?: string; path?: string; body?: string; bodyBytes?: number };
      try {
        echo = JSON.parse(text) as typeof echo;
      } catch {
        return { ...done, ok: false, failure: `200 with a body that is not the node's echo: ${text.slice(0, 120)}` };
      }
      const wrong =
        echo.node !== node
          ? `answered by ${echo.node} but labelled ${node}`
          : echo.method !== method || echo.path !== path
            ? `echo of ${echo.method} ${echo.path}, sent ${method} ${path}`
            : sent !== undefined && (echo.body !== sent || echo.bodyBytes !== Buffer.byteLength(sent))
              ? `POST body not echoed intact (${echo.bodyBytes} bytes back, ${Buffer.byteLength(sent)} sent)`
              : undefined;
      return wrong ? { ...done, ok: false, failure: wrong } : { ...done, ok: true };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { ...base, ms: Date.now() - startedAt, status: 0, ok: false, failure: `no response: ${e.cause?.code ?? e.name}: ${e.message}` };
    }
  }
}

export interface PhaseCounts {
  phase: string;
  get: number;
  post: number;
  failedGet: number;
  failedPost: number;
  /** 5xx answers that came from a node (x-edgelb-node) rather than from the worker. */
  passedThrough: number;
  maxMs: number;
  nodes: Record<string, number>;
}

export function countPhase(phase: string, outcomes: Outcome[]): PhaseCounts {
  const nodes: Record<string, number> = {};
  for (const o of outcomes) if (o.ok && o.node) nodes[o.node] = (nodes[o.node] ?? 0) + 1;
  return {
    phase,
    get: outcomes.filter((o) => o.method === "GET").length,
    post: outcomes.filter((o) => o.method === "POST").length,
    failedGet: outcomes.filter((o) => o.method === "GET" && !o.ok).length,
    failedPost: outcomes.filter((o) => o.method === "POST" && !o.ok).length,
    passedThrough: outcomes.filter((o) => o.originStatus && o.status >= 500).length,
    maxMs: outcomes.reduce((m, o) => Math.max(m, o.ms), 0),
    nodes,
  };
}
