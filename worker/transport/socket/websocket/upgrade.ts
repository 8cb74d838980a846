// A WebSocket through the socket transport: the worker performs the upgrade
// handshake with the origin itself, then relays frames between the client's
// WebSocketPair and the origin connection.
import { pathAndQuery } from "../../target/index.ts";
import type { OriginRequest } from "../../types.ts";
import { MalformedResponseError, UpstreamResetError } from "../../types.ts";
import { type Connect, describe, message, openConnection, readResponseHead } from "../connection.ts";
import { fieldOf, hostPort, serializeRequestHead } from "../request-head.ts";
import { responseHeaders, toResponse } from "../response-body.ts";
import { ResponseParser } from "../response-parser.ts";
import { acceptFor, handshakeProblem, newKey, offeredProtocols } from "./handshake.ts";
import { relay } from "./relay.ts";
import type { TransportLog } from "../transport.ts";

export interface WebSocketRelayOptions {
  /** Largest message the origin may send the client; past it both ends get 1009 (default 8 MiB). */
  maxMessageBytes?: number;
  /** Client bytes waiting for the origin before the client gets 1009 (default 8 MiB). */
  maxBufferedBytes?: number;
  /** Ping the origin after this long without a frame to it (default 30 s; 0 disables). */
  pingIntervalMs?: number;
}

export const DEFAULT_WS_BUFFERED_BYTES = 8 * 1024 * 1024;
/** A whole origin message is held in memory before it goes to the client (Cloudflare's own limit is 32 MiB). */
export const DEFAULT_WS_MESSAGE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_WS_PING_INTERVAL_MS = 30_000;

export function isWebSocketUpgrade(request: { readonly headers: Headers; readonly fields?: Readonly<Record<string, string>> }): boolean {
  // The plain record when there is one: reading `headers` may build a Headers object (OutgoingRequest.fields).
  const upgrade = request.fields !== undefined ? fieldOf(request.fields, "upgrade") : request.headers.get("upgrade");
  return (upgrade ?? "").toLowerCase() === "websocket";
}

// The client's handshake fields belong to its hop with the edge; the worker
// makes its own (and offers no extensions: frames are relayed uncompressed).
const CLIENT_HANDSHAKE = ["sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-accept"];

export async function upgradeWebSocket(
  req: OriginRequest,
  connect: Connect,
  log: TransportLog,
  bodyIdleTimeoutMs: number,
  wsOpts: WebSocketRelayOptions = {},
): Promise<Response> {
  const { origin, request } = req;
  const key = newKey();
  const headers = new Headers(request.headers);
  for (const name of CLIENT_HANDSHAKE) headers.delete(name);
  const head = serializeRequestHead({
    method: "GET",
    target: pathAndQuery(request.url),
    headers,
    defaultHost: hostPort(origin.address, origin.port),
    framing: { kind: "none" },
    extra: [
      ["upgrade", "websocket"],
      ["sec-websocket-key", key],
      ["sec-websocket-version", "13"],
    ],
    connection: "Upgrade",
  });
  const expectedAccept = await acceptFor(key);
  const conn = await openConnection(connect, origin, req.connectTimeoutMs);
  try {
    await conn.writer.write(head);
  } catch (e) {
    conn.close();
    throw new UpstreamResetError(`cannot send to ${describe(origin)}: ${message(e)}`, origin, { cause: e });
  }
  const parser = new ResponseParser({ method: "GET" });
  const { head: responseHead, pending } = await readResponseHead(conn, parser, req.responseTimeoutMs, () => undefined);
  if (responseHead.status !== 101) {
    // The origin refused the upgrade (401, 404, 503...): that answer goes to the client as is.
    return toResponse(conn, parser, responseHead, pending, {
      idleTimeoutMs: bodyIdleTimeoutMs,
      onError: (error) => {
        log("error", "origin.body_failed", { node: origin.node, error: error.message });
        req.onBodyFailed?.(error);
      },
      onEnd: req.onBodyRelay?.(),
    });
  }
  const problem = handshakeProblem(responseHead, expectedAccept, offeredProtocols(request.headers));
  if (problem) {
    conn.close();
    throw new MalformedResponseError(`WebSocket handshake with ${describe(origin)} failed: ${problem}`, origin);
  }
  const pair = new WebSocketPair();
  const [client, server] = [pair[0], pair[1]];
  server.accept();
  const initial = pending.flatMap((e) => (e.kind === "data" ? [e.bytes] : []));
  const relayEnded = req.onWebSocketRelay?.();
  relay(server, conn, initial, {
    maxMessageBytes: wsOpts.maxMessageBytes ?? DEFAULT_WS_MESSAGE_BYTES,
    maxBufferedBytes: wsOpts.maxBufferedBytes ?? DEFAULT_WS_BUFFERED_BYTES,
    pingIntervalMs: wsOpts.pingIntervalMs ?? DEFAULT_WS_PING_INTERVAL_MS,
    closeTimeoutMs: 5_000,
    log,
  })
    .catch((e: unknown) => log("error", "websocket.relay_failed", { node: origin.node, error: message(e) }))
    .finally(() => relayEnded?.());
  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: responseHeaders(responseHead, ["sec-websocket-accept"]),
  });
}
