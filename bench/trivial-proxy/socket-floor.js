// The floor of any socket transport: connect() to a fixed origin (BENCH_ORIGINS
// in turn, see origins.js), write one fixed HTTP/1.1 request (Connection:
// close) and hand the socket's readable side back as the response body,
// natively piped, bytes unparsed (the client gets the origin's raw status line
// and headers inside a 200). No header work, no parser, no JavaScript per
// chunk: what connect() itself costs in workerd, apart from any HTTP code of ours.
import { connect } from "cloudflare:sockets";
import { originPicker } from "./origins.js";

const encoder = new TextEncoder();
let pick; // per isolate: the origins do not change

export default {
  async fetch(request, env) {
    pick ??= originPicker(env);
    const o = pick();
    // Path and query of the client's request (http://host/...).
    const target = request.url.slice(request.url.indexOf("/", request.url.indexOf("//") + 2));
    const socket = connect({ hostname: o.hostname, port: o.port });
    const writer = socket.writable.getWriter();
    // Awaited: in workerd, releasing the writer while a write is pending drops it.
    await writer.write(encoder.encode(`GET ${target} HTTP/1.1\r\nhost: ${o.host}\r\nconnection: close\r\n\r\n`));
    writer.releaseLock();
    return new Response(socket.readable);
  },
};
