// What /readyz means for the agent, as a pure function of its state.
import type { Readiness } from "./server.ts";

export interface AgentReadinessInput {
  informersSynced: boolean;
  isLeader: boolean;
}

/**
 * Ready once the informers have synced, leader or standby. Not the edge's
 * health: a bad token or an unreachable worker would make every replica
 * unready, and a PodDisruptionBudget would then protect the one pod that
 * cannot help (it cannot fix the token) while a drain waits forever. Push lag
 * is a metric (edgelb_push_lag_seconds) and a log line instead.
 */
export function agentReadiness(s: AgentReadinessInput): Readiness {
  if (!s.informersSynced) return { ready: false, reason: "informers have not synced yet" };
  return { ready: true, reason: s.isLeader ? "leader: informers synced" : "standby: informers synced" };
}

export interface PushLagInput {
  /** Epoch ms a change has been waiting to reach the edge since, or null when the edge is up to date. */
  pendingSince: number | null;
  now: number;
  maxPushLagMs: number;
  /** Whether the lag was already reported as too long. */
  reported: boolean;
}

/** When to say that changes are not reaching the edge, and when that they do again: once each. */
export function pushLagReport(s: PushLagInput): "lagging" | "caught-up" | null {
  const lagging = s.pendingSince !== null && s.now - s.pendingSince > s.maxPushLagMs;
  if (lagging && !s.reported) return "lagging";
  if (!lagging && s.reported && s.pendingSince === null) return "caught-up";
  return null;
}
