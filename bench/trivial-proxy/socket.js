// The floor of the socket transport: every request goes to a fixed origin
// (BENCH_ORIGINS in turn, see origins.js) through worker/transport/socket
// exactly as edgelb uses it (HTTP/1.1 over connect(), one connection per
// request), with no routing, config or retry. (e) against this row is the cost
// of edgelb's own logic on the socket path. Like edgelb's proxy, it hands the
// transport a plain request object (no Request per request) with its own
// Headers; the origins are parsed once per isolate, as in the socket floor, so
// (c′) − (f) is the transport's own work.
// Plain JS on purpose: the socket transport is typed against
// @cloudflare/workers-types, which the node-side type check does not load.
import { socketTransport } from "../../worker/transport/socket/index.ts";
import { originPicker } from "./origins.js";

let pick; // per isolate: the origins do not change

export default {
  fetch(request, env) {
    pick ??= originPicker(env);
    const o = pick();
    // The transport's Origin, made once per origin.
    o.origin ??= { node: o.name, address: o.address, port: o.port, scheme: "http" };
    const headers = new Headers(request.headers);
    headers.set("host", o.host);
    return socketTransport.send({
      origin: o.origin,
      request: { method: request.method, url: request.url, headers, body: request.body },
      connectTimeoutMs: 2000,
      responseTimeoutMs: 30000,
    });
  },
};
