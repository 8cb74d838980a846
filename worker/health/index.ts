// Passive health inside one isolate, after Envoy's outlier detection.
//
// - Connection-level failures (refused, reset, connect or response timeout:
//   "connection") eject an origin after `threshold` in a row. A connect
//   timeout ("connect-timeout": a blackholed node, e.g. a Local node whose
//   last pod left) ejects at once: each request it holds waits the whole
//   timeout, so one wait is all it may cost.
// - Application answers 502/503/504 ("status") eject only after a longer
//   streak, `consecutive5xx` failures in a row of any kind: one bad path of an
//   app must not take its nodes out.
// - At most `maxEjectionPercent` of a Service's serving nodes are ejected at
//   once, so clients hammering a path that answers 504 cannot eject them all.
//
// An ejection lasts a period that doubles with each ejection in a row. After
// it the origin gets traffic again on probation: one connection failure ejects
// it again for longer, one success restores it fully.
import type { Logger } from "../log/index.ts";

export type FailureKind = "connection" | "connect-timeout" | "status";

export interface HealthOptions {
  /** Consecutive connection failures that eject an origin (Envoy consecutive_local_origin_failure). */
  threshold?: number;
  /** Consecutive failures of any kind, 5xx answers included, that eject an origin (Envoy consecutive_5xx). */
  consecutive5xx?: number;
  /** The most of a Service's serving nodes that may be ejected at once, in percent (Envoy max_ejection_percent). */
  maxEjectionPercent?: number;
  baseEjectMs?: number;
  maxEjectMs?: number;
  now?: () => number;
  log?: Logger;
}

/** The origins one ejection cap applies to: a Service's NodePort in one cluster. */
export interface EjectionPool {
  id: string;
  /** Origins the cap is a share of (the Service's serving nodes). */
  size: number;
}

export interface OriginHealth {
  /** Failures of any kind in a row. */
  consecutiveFailures: number;
  /** Connection failures in a row (an answer from the node, even a 5xx, ends the streak). */
  consecutiveConnectionFailures: number;
  /** Failures of any kind since the last ejection: a 5xx streak starts again after each. */
  streak: number;
  /** Ejections in a row without a success in between. */
  ejections: number;
  ejectedUntil: number;
  lastError?: string;
  /** The current ejection, while it counts toward its pool's cap. */
  ejection?: Ejection;
}

interface Ejection {
  until: number;
  pool: PoolState;
  /** Still counted in pool.active (false once expired or ended by a success). */
  counted: boolean;
}

interface PoolState {
  active: number;
  /** The cap held a node back since the count last changed: logged once, not once per node. */
  capLogged: boolean;
  /** Min-heap of ejections by end time: expired ones leave the count in amortized O(log n). */
  heap: Ejection[];
}

export class PassiveHealth {
  private readonly table = new Map<string, OriginHealth>();
  private readonly pools = new Map<string, PoolState>();
  private readonly threshold: number;
  private readonly streak5xx: number;
  private readonly maxPercent: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: HealthOptions = {}) {
    this.threshold = opts.threshold ?? 3;
    this.streak5xx = opts.consecutive5xx ?? 5;
    this.maxPercent = opts.maxEjectionPercent ?? 50;
    this.baseMs = opts.baseEjectMs ?? 10_000;
    this.maxMs = opts.maxEjectMs ?? 300_000;
    this.now = opts.now ?? Date.now;
  }

  isEjected(key: string): boolean {
    const h = this.table.get(key);
    return h !== undefined && h.ejectedUntil > this.now();
  }

  get(key: string): OriginHealth | undefined {
    return this.table.get(key);
  }

  /** Origins that have any state, so a status view walks only those. */
  keys(): IterableIterator<string> {
    return this.table.keys();
  }

  /** Origins of a pool ejected right now. O(log n) amortized. */
  ejectedIn(poolId: string): number {
    const p = this.pools.get(poolId);
    if (!p) return 0;
    expire(p, this.now());
    return p.active;
  }

  /**
   * Counts a failure of the origin `key`. `kind` says whether the node failed
   * at the connection level or answered 502/503/504. With `pool`, the
   * ejection cap applies (the caller knows which Service the origin serves);
   * without it the origin is ejected uncapped.
   */
  failure(key: string, error: string, fields: Record<string, unknown> = {}, kind: FailureKind = "connection", pool?: EjectionPool): void {
    let h = this.table.get(key);
    if (!h) {
      h = { consecutiveFailures: 0, consecutiveConnectionFailures: 0, streak: 0, ejections: 0, ejectedUntil: 0 };
      this.table.set(key, h);
    }
    h.consecutiveFailures++;
    // An answer, even a 5xx, shows the connection works.
    h.consecutiveConnectionFailures = kind !== "status" ? h.consecutiveConnectionFailures + 1 : 0;
    h.lastError = error;
    const now = this.now();
    if (h.ejectedUntil > now) return;
    h.streak++;
    // On probation only a connection failure ejects at once: a 5xx needs its streak again (as in Envoy).
    const onProbation = h.ejections > 0 && kind !== "status";
    const due = onProbation || kind === "connect-timeout" || h.consecutiveConnectionFailures >= this.threshold || h.streak >= this.streak5xx;
    if (!due) return;
    let state: PoolState | undefined;
    if (pool) {
      state = this.pools.get(pool.id);
      if (!state) this.pools.set(pool.id, (state = { active: 0, capLogged: false, heap: [] }));
      expire(state, now);
      if ((state.active + 1) * 100 > this.maxPercent * pool.size) {
        if (!state.capLogged) {
          state.capLogged = true;
          this.opts.log?.("warn", "node.ejection_capped", {
            ...fields,
            origin: key,
            kind,
            ejectedInService: state.active,
            serviceNodes: pool.size,
            maxEjectionPercent: this.maxPercent,
            consecutiveFailures: h.consecutiveFailures,
            error,
          });
        }
        return;
      }
    }
    const period = Math.min(this.maxMs, this.baseMs * 2 ** h.ejections);
    h.ejections++;
    h.ejectedUntil = now + period;
    h.streak = 0;
    if (state) {
      h.ejection = { until: h.ejectedUntil, pool: state, counted: true };
      state.active++;
      state.capLogged = false;
      push(state.heap, h.ejection);
    }
    this.opts.log?.("warn", "node.ejected", {
      ...fields,
      origin: key,
      kind,
      forMs: period,
      ejections: h.ejections,
      consecutiveFailures: h.consecutiveFailures,
      ...(state && pool ? { ejectedInService: state.active, serviceNodes: pool.size } : {}),
      error,
    });
  }

  success(key: string, fields: Record<string, unknown> = {}): void {
    const h = this.table.get(key);
    if (!h) return;
    if (h.ejections > 0) {
      this.opts.log?.("info", "node.restored", { ...fields, origin: key, after: h.ejections });
    }
    // An ejected node that answered (tried while failing open) leaves its pool's count now.
    const e = h.ejection;
    if (e?.counted) {
      expire(e.pool, this.now());
      if (e.counted) {
        e.counted = false;
        e.pool.active--;
        e.pool.capLogged = false;
      }
    }
    this.table.delete(key);
  }
}

function expire(p: PoolState, now: number): void {
  const heap = p.heap;
  while (heap.length > 0 && heap[0]!.until <= now) {
    const e = pop(heap);
    if (e.counted) {
      e.counted = false;
      p.active--;
      p.capLogged = false;
    }
  }
}

function push(heap: Ejection[], e: Ejection): void {
  heap.push(e);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]!.until <= e.until) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = e;
}

function pop(heap: Ejection[]): Ejection {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= heap.length) break;
    const r = l + 1;
    const c = r < heap.length && heap[r]!.until < heap[l]!.until ? r : l;
    if (heap[c]!.until >= last.until) break;
    heap[i] = heap[c]!;
    i = c;
  }
  heap[i] = last;
  return top;
}

/** The worker vars that tune outlier detection (all optional; unset keeps the defaults). */
export interface HealthVars {
  EDGELB_EJECT_CONSECUTIVE_FAILURES?: string;
  EDGELB_EJECT_CONSECUTIVE_5XX?: string;
  EDGELB_MAX_EJECTION_PERCENT?: string;
}

/** Options from the worker vars, and a problem line per unusable value (its default is kept). */
export function healthSettings(vars: HealthVars): { options: HealthOptions; problems: string[] } {
  const options: HealthOptions = {};
  const problems: string[] = [];
  const read = (name: keyof HealthVars, min: number, max: number, set: (n: number) => void) => {
    const raw = vars[name];
    if (raw === undefined || raw.trim() === "") return;
    const n = Number(raw);
    if (Number.isInteger(n) && n >= min && n <= max) set(n);
    else problems.push(`${name} "${raw}" is not an integer from ${min} to ${max}; using the default`);
  };
  read("EDGELB_EJECT_CONSECUTIVE_FAILURES", 1, 1000, (n) => (options.threshold = n));
  read("EDGELB_EJECT_CONSECUTIVE_5XX", 1, 1000, (n) => (options.consecutive5xx = n));
  read("EDGELB_MAX_EJECTION_PERCENT", 0, 100, (n) => (options.maxEjectionPercent = n));
  return { options, problems };
}
