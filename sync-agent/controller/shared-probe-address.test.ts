// Nodes sharing an InternalIP (site-local addresses of nodes joined over public addresses) are
// probed at their published address, and the agent says so once per change, naming them.
import type { V1Node } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { HealthTarget } from "../model/desired.ts";
import type { ReadResult, Sink, WriteResult } from "../sinks/types.ts";
import { Controller, type HealthProvider } from "./index.ts";

const sink: Sink = {
  description: "memory",
  read: async (): Promise<ReadResult> => ({ snapshot: null, generation: 0 }),
  write: async (s): Promise<WriteResult> => ({ bytes: JSON.stringify(s).length, unchanged: false }),
  remove: async () => {},
};
const node = (name: string, internal: string, external: string): V1Node =>
  ({ metadata: { name }, status: { addresses: [{ type: "InternalIP", address: internal }, { type: "ExternalIP", address: external }] } }) as V1Node;

let c: Controller | undefined;
afterEach(() => c?.stop());

describe("shared probe addresses", () => {
  it("probes nodes sharing an InternalIP at their published addresses and warns once per change", async () => {
    const lines: { level: number; msg: string; nodes?: string[] }[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    let targets: readonly HealthTarget[] = [];
    const health: HealthProvider = { node: () => true, local: () => true, setTargets: (t) => void (targets = t) };
    const state = { nodes: [node("oci-a", "10.0.0.2", "203.0.113.10"), node("oci-b", "10.0.0.2", "198.51.100.20")], services: [], endpointSlices: [] };
    c = new Controller(
      { cluster: "home", loadBalancerClass: "edgelb.dev/worker", onlyClass: false, addressPreference: ["ExternalIP", "InternalIP"], pacer: { quietMs: 10, maxDelayMs: 50, minIntervalMs: 10 }, backoff: { initialMs: 10, maxMs: 50 }, pendingHoldMs: 10, dryRun: false },
      { state: () => state, synced: () => true, health, sink, log },
    );
    c.start();
    const evaluated = () => new Promise<void>((resolve) => c!.addHooks({ onEvaluated: () => resolve() }));
    let next = evaluated();
    c.markDirty("test");
    await next;
    expect(targets.map((t) => t.address)).toEqual(["203.0.113.10", "198.51.100.20"]);
    const warnings = () => lines.filter((l) => /share the address 10\.0\.0\.2/.test(l.msg));
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ nodes: ["oci-a", "oci-b"] });
    next = evaluated();
    c.markDirty("test again");
    await next;
    expect(warnings()).toHaveLength(1);
  });
});
