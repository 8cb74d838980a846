// Relays one WebSocket between the client (the server end of a WebSocketPair)
// and an origin connection on which the handshake already succeeded. The
// worker is the origin's client: it masks what it sends, answers pings, and
// carries close codes both ways.
//
// Memory: the client's messages arrive as events (no backpressure), so those
// waiting for the origin to take them are capped (maxBufferedBytes; past it
// the client gets 1009 and the origin a close). The origin's frames are read
// only as fast as they are handed to the client, each at most maxMessageBytes,
// and the receive buffer is given back after a large one. What workerd itself
// queues towards a slow client cannot be seen from here: its WebSocket has no
// bufferedAmount.
//
// Keepalive: workerd answers the client's pings itself and never shows them to
// JavaScript, so they cannot be passed on; instead the relay pings the origin
// after pingIntervalMs without a frame to it, so proxies and servers in front
// of the app (idle timeouts of 60 s are common) keep the connection open.
import type { Connection } from "../connection.ts";
import type { TransportLog } from "../transport.ts";
import { encodeFrame, FrameDecoder, newMask, Opcode, WebSocketProtocolError } from "./frame.ts";
import { closePayload, isSendableCloseCode, MessageAssembler } from "./message.ts";

export interface RelayOptions {
  /** Largest message taken from the origin; past it: close 1009 to both ends. */
  maxMessageBytes: number;
  /** Most bytes of client messages waiting for the origin to take them; past it: close 1009. */
  maxBufferedBytes: number;
  /** Ping the origin after this long without sending it a frame (0: never). */
  pingIntervalMs: number;
  /** How long to wait for the origin's answer to a close before dropping the connection. */
  closeTimeoutMs: number;
  log: TransportLog;
}

/** Status the client sees when the origin vanishes without a close frame (1006 cannot be sent). */
const ORIGIN_GONE = 1014;

export function relay(
  client: WebSocket,
  conn: Connection,
  initial: Uint8Array[],
  opts: RelayOptions,
): Promise<void> {
  const encoder = new TextEncoder();
  let writes: Promise<unknown> = Promise.resolve();
  let sentClose = false; // to the origin
  let receivedClose = false; // from the origin
  let clientClosed = false;
  let closeTimer: ReturnType<typeof setTimeout> | undefined;
  let queuedBytes = 0;
  let lastToOrigin = Date.now();

  /** Queues a frame; payloads that are still Blobs are read in order, inside the queue. */
  const toOrigin = (opcode: number, payload: Uint8Array | Blob) => {
    if (sentClose || conn.closed) return;
    if (opcode === Opcode.Close) sentClose = true;
    const size = payload instanceof Blob ? payload.size : payload.length;
    // One message always fits (it is in memory already); a backlog behind it does not.
    if (queuedBytes > 0 && queuedBytes + size > opts.maxBufferedBytes && opcode !== Opcode.Close) {
      overflow();
      return;
    }
    queuedBytes += size;
    lastToOrigin = Date.now();
    writes = writes
      .then(async () => {
        const bytes = payload instanceof Blob ? new Uint8Array(await payload.arrayBuffer()) : payload;
        await conn.writer.write(encodeFrame(opcode, bytes, { mask: newMask() }));
        queuedBytes -= size;
      })
      .catch(() => shutdown());
  };

  /** The origin takes the client's messages slower than they come: stop before memory runs out. */
  const overflow = () => {
    opts.log("warn", "websocket.backlog_exceeded", {
      node: conn.origin.node,
      queuedBytes,
      maxBufferedBytes: opts.maxBufferedBytes,
    });
    clearTimeout(closeTimer);
    closeClient(1009, "origin too slow");
    // The queue may never drain: the close goes out only if it does, and the connection is dropped anyway.
    conn.close();
    sentClose = true;
  };

  const keepalive =
    opts.pingIntervalMs > 0
      ? setInterval(() => {
          if (Date.now() - lastToOrigin >= opts.pingIntervalMs && queuedBytes === 0) toOrigin(Opcode.Ping, new Uint8Array(0));
        }, opts.pingIntervalMs)
      : undefined;

  const closeClient = (code: number | null, reason: string) => {
    if (clientClosed) return;
    clientClosed = true;
    try {
      if (code === null) client.close();
      else client.close(code, reason);
    } catch {
      // already closed by the client
    }
  };

  const shutdown = () => {
    clearTimeout(closeTimer);
    clearInterval(keepalive);
    conn.close();
    closeClient(ORIGIN_GONE, "origin connection closed");
  };

  /** After a close frame went out, the origin should answer and drop TCP; do not wait forever. */
  const awaitOriginClose = () => {
    clearTimeout(closeTimer);
    closeTimer = setTimeout(shutdown, opts.closeTimeoutMs);
  };

  // Binary messages as ArrayBuffer (the standard default is Blob, which needs an async read).
  client.binaryType = "arraybuffer";
  client.addEventListener("message", (event: MessageEvent) => {
    const data = event.data as string | ArrayBuffer | Blob;
    if (typeof data === "string") toOrigin(Opcode.Text, encoder.encode(data));
    else toOrigin(Opcode.Binary, data instanceof Blob ? data : new Uint8Array(data));
  });
  client.addEventListener("close", (event: CloseEvent) => {
    if (receivedClose) {
      // The client answered the close we relayed from the origin: done.
      clientClosed = true;
      conn.close();
      return;
    }
    // The client starts closing: the origin's answer (or the timeout) completes the client's handshake.
    const code = isSendableCloseCode(event.code) ? event.code : event.code === 1005 ? null : 1000;
    toOrigin(Opcode.Close, closePayload(code, event.reason));
    awaitOriginClose();
  });
  client.addEventListener("error", () => shutdown());

  const decoder = new FrameDecoder(opts.maxMessageBytes);
  const assembler = new MessageAssembler({ maxMessageBytes: opts.maxMessageBytes, expectMasked: false });
  const onBytes = (bytes: Uint8Array) => {
    for (const frame of decoder.feed(bytes)) {
      const msg = assembler.push(frame);
      if (!msg || receivedClose) continue;
      switch (msg.type) {
        case "text":
        case "binary":
          if (!clientClosed) client.send(msg.data);
          break;
        case "ping":
          toOrigin(Opcode.Pong, msg.payload);
          break;
        case "pong":
          break;
        case "close":
          receivedClose = true;
          toOrigin(Opcode.Close, closePayload(msg.code, msg.reason));
          closeClient(msg.code, msg.reason);
          awaitOriginClose();
          break;
      }
    }
  };

  return (async () => {
    try {
      for (const bytes of initial) onBytes(bytes);
      for (;;) {
        const r = await conn.reader.read();
        if (r.done) break;
        onBytes(r.value);
      }
      if (!receivedClose && !sentClose) {
        opts.log("warn", "websocket.origin_vanished", { node: conn.origin.node, error: "TCP closed without a close frame" });
      }
    } catch (e) {
      if (e instanceof WebSocketProtocolError && e.code === 1009) {
        // Not a broken origin, just a message bigger than the relay holds in memory.
        opts.log("warn", "websocket.message_too_big", {
          node: conn.origin.node,
          maxMessageBytes: opts.maxMessageBytes,
          error: e.message,
        });
        toOrigin(Opcode.Close, closePayload(1009, "message too big"));
        closeClient(1009, "message too big");
        await writes;
      } else if (e instanceof WebSocketProtocolError) {
        opts.log("warn", "websocket.protocol_error", { node: conn.origin.node, code: e.code, error: e.message });
        toOrigin(Opcode.Close, closePayload(e.code, e.message));
        closeClient(ORIGIN_GONE, "origin protocol error");
        await writes;
      }
      // A read error after close just means the origin dropped TCP first.
    } finally {
      shutdown();
    }
  })();
}
