// HTTP/1.1 over connect() from cloudflare:sockets, for bare-IP origins.
import { connect } from "cloudflare:sockets";
import { createSocketTransport } from "./transport.ts";

export { createSocketTransport } from "./transport.ts";
export type { SocketTransportOptions, TransportLog } from "./transport.ts";

export const socketTransport = createSocketTransport({ connect });
