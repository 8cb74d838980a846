// The floor of the socket transport: every request goes to one fixed origin
// through worker/transport/socket exactly as edgelb uses it (HTTP/1.1 over
// connect(), one connection per request), with no routing, config or retry.
// (e) against this row is the cost of edgelb's own logic on the socket path.
// Like edgelb's proxy, it hands the transport a plain request object (no
// Request per request) with its own Headers; the origin is parsed once per
// isolate, as in the socket floor, so (c′) − (f) is the transport's own work.
// Plain JS on purpose: the socket transport is typed against
// @cloudflare/workers-types, which the node-side type check does not load.
import { socketTransport } from "../../worker/transport/socket/index.ts";

let origin; // per isolate: BENCH_ORIGIN does not change

export default {
  fetch(request, env) {
    if (origin === undefined) {
      const url = new URL(env.BENCH_ORIGIN);
      origin = { host: url.host, origin: { node: "node-1", address: url.hostname, port: Number(url.port), scheme: "http" } };
    }
    const headers = new Headers(request.headers);
    headers.set("host", origin.host);
    return socketTransport.send({
      origin: origin.origin,
      request: { method: request.method, url: request.url, headers, body: request.body },
      connectTimeoutMs: 2000,
      responseTimeoutMs: 30000,
    });
  },
};
