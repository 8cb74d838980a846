// Pure leader-election decisions on a coordination.k8s.io/v1 Lease, after
// client-go's leaderelection package. Everything here is a function of
// (lease, what we observed, now, who we are): the I/O shell in index.ts reads
// the Lease, asks `decide`, and writes what it returns.
import type { V1Lease, V1LeaseSpec } from "@kubernetes/client-node";
import { V1MicroTime } from "@kubernetes/client-node";

export interface LeaderTimings {
  /** How long a standby waits after the last change it saw before taking over. */
  leaseDurationMs: number;
  /** The leader gives up if it could not renew for this long. Must be < leaseDurationMs. */
  renewDeadlineMs: number;
  /** Time between attempts to acquire or renew. */
  retryPeriodMs: number;
}

export const DEFAULT_TIMINGS: LeaderTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** client-go's JitterFactor: retries wait between 1x and 1.2x the retry period. */
export const JITTER_FACTOR = 1.2;

/** Returns a clear message for timings that cannot be safe, or null. */
export function validateTimings(t: LeaderTimings): string | null {
  for (const [k, v] of Object.entries(t)) {
    if (!Number.isFinite(v) || v <= 0) return `leader election: ${k} must be a positive number of milliseconds (got ${v})`;
  }
  if (t.leaseDurationMs <= t.renewDeadlineMs) {
    return `leader election: lease duration (${t.leaseDurationMs} ms) must be greater than the renew deadline (${t.renewDeadlineMs} ms), otherwise a deposed leader could still be writing when a standby takes over`;
  }
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) {
    return `leader election: renew deadline (${t.renewDeadlineMs} ms) must be greater than ${JITTER_FACTOR} x the retry period (${t.retryPeriodMs} ms)`;
  }
  return null;
}

/**
 * Lease times are MicroTime: RFC 3339 with exactly six fractional digits. The
 * API server rejects the three digits `Date.toISOString()` gives.
 */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** A MicroTime as the client hands it back: a string (1.4 does not revive it) or a Date. */
export function parseMicroTime(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  if (typeof value !== "string" || value === "") return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/** A MicroTime value the client serialises with six fractional digits. */
export function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

/**
 * What a candidate remembers about the lease: the record it last saw and when
 * (its own clock) it first saw it. Expiry is measured from that local time, not
 * from the holder's renewTime, so clock skew between nodes does not matter.
 */
export interface Observation {
  record: string;
  at: number;
}

/** The parts of a lease record that change when the holder renews or changes. */
export function recordKey(lease: V1Lease | null): string {
  const s = lease?.spec;
  if (!s) return "";
  return JSON.stringify([
    s.holderIdentity ?? "",
    parseMicroTime(s.renewTime),
    parseMicroTime(s.acquireTime),
    s.leaseTransitions ?? 0,
    s.leaseDurationSeconds ?? null,
  ]);
}

/** Updates the observation; the clock restarts only when the record changed. */
export function observe(prev: Observation | null, lease: V1Lease | null, now: number): Observation {
  const record = recordKey(lease);
  if (prev && prev.record === record) return prev;
  return { record, at: now };
}

export type Decision =
  | { action: "create"; spec: V1LeaseSpec }
  | { action: "renew"; spec: V1LeaseSpec }
  | { action: "takeover"; spec: V1LeaseSpec; previousHolder: string }
  | { action: "wait"; holder: string; expiresInMs: number };

export interface DecideInput {
  lease: V1Lease | null;
  identity: string;
  /** Monotonic time (performance.now()): expiry is measured on it, so wall-clock jumps do not matter. */
  now: number;
  /** Epoch ms written into the Lease (acquireTime, renewTime) for people and other tools; default `now`. */
  wallNow?: number;
  observation: Observation;
  timings: LeaderTimings;
}

function leaseSeconds(t: LeaderTimings): number {
  return Math.max(1, Math.ceil(t.leaseDurationMs / 1000));
}

/**
 * The lease is held by someone else until `leaseDurationSeconds` (as written by
 * the holder, or ours when absent) have passed since we saw it change.
 */
export function decide({ lease, identity, now, wallNow, observation, timings }: DecideInput): Decision {
  const nowTime = microTime(wallNow ?? now);
  if (!lease) {
    return {
      action: "create",
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds(timings),
        acquireTime: nowTime,
        renewTime: nowTime,
        leaseTransitions: 0,
      },
    };
  }
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? "";
  const transitions = spec.leaseTransitions ?? 0;
  if (holder === identity) {
    return {
      action: "renew",
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: leaseSeconds(timings),
        acquireTime: spec.acquireTime ?? nowTime,
        renewTime: nowTime,
        leaseTransitions: transitions,
      },
    };
  }
  if (holder !== "") {
    const durationMs =
      spec.leaseDurationSeconds && spec.leaseDurationSeconds > 0
        ? spec.leaseDurationSeconds * 1000
        : timings.leaseDurationMs;
    const expiresInMs = observation.at + durationMs - now;
    if (expiresInMs > 0) return { action: "wait", holder, expiresInMs };
  }
  return {
    action: "takeover",
    previousHolder: holder,
    spec: {
      holderIdentity: identity,
      leaseDurationSeconds: leaseSeconds(timings),
      acquireTime: nowTime,
      renewTime: nowTime,
      leaseTransitions: transitions + 1,
    },
  };
}

/** The record a leader writes when it steps down on purpose: no holder, expires at once. */
export function releaseSpec(lease: V1Lease, wallNow: number): V1LeaseSpec {
  const t = microTime(wallNow);
  return {
    leaseDurationSeconds: 1,
    acquireTime: t,
    renewTime: t,
    leaseTransitions: lease.spec?.leaseTransitions ?? 0,
  };
}

/**
 * A leader acts as leader only until `lastRenewStartedAt + renewDeadline`. The
 * renewal started at that time at the latest, so a standby cannot see it before
 * then and cannot take over before `lastRenewStartedAt + leaseDuration`: the gap
 * (leaseDuration - renewDeadline) is the margin for in-flight writes and clock rate.
 */
export function leadershipValidUntil(lastRenewStartedAt: number, t: LeaderTimings): number {
  return lastRenewStartedAt + t.renewDeadlineMs;
}

/** Writes started while leading must finish before a standby could take over. */
export function writeDeadline(lastRenewStartedAt: number, t: LeaderTimings): number {
  return lastRenewStartedAt + t.leaseDurationMs;
}
