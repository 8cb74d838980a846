// Watches the snapshot generation from the outside, the whole time faults
// run: the generation the worker serves (its status) and the one stored in KV
// (the push endpoint's GET). Neither may ever go backwards.
import { parseSnapshot } from "../../worker/snapshot/schema.ts";

export interface GenerationSample {
  at: number;
  served: number | null;
  /** null: nothing stored, or the stored value is not a valid snapshot. */
  stored: number | null;
  storedInvalid: boolean;
}

export interface GenerationWatch {
  readonly samples: GenerationSample[];
  /** Human-readable descriptions of every step backwards seen. */
  backwards(): string[];
  stop(): Promise<void>;
}

export function watchGenerations(workerUrl: string, cluster: string, token: string, everyMs = 50): GenerationWatch {
  const samples: GenerationSample[] = [];
  const headers = { authorization: `Bearer ${token}` };
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const status = (await (await fetch(`${workerUrl}/__edgelb/v1/status`, { headers })).json()) as {
          clusters: { name: string; generation: number | null }[];
        };
        const served = status.clusters.find((c) => c.name === cluster)?.generation ?? null;
        const res = await fetch(`${workerUrl}/__edgelb/v1/clusters/${cluster}`, { headers });
        const text = await res.text();
        const parsed = res.status === 200 ? parseSnapshot(text) : undefined;
        samples.push({
          at: Date.now(),
          served,
          stored: parsed?.ok ? parsed.snapshot.generation : null,
          storedInvalid: parsed !== undefined && !parsed.ok,
        });
      } catch {
        // The worker answering is the traffic loops' business; a missed sample only thins the record.
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    samples,
    backwards() {
      const out: string[] = [];
      let served = 0;
      let stored = 0;
      for (const s of samples) {
        if (s.served === null && served > 0) out.push(`served snapshot (generation ${served}) gone at ${new Date(s.at).toISOString()}`);
        if (s.served !== null && s.served < served) out.push(`served generation ${served} -> ${s.served} at ${new Date(s.at).toISOString()}`);
        if (s.stored !== null && s.stored < stored) out.push(`stored generation ${stored} -> ${s.stored} at ${new Date(s.at).toISOString()}`);
        served = Math.max(served, s.served ?? 0);
        stored = Math.max(stored, s.stored ?? 0);
      }
      return out;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}
