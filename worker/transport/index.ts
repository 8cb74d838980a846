// Which transport carries a request to an origin: the Service's policy, else
// the worker's EDGELB_TRANSPORT, else auto (IP literal → socket, hostname → fetch).
import { isIPLiteral, type TransportName } from "../snapshot/schema.ts";
import { fetchTransport } from "./fetch/index.ts";
import { socketTransport } from "./socket/index.ts";
import type { Origin, Transport } from "./types.ts";

export interface Transports {
  fetch: Transport;
  socket: Transport;
}

export const defaultTransports: Transports = { fetch: fetchTransport, socket: socketTransport };

export function selectTransport(
  transports: Transports,
  origin: Origin,
  policy: TransportName | undefined,
  workerDefault: TransportName,
): Transport {
  const choice = policy ?? workerDefault;
  if (choice === "fetch") return transports.fetch;
  if (choice === "socket") return transports.socket;
  return isIPLiteral(origin.address) ? transports.socket : transports.fetch;
}
