// Test helpers for WebSockets inside workerd: open one through a transport,
// a client end that queues messages and exposes its close, and polling with a deadline.
import { socketTransport } from "../../worker/transport/socket/index.ts";
import type { Origin } from "../../worker/transport/types.ts";

export function openThroughSocket(origin: Origin, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return socketTransport.send({
    origin,
    request: new Request(`http://ignored.invalid${path}`, { headers: { upgrade: "websocket", ...headers } }),
    connectTimeoutMs: 2000,
    responseTimeoutMs: 5000,
  });
}

export type WsData = string | ArrayBuffer;

/** The client's end of a WebSocket: messages in arrival order, and its close event. */
export class WsClient {
  private readonly queue: WsData[] = [];
  private readonly waiters: ((d: WsData) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (e: MessageEvent) => {
      const data = e.data as WsData;
      const w = this.waiters.shift();
      if (w) w(data);
      else this.queue.push(data);
    });
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (e: CloseEvent) => resolve({ code: e.code, reason: e.reason }));
    });
  }

  /** Closes from the client side and waits until the close handshake completes. */
  async close(code = 1000, reason = ""): Promise<{ code: number; reason: string }> {
    this.ws.close(code, reason);
    return this.closed;
  }

  /** The next message; fails after `ms` so a lost message cannot hang a test. */
  next(ms = 10_000): Promise<WsData> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${ms} ms`)), ms);
      this.waiters.push((d) => {
        clearTimeout(timer);
        resolve(d);
      });
    });
  }
}

/** Polls `probe` until `ok` holds or `ms` pass. */
export async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
