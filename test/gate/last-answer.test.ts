// rv-gate 1, deterministically: a connection the gate closes after the client's FIN while its last answer
// still waits in the write queue must be let go after the head deadline, not held for good by a client that
// never reads (an fd and a --max-connections slot). Over a real socket the case needs the kernel's buffers
// filled first (a reproduction that did so took 21 s and was dropped); here the gate's own connection logic
// gets a socket whose queue never drains (GateServerOptions.edgeServer): exact, and well under a second.
import { pino } from "pino";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { createGateMetrics } from "../../sync-agent/gate/metrics/index.ts";
import { ReplayCache } from "../../sync-agent/gate/replay/index.ts";
import { createGateServer, type GateServer } from "../../sync-agent/gate/server/index.ts";
import type { EdgeSink, EdgeSocket } from "../../sync-agent/gate/edge-socket/index.ts";
import { SECRET_1, until } from "./harness.ts";

/** A connection from the edge whose client reads nothing: what is written stays queued unless `drains`. */
class StuckSocket implements EdgeSocket {
  destroyed = false;
  writable = true;
  writableNeedDrain = false;
  queued = 0;
  written = "";
  destroyedAt: number | undefined;
  ended = false;
  readonly remoteAddress = "127.0.0.1";
  readonly #close: (() => void)[] = [];
  constructor(readonly drains: boolean) {}
  get writableLength(): number {
    return this.drains ? 0 : this.queued;
  }
  write(data: Uint8Array | string): boolean {
    const text = typeof data === "string" ? data : Buffer.from(data).toString("latin1");
    this.written += text;
    this.queued += text.length;
    return this.drains;
  }
  end(...args: unknown[]): unknown {
    this.ended = true;
    this.writable = false;
    return this;
  }
  cork(): void {}
  uncork(): void {}
  pause(): unknown {
    return this;
  }
  resume(): unknown {
    return this;
  }
  destroy(): unknown {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    this.destroyedAt = Date.now();
    for (const fn of this.#close.splice(0)) fn();
    return this;
  }
  destroySoon(): void {
    this.writable = false;
    if (this.writableLength === 0) this.destroy();
  }
  once(event: "drain" | "close", fn: () => void): unknown {
    if (event === "close") this.#close.push(fn);
    return this;
  }
  on(): unknown {
    return this;
  }
}

const HEADERS_TIMEOUT_MS = 300;
let server: GateServer | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** The gate's connection logic with `accept` handed out instead of a listening socket. */
function gateLogic(): (socket: EdgeSocket) => EdgeSink {
  let accept: ((socket: EdgeSocket) => EdgeSink) | undefined;
  server = createGateServer({
    keys: KeyRing.of({ k1: SECRET_1 }),
    replay: new ReplayCache({ capacity: 1_000, windowS: 30 }),
    metrics: createGateMetrics({ defaults: false }),
    log: pino({ level: "silent" }),
    upstreamHost: "127.0.0.1",
    nodeName: "node-a",
    clusterName: "gate-test",
    maxSkewS: 30,
    ports: { min: 1, max: 65535 },
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    keepAliveTimeoutMs: 5_000,
    connectTimeoutMs: 1_000,
    edgeServer: (a) => {
      accept = a;
      return net.createServer();
    },
  });
  return accept!;
}

function connect(drains: boolean): { socket: StuckSocket; sink: EdgeSink } {
  const socket = new StuckSocket(drains);
  const sink = gateLogic()(socket);
  socket.once("close", () => sink.onClose());
  return { socket, sink };
}

const HEALTHZ = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

describe("the last answer after the client's FIN", () => {
  it("is given the head deadline to be taken, then the connection is let go, though nothing of it was read", async () => {
    const { socket, sink } = connect(false);
    sink.onData(Buffer.from(HEALTHZ.repeat(3), "latin1"));
    const finAt = Date.now();
    sink.onEnd();
    // Answered (three 200s) and closing, but the queue holds them: not let go yet.
    expect(socket.written.match(/^HTTP\/1\.1 200 /gm)).toHaveLength(3);
    expect(socket.writable).toBe(false);
    expect(socket.destroyed).toBe(false);
    await until("the gate to let go of the connection", () => socket.destroyed, 5_000);
    // After the deadline, and soon after it: the sweep checks deadlines every HEADERS_TIMEOUT_MS / 2.
    expect(socket.destroyedAt! - finAt).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 20);
    expect(socket.destroyedAt! - finAt).toBeLessThanOrEqual(HEADERS_TIMEOUT_MS + 500);
  });

  it("is let go at once when the answer is already flushed (no deadline needed)", () => {
    const { socket, sink } = connect(true);
    sink.onData(Buffer.from(HEALTHZ, "latin1"));
    sink.onEnd();
    expect(socket.written).toMatch(/^HTTP\/1\.1 200 /);
    expect(socket.destroyed).toBe(true);
  });

  it("a client that sends its FIN in the middle of a head gets no answer and is let go within a second, though it never reads", async () => {
    const { socket, sink } = connect(false);
    sink.onData(Buffer.from("GET /healthz HTTP/1.1\r\nHo", "latin1"));
    sink.onEnd();
    expect(socket.ended).toBe(true);
    await until("the gate to let go of the connection", () => socket.destroyed, 5_000);
    expect(socket.written).toBe("");
  });
});
