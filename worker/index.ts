// The edge worker's entry point: one Edge (config, health, balancer state) per
// isolate, created on the first request from the isolate's bindings.
import { createEdge, type Edge } from "./edge.ts";
import type { Env } from "./env/index.ts";

export { createEdge } from "./edge.ts";
// The fast path's Durable Object (wrangler.toml: EDGELB_GENERATIONS).
export { EdgelbGenerations } from "./generations/index.ts";
export type { Env } from "./env/index.ts";

let edge: Edge | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // caches.default is per location: its isolates share each cluster's snapshot through it (a no-op on workers.dev).
    edge ??= createEdge({ env, cache: caches.default });
    return edge.fetch(request, ctx);
  },
} satisfies ExportedHandler<Env>;
