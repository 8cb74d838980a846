// HTTP/1.1 over connect() from cloudflare:sockets, for bare-IP origins.
// Placeholder until the socket transport lands: same interface as fetch.
import type { OriginRequest, Transport } from "../types.ts";
import { ConnectError } from "../types.ts";

export const socketTransport: Transport = {
  name: "socket",
  async send(req: OriginRequest): Promise<Response> {
    throw new ConnectError("socket transport not implemented yet", req.origin);
  },
};
