// What /readyz means for the agent, as a pure function of its state.
import type { Readiness } from "./server.ts";

export interface AgentReadinessInput {
  informersSynced: boolean;
  isLeader: boolean;
  /** Epoch ms the edge last confirmed our snapshot (a push, or a check that found it identical). */
  lastSuccessfulPushAt: number | null;
  /** Epoch ms a change has been waiting to reach the edge since, or null when the edge is up to date. */
  pendingSince: number | null;
  now: number;
  /** How long the leader may fail to get a change to the edge before it reports not ready. */
  maxPushLagMs: number;
}

/**
 * Ready when the informers have synced; a leader must also have reached the
 * edge, and not be sitting on an unpublished change for longer than the lag
 * allowed. A standby is ready once synced, so it can take over instantly.
 */
export function agentReadiness(s: AgentReadinessInput): Readiness {
  if (!s.informersSynced) return { ready: false, reason: "informers have not synced yet" };
  if (!s.isLeader) return { ready: true, reason: "standby: informers synced" };
  if (s.lastSuccessfulPushAt === null) {
    return { ready: false, reason: "leader: no snapshot has reached the edge yet" };
  }
  if (s.pendingSince !== null && s.now - s.pendingSince > s.maxPushLagMs) {
    const lagS = Math.round((s.now - s.pendingSince) / 1000);
    return { ready: false, reason: `leader: a change has not reached the edge for ${lagS}s (last successful push ${new Date(s.lastSuccessfulPushAt).toISOString()})` };
  }
  return { ready: true, reason: "leader: edge is up to date" };
}
