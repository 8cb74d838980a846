// Connect hedging across a Service's nodes: Happy Eyeballs v2's "Connection
// Attempt Delay" (RFC 8305 §5) applied to nodes instead of address families.
// A node that drops SYNs (powered off, or a Local Service's node whose last
// local pod left, as kube-proxy drops) would otherwise hold every request sent
// to it for the whole connect timeout until its first timeout ejects it. With
// a hedge, such a request waits only the delay, then a second node's connect
// races the first and the request goes over whichever opens first.
//
// Bounds, so a slow network never doubles the load: at most one hedge per
// attempt; a hedge goes only to a node that is untried, serving, not ejected
// and not itself stalled, never by failing open; it is paid from the Service's
// retry budget (as Envoy counts hedged attempts as retries); and a node with a
// connect pending past its delay is skipped by new requests while others are
// available (ConnectHedges.isStalled), until that connect opens or times out.
// The slow attempt keeps running to its own timeout only to feed outlier
// detection: a connect timeout still ejects that node at once.
import type { RouteOrigin } from "../../config/routes.ts";
import type { ConnectError, ConnectHedge, Origin } from "../../transport/types.ts";

export { DEFAULT_CONNECT_ATTEMPT_DELAY_MS } from "../../snapshot/schema.ts";

/** Connect times kept per origin (least recently measured dropped beyond this). */
const MAX_MEASURED = 10_000;
/** RFC 8305 §5: the delay should have an upper bound; 2 s is its recommendation. */
const MAX_ADAPTIVE_DELAY_MS = 2_000;
/**
 * A connect that took this long needed a SYN retransmission (RFC 6298's initial RTO is 1 s): like
 * Karn's rule, it says nothing about the round trip and is not measured.
 */
const RETRANSMITTED_AFTER_MS = 1_000;

interface Rtt {
  srtt: number;
  rttvar: number;
}

/**
 * Per isolate: which origins have a connect pending past its delay, and each
 * origin's smoothed connect time (RFC 6298's SRTT and RTTVAR) so that a node
 * far from this location gets a longer delay than the floor.
 */
export class ConnectHedges {
  /** Per origin: connects pending past their delay, and when the last of them must have settled. */
  private readonly stalled = new Map<string, { count: number; until: number }>();
  private readonly rtt = new Map<string, Rtt>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * A connect to this origin has been pending longer than its delay (not yet opened or failed). A mark
   * whose connect never settled (its request's context was cancelled) lapses at that connect's timeout.
   */
  isStalled(key: string): boolean {
    if (this.stalled.size === 0) return false;
    const s = this.stalled.get(key);
    if (s === undefined) return false;
    if (s.until > this.now()) return true;
    this.stalled.delete(key);
    return false;
  }

  /**
   * The delay before hedging a connect to `key`: the floor, or SRTT + 4·RTTVAR when this origin's
   * measured connects say it is farther (RFC 8305: approximate the first SYN retransmission). The
   * measured part is capped at half the connect timeout (and 2 s), so a node never stops being hedged
   * because of what was measured; a floor set above that is the operator's choice and is kept.
   */
  delayMs(key: string, floorMs: number, connectTimeoutMs: number): number {
    const r = this.rtt.get(key);
    if (r === undefined) return floorMs;
    const cap = Math.min(MAX_ADAPTIVE_DELAY_MS, Math.floor(connectTimeoutMs / 2));
    return Math.max(floorMs, Math.min(cap, Math.ceil(r.srtt + 4 * r.rttvar)));
  }

  /** A connect to `key` opened after `ms`. Only opened connects without a retransmission are measured. */
  observe(key: string, ms: number): void {
    if (ms >= RETRANSMITTED_AFTER_MS) return;
    const r = this.rtt.get(key);
    if (r === undefined) {
      if (this.rtt.size >= MAX_MEASURED) this.rtt.delete(this.rtt.keys().next().value!);
      this.rtt.set(key, { srtt: ms, rttvar: ms / 2 });
      return;
    }
    r.rttvar = 0.75 * r.rttvar + 0.25 * Math.abs(r.srtt - ms);
    r.srtt = 0.875 * r.srtt + 0.125 * ms;
  }

  /** A connect to `key` is pending past its delay; it settles by `timeoutMs` from now at the latest. */
  stall(key: string, timeoutMs: number): void {
    const until = this.now() + timeoutMs;
    const s = this.stalled.get(key);
    if (s === undefined) this.stalled.set(key, { count: 1, until });
    else {
      s.count++;
      s.until = Math.max(s.until, until);
    }
  }

  unstall(key: string): void {
    const s = this.stalled.get(key);
    if (s === undefined) return;
    if (--s.count <= 0) this.stalled.delete(key);
  }
}

export interface AttemptHedgeDeps {
  hedges: ConnectHedges;
  primary: RouteOrigin;
  /** The Service's floor for the delay (policy.connectAttemptDelayMs). */
  floorMs: number;
  connectTimeoutMs: number;
  /** The hedge's node: untried, serving, not ejected or stalled, paid from the budget; undefined for none. */
  choose(): RouteOrigin | undefined;
  /** The address the transport connects to for an origin (a node gate's port); the origin itself when absent. */
  toWire?: (origin: RouteOrigin) => Origin;
  /** The request's headers for the hedge's node when they differ (a gate signature names the node). */
  headersFor?: (origin: RouteOrigin) => Promise<Headers | undefined>;
  /** The request moved to the hedge's node before any byte was sent (the proxy re-targets its bookkeeping). */
  switchTo(origin: RouteOrigin): void;
  /** An attempt that lost the race failed: counted against its node like any failed connect. */
  lostFailed(origin: RouteOrigin, error: ConnectError): void;
  keepAlive(done: Promise<unknown>): void;
  /** The `proxy.hedge` line: which node was slow, which answered. */
  log(fields: Record<string, unknown>): void;
}

/** One attempt's hedge, handed to the transport (transport/types.ts ConnectHedge). */
export function attemptHedge(deps: AttemptHedgeDeps): ConnectHedge {
  const { hedges, primary } = deps;
  let second: RouteOrigin | undefined;
  let secondWire: Origin | undefined;
  let stalled = false;
  return {
    delayMs: hedges.delayMs(primary.key, deps.floorMs, deps.connectTimeoutMs),
    next() {
      // New requests avoid this node until its connect settles.
      stalled = true;
      hedges.stall(primary.key, deps.connectTimeoutMs);
      second = deps.choose();
      secondWire = second === undefined || deps.toWire === undefined ? second : deps.toWire(second);
      return secondWire;
    },
    ...(deps.headersFor === undefined
      ? {}
      : { headersFor: (origin: Origin) => (second !== undefined && origin === secondWire ? deps.headersFor!(second) : Promise.resolve(undefined)) }),
    settled(origin: Origin, outcome) {
      const o = second !== undefined && origin === secondWire ? second : primary;
      if (o === primary && stalled) {
        stalled = false;
        hedges.unstall(primary.key);
      }
      if (outcome.error === undefined) hedges.observe(o.key, outcome.ms);
      if (outcome.used) {
        if (second === undefined) return;
        const fields = { slow: primary.node, hedge: second.node, answered: outcome.error === undefined ? o.node : undefined, afterMs: outcome.ms, delayMs: this.delayMs };
        if (o === second) {
          deps.switchTo(second);
          fields.afterMs += this.delayMs;
        }
        deps.log(fields);
        return;
      }
      if (outcome.error !== undefined) deps.lostFailed(o, outcome.error);
    },
    keepAlive: deps.keepAlive,
  };
}
