// The floor of any socket transport: connect() to one fixed origin, write one
// fixed HTTP/1.1 request (Connection: close) and hand the socket's readable
// side back as the response body, natively piped, bytes unparsed (the client
// gets the origin's raw status line and headers inside a 200). No header
// work, no parser, no JavaScript per chunk: what connect() itself costs in
// workerd, apart from any HTTP code of ours.
import { connect } from "cloudflare:sockets";

const encoder = new TextEncoder();
let origin; // per isolate: BENCH_ORIGIN does not change

export default {
  async fetch(request, env) {
    origin ??= new URL(env.BENCH_ORIGIN);
    // Path and query of the client's request (http://host/...).
    const target = request.url.slice(request.url.indexOf("/", request.url.indexOf("//") + 2));
    const socket = connect({ hostname: origin.hostname, port: Number(origin.port) });
    const writer = socket.writable.getWriter();
    // Awaited: in workerd, releasing the writer while a write is pending drops it.
    await writer.write(encoder.encode(`GET ${target} HTTP/1.1\r\nhost: ${origin.host}\r\nconnection: close\r\n\r\n`));
    writer.releaseLock();
    return new Response(socket.readable);
  },
};
