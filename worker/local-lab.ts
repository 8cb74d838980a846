// The local lab's worker entry: worker/index.ts with local mode on, so the
// x-edgelb-test-cf header stands in for request.cf (steer by a "location" with
// curl). Only startEdgeWorker({ localMode: true }) bundles it; `npm run deploy`
// bundles worker/index.ts, in which no var or binding can turn local mode on.
import { createEdge, type Edge } from "./edge.ts";
import type { Env } from "./env/index.ts";

export { EdgelbGenerations } from "./generations/index.ts";

let edge: Edge | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    edge ??= createEdge({ env, cache: caches.default, localMode: true });
    return edge.fetch(request, ctx);
  },
} satisfies ExportedHandler<Env>;
