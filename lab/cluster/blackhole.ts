// A port that silently drops connection attempts, like a node behind a
// dropping firewall or kube-proxy's DROP rule for an externalTrafficPolicy:
// Local Service with no local endpoint: a client's connect() gets no answer
// at all (no RST, no SYN-ACK) and waits for its own connect timeout.
//
// Without root there is no packet filter on loopback, but Linux drops a SYN
// when the listening socket's accept queue is full (tcp_abort_on_overflow=0,
// the default). So: a listener with a tiny backlog that never accepts, its
// queue filled by a few connections of our own. The listener lives in a worker
// thread whose event loop is blocked in Atomics.wait, so nothing ever calls
// accept(); waking it closes the listener (and the filler connections).
import net from "node:net";
import { Worker } from "node:worker_threads";

const THREAD = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const server = net.createServer();
server.once("error", (err) => parentPort.postMessage({ error: err.message }));
server.listen({ host: workerData.address, port: workerData.port, backlog: 1 }, () => {
  parentPort.postMessage({ port: server.address().port });
  // Block this thread's loop: the kernel queues handshakes, nobody accepts them.
  Atomics.wait(new Int32Array(workerData.flag), 0, 0);
  server.close();
});
`;

/** How long one filler connection may take before the queue counts as full (loopback handshakes take microseconds). */
const FULL_AFTER_MS = 300;
const MAX_FILLERS = 16;

function connectWithin(address: string, port: number, ms: number): Promise<net.Socket | undefined> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(undefined);
    }, ms);
    s.once("connect", () => {
      clearTimeout(timer);
      // The listener resets queued connections when it closes: expected, not an error.
      s.on("error", () => {});
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export class Blackhole {
  private constructor(
    readonly address: string,
    readonly port: number,
    private readonly flag: Int32Array,
    private readonly fillers: net.Socket[],
    private readonly exited: Promise<void>,
  ) {}

  /** Listens on address:port (0 picks one) and fills the accept queue; from then on, new connections are dropped. */
  static async open(address: string, port: number): Promise<Blackhole> {
    const shared = new SharedArrayBuffer(4);
    const worker = new Worker(THREAD, { eval: true, workerData: { address, port, flag: shared } });
    const flag = new Int32Array(shared);
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    let bound: number;
    try {
      bound = await new Promise<number>((resolve, reject) => {
        worker.once("message", (m: { port?: number; error?: string }) => (m.error ? reject(new Error(`blackhole on ${address}:${port}: ${m.error}`)) : resolve(m.port!)));
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`blackhole thread exited (${code}) before listening`)));
      });
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    const hole = new Blackhole(address, bound, flag, [], exited);
    try {
      // Fill the accept queue until a connection gets no answer: that one was dropped.
      for (;;) {
        if (hole.fillers.length >= MAX_FILLERS) throw new Error(`blackhole on ${address}:${bound}: accept queue never filled`);
        const s = await connectWithin(address, bound, FULL_AFTER_MS);
        if (!s) break;
        hole.fillers.push(s);
      }
    } catch (err) {
      await hole.close();
      throw err;
    }
    return hole;
  }

  /** Stops dropping: the port is closed (refused) until something listens on it again. */
  async close(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    this.fillers.length = 0;
    Atomics.store(this.flag, 0, 1);
    Atomics.notify(this.flag, 0);
    await this.exited;
  }
}
