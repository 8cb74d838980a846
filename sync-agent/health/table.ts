// The health table: one probe loop per target (node kube-proxy /healthz, or a
// Local Service's healthCheckNodePort on a node), rise/fall state, and a
// callback on every state change so the controller recomputes the snapshot.
import type { HealthTarget, HealthView } from "../model/desired.ts";
import { probeGate, probeHttp, probeTcp, type ProbeMode, type ProbeResult } from "./probe.ts";
import { applyProbe, INITIAL_STATE, type ProbeState } from "./state.ts";

export interface HealthOptions {
  mode: ProbeMode;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
  /** kube-proxy's healthz port (10256), or the TCP port probed in tcp mode. */
  healthzPort: number;
  /** At most this many probes in flight (sockets, file descriptors, kube-proxy load); default 64. */
  maxConcurrentProbes?: number | undefined;
  /** Each interval varies by ± this fraction, so probes of many nodes do not fire in lockstep; default 0.1. */
  jitter?: number | undefined;
  /**
   * Gate mode (--origins gate): a node is healthy only when its node gate on this port is ready (key
   * loaded) as well, so the edge never sends signed traffic to a node that cannot take it.
   */
  gatePort?: number | undefined;
}

export const DEFAULT_MAX_CONCURRENT_PROBES = 64;
export const DEFAULT_PROBE_JITTER = 0.1;

/** The wait before a target's next probe: the interval ± jitter (random in [0,1)). */
export function nextProbeDelay(intervalMs: number, jitter: number, random: number): number {
  return Math.max(1, Math.round(intervalMs * (1 - jitter + 2 * jitter * random)));
}

export interface HealthTransition {
  key: string;
  target: HealthTarget;
  healthy: boolean;
  /** undefined for the first result; equal to `healthy` (false) when only the failure's reason changed. */
  previous: boolean | undefined;
  error?: string;
}

/** One probe of a target at one of its addresses (injectable for tests). */
type Prober = (target: HealthTarget, address: string) => Promise<ProbeResult>;

interface Entry {
  target: HealthTarget;
  state: ProbeState;
  timer?: NodeJS.Timeout;
  running: boolean;
  /** The failure reason last reported (a transition) while out of rotation; undefined once back in. */
  reported?: string;
  /** With a fallback address: where the next probe goes (where the node answered last). */
  via?: string;
  /** With a fallback address: why each address was not reached since the node last answered (one stable reason naming both). */
  unreached?: Map<string, string>;
}

/** What one probe run found: the result, and (with a fallback address) where the next probe goes. */
interface Probed {
  result: ProbeResult;
  via?: string;
  unreached?: Map<string, string> | undefined;
}

export function targetKey(t: HealthTarget): string {
  return t.kind === "node" ? `node/${t.node}` : `local/${t.node}:${t.port}`;
}

export class HealthTable implements HealthView {
  private readonly entries = new Map<string, Entry>();
  private stopped = false;
  private readonly probe: Prober;
  private readonly maxInFlight: number;
  private inFlight = 0;
  /** Probes waiting for a free slot, in order. */
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly opts: HealthOptions,
    private readonly onTransition: (t: HealthTransition) => void,
    probe?: Prober,
    private readonly random: () => number = Math.random,
  ) {
    this.probe = probe ?? ((t, address) => this.probeAt(t, address));
    this.maxInFlight = Math.max(1, opts.maxConcurrentProbes ?? DEFAULT_MAX_CONCURRENT_PROBES);
  }

  /** Probes in flight right now (for tests and metrics). */
  get probesInFlight(): number {
    return this.inFlight;
  }

  private async acquire(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return;
    }
    // The releasing probe hands its slot over: inFlight stays the same.
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.inFlight--;
  }

  /**
   * One probe of a target. With a fallback address (the InternalIP is probed, another address is
   * published) each probe goes to ONE address, where the node answered last: its failure counts at
   * once, as with a single address, so a dead node is out after `fall` probes of `timeout` each, not
   * of two timeouts (InternalIP, then the published address). The next probe tries the other address;
   * an answer there (even a 503: kube-proxy's own verdict) makes it the one probed from then on. Only
   * the first probe, which decides at once, tries both in turn: a node whose InternalIP is site-local
   * is not published unhealthy first.
   */
  private async probeTarget(e: Entry, t: HealthTarget): Promise<Probed> {
    const fallback = t.fallbackAddress;
    if (fallback === undefined) return { result: await this.probe(t, t.address) };
    const reached = (r: ProbeResult) => r.ok || r.reached === true;
    if (e.state.healthy === undefined) {
      const first = await this.probe(t, t.address);
      if (reached(first)) return { result: first, via: t.address };
      const second = await this.probe(t, fallback);
      if (reached(second)) return { result: second, via: fallback };
      const unreached = new Map([
        [t.address, first.error ?? "failed"],
        [fallback, second.error ?? "failed"],
      ]);
      return { result: { ok: false, error: `${first.error} at ${t.address}; ${second.error} at ${fallback}` }, via: t.address, unreached };
    }
    const at = e.via === fallback ? fallback : t.address;
    const result = await this.probe(t, at);
    if (reached(result)) return { result, via: at };
    const unreached = new Map(e.unreached ?? []).set(at, result.error ?? "failed");
    const atPrimary = unreached.get(t.address);
    const atFallback = unreached.get(fallback);
    const error = atPrimary !== undefined && atFallback !== undefined ? `${atPrimary} at ${t.address}; ${atFallback} at ${fallback}` : `${result.error} at ${at}`;
    return { result: { ok: false, error }, via: at === t.address ? fallback : t.address, unreached };
  }

  private async probeAt(t: HealthTarget, address: string): Promise<ProbeResult> {
    const { mode, timeoutMs, healthzPort, gatePort } = this.opts;
    if (t.kind === "node" && gatePort !== undefined) {
      // The gate first: when it cannot take signed traffic, the node's own health does not matter.
      const gate = await probeGate(address, gatePort, timeoutMs);
      if (!gate.ok) return gate;
    }
    const port = t.kind === "node" ? healthzPort : t.port;
    if (mode === "tcp") return probeTcp(address, port, timeoutMs);
    // healthCheckNodePort answers on any path; /healthz reads well in its logs.
    return probeHttp(address, port, "/healthz", timeoutMs);
  }

  /** Starts probing new targets at once, stops probing gone ones. */
  setTargets(targets: readonly HealthTarget[]): void {
    if (this.stopped) return;
    const wanted = new Map(targets.map((t) => [targetKey(t), t]));
    for (const [key, e] of this.entries) {
      if (!wanted.has(key)) {
        clearTimeout(e.timer);
        this.entries.delete(key);
      }
    }
    for (const [key, target] of wanted) {
      const e = this.entries.get(key);
      if (!e) {
        const entry: Entry = { target, state: INITIAL_STATE, running: false };
        this.entries.set(key, entry);
        void this.run(key, entry);
      } else if (e.target.address !== target.address || e.target.fallbackAddress !== target.fallbackAddress) {
        // Same node, new address: forget what we knew about the old one.
        e.target = target;
        e.state = INITIAL_STATE;
        e.via = undefined;
        e.unreached = undefined;
        clearTimeout(e.timer);
        void this.run(key, e);
      }
    }
  }

  private async run(key: string, e: Entry): Promise<void> {
    if (e.running) return;
    e.running = true;
    await this.acquire();
    if (this.stopped || this.entries.get(key) !== e) {
      e.running = false;
      this.release();
      return;
    }
    const target = e.target;
    let probed: Probed;
    try {
      probed = await this.probeTarget(e, target).catch((err: Error) => ({ result: { ok: false, error: err.message } }));
    } finally {
      this.release();
    }
    e.running = false;
    if (this.stopped || this.entries.get(key) !== e) return;
    if (e.target !== target) {
      void this.run(key, e); // address changed mid-probe: probe the new one now
      return;
    }
    const { result } = probed;
    e.via = probed.via;
    e.unreached = probed.unreached;
    const previous = e.state.healthy;
    const { state, changed } = applyProbe(e.state, result.ok, this.opts, result.error);
    e.state = state;
    // Out of rotation and still failing, but for another reason than the one last reported (gate down →
    // gate up without a key): said once, so the log follows what the operator fixes. A passing probe
    // before `rise` is not a reason, and a failure like the one reported before it is not news.
    const reasonChanged = !changed && !result.ok && state.healthy === false && previous === false && state.lastError !== e.reported;
    if (state.healthy === false && (changed || reasonChanged)) e.reported = state.lastError;
    else if (state.healthy !== false) e.reported = undefined;
    e.timer = setTimeout(() => void this.run(key, e), nextProbeDelay(this.opts.intervalMs, this.opts.jitter ?? DEFAULT_PROBE_JITTER, this.random()));
    e.timer.unref?.();
    if (changed || reasonChanged) {
      this.onTransition({ key, target, healthy: state.healthy!, previous, ...(result.error ? { error: result.error } : {}) });
    }
  }

  node(name: string): boolean | undefined {
    return this.entries.get(`node/${name}`)?.state.healthy;
  }

  local(node: string, port: number): boolean | undefined {
    return this.entries.get(`local/${node}:${port}`)?.state.healthy;
  }

  /** For logs and metrics: every target's state. */
  states(): { key: string; target: HealthTarget; state: ProbeState }[] {
    return [...this.entries].map(([key, e]) => ({ key, target: e.target, state: e.state }));
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
    // Queued probes wake up, see the table stopped and return their slot.
    for (const wake of this.queue.splice(0)) {
      this.inFlight++; // as if handed over, so their release() balances
      wake();
    }
  }
}
