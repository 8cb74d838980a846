// Passive health inside one isolate: origins that fail (refused connections,
// timeouts, 502/503/504 answers) are ejected for a period that doubles with
// each ejection in a row. After the period the origin gets traffic again on
// probation: one failure ejects it again for longer, one success restores it fully.
import type { Logger } from "../log/index.ts";

export interface HealthOptions {
  /** Consecutive failures that eject an origin. */
  threshold?: number;
  baseEjectMs?: number;
  maxEjectMs?: number;
  now?: () => number;
  log?: Logger;
}

export interface OriginHealth {
  consecutiveFailures: number;
  /** Ejections in a row without a success in between. */
  ejections: number;
  ejectedUntil: number;
  lastError?: string;
}

export class PassiveHealth {
  private readonly table = new Map<string, OriginHealth>();
  private readonly threshold: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: HealthOptions = {}) {
    this.threshold = opts.threshold ?? 3;
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

  failure(key: string, error: string, fields: Record<string, unknown> = {}, _kind: "connection" | "status" = "connection"): void {
    let h = this.table.get(key);
    if (!h) {
      h = { consecutiveFailures: 0, ejections: 0, ejectedUntil: 0 };
      this.table.set(key, h);
    }
    h.consecutiveFailures++;
    h.lastError = error;
    const now = this.now();
    if (h.ejectedUntil > now) return;
    const onProbation = h.ejections > 0;
    if (onProbation || h.consecutiveFailures >= this.threshold) {
      const period = Math.min(this.maxMs, this.baseMs * 2 ** h.ejections);
      h.ejections++;
      h.ejectedUntil = now + period;
      this.opts.log?.("warn", "node.ejected", {
        ...fields,
        origin: key,
        forMs: period,
        ejections: h.ejections,
        consecutiveFailures: h.consecutiveFailures,
        error,
      });
    }
  }

  success(key: string, fields: Record<string, unknown> = {}): void {
    const h = this.table.get(key);
    if (!h) return;
    if (h.ejections > 0) {
      this.opts.log?.("info", "node.restored", { ...fields, origin: key, after: h.ejections });
    }
    this.table.delete(key);
  }
}
