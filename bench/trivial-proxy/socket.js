// The floor of the socket transport: every request goes to one fixed origin
// through worker/transport/socket exactly as edgelb uses it (HTTP/1.1 over
// connect(), one connection per request), with no routing, config or retry.
// (e) against this row is the cost of edgelb's own logic on the socket path.
// Plain JS on purpose: the socket transport is typed against
// @cloudflare/workers-types, which the node-side type check does not load.
import { socketTransport } from "../../worker/transport/socket/index.ts";

export default {
  fetch(request, env) {
    const origin = new URL(env.BENCH_ORIGIN);
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.set("host", origin.host);
    return socketTransport.send({
      origin: { node: "node-1", address: origin.hostname, port: Number(origin.port), scheme: "http" },
      request: new Request(origin.origin + url.pathname + url.search, { method: request.method, headers, body: request.body }),
      connectTimeoutMs: 2000,
      responseTimeoutMs: 30000,
    });
  },
};
