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
// accept(). The thread is started (parked) before the port's own listener
// closes, so the port refuses for a moment at most while it switches.
import { readFile } from "node:fs/promises";
import net from "node:net";
import { Worker } from "node:worker_threads";

// flag[0]: 0 parked, 1 listen (on port flag[1], filling the queue with flag[2]
// connections of its own, 0: the parent fills it), 2 exit.
const THREAD = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
const flag = new Int32Array(workerData.flag);
parentPort.postMessage({ parked: true });
Atomics.wait(flag, 0, 0);
if (Atomics.load(flag, 0) === 1) {
  const server = net.createServer();
  const fillers = [];
  server.once("error", (err) => parentPort.postMessage({ error: err.message }));
  server.listen({ host: workerData.address, port: Atomics.load(flag, 1), backlog: 1 }, () => {
    const port = server.address().port;
    // The fillers' connect() calls run as next ticks, before this thread's loop could accept
    // anything: the queue is full microseconds after listen(), so another client almost never
    // gets in first (it would be queued: connected, never answered).
    for (let i = 0; i < Atomics.load(flag, 2); i++) fillers.push(net.connect({ host: workerData.address, port }).on("error", () => {}));
    process.nextTick(() => {
      // Their connect() calls went out in earlier ticks: each has its local port now.
      parentPort.postMessage({ port, fillers: fillers.map((f) => f.localPort) });
      // Block this thread's loop: the kernel queues handshakes, nobody accepts them.
      Atomics.wait(flag, 0, 1);
      for (const f of fillers) f.destroy();
      server.close();
    });
  });
}
`;

/** How long the fillers' handshakes may take to show as established (loopback: microseconds). */
const FILLED_WITHIN_MS = 200;
/** Tries at a queue of our own before giving up (each costs microseconds unless traffic got in first). */
const OPEN_ATTEMPTS = 50;

/** /proc/net/tcp's form of an IPv4 address and port ("0100007F:1F90" for 127.0.0.1:8080). */
function procEndpoint(address: string, port: number): string {
  const hex = address
    .split(".")
    .map((o) => Number(o).toString(16).toUpperCase().padStart(2, "0"))
    .reverse()
    .join("");
  return `${hex}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

/**
 * Does the listener's accept queue hold only our fillers? Every filler's connection must be
 * established (a SYN-SENT one was dropped: someone else's connection took its place, and that
 * client would wait forever for an answer). Read from the kernel's table (Linux; elsewhere: assumed).
 */
async function fillersEstablished(address: string, port: number, fillers: (number | undefined)[]): Promise<boolean> {
  if (fillers.some((f) => f === undefined)) return false;
  const remote = procEndpoint(address, port);
  // Matched by local port alone: the kernel picks the fillers' source address (127.0.0.1 on loopback).
  const wanted = new Set(fillers.map((f) => f!.toString(16).toUpperCase().padStart(4, "0")));
  const deadline = Date.now() + FILLED_WITHIN_MS;
  for (;;) {
    let table: string;
    try {
      table = await readFile("/proc/net/tcp", "utf8");
    } catch {
      return true;
    }
    let established = 0;
    let intruders = 0;
    for (const line of table.split("\n")) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ...; 01: ESTABLISHED.
      if (f[3] !== "01") continue;
      if (f[2] === remote && wanted.has(f[1]?.split(":")[1] ?? "")) established++;
      // The listener's side of a queued connection that is not one of ours.
      if (f[1] === remote && !wanted.has(f[2]?.split(":")[1] ?? "")) intruders++;
    }
    if (intruders > 0) return false;
    if (established === wanted.size) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** How long one connection may take before it counts as dropped (loopback handshakes take microseconds). */
const DROPPED_AFTER_MS = 300;
const MAX_QUEUE = 16;

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

/** How many connections a backlog-1 listener queues before it drops (measured once: kernels differ). */
let queueLength: Promise<number> | undefined;

export class Blackhole {
  private readonly fillers: net.Socket[] = [];
  private bound = 0;

  private constructor(
    readonly address: string,
    private readonly flag: Int32Array,
    private readonly exited: Promise<void>,
    private readonly worker: Worker,
  ) {}

  get port(): number {
    return this.bound;
  }

  /** Starts the thread and waits until it is parked, not yet listening: call listen() once the port is free. */
  static async prepare(address: string, measuring = false): Promise<Blackhole> {
    // Measured before anything closes, so listen() has nothing slow left to do.
    if (!measuring) await (queueLength ??= Blackhole.measureQueue());
    const shared = new SharedArrayBuffer(12);
    const worker = new Worker(THREAD, { eval: true, workerData: { address, flag: shared } });
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      exited.then(() => reject(new Error("blackhole thread exited before it was ready")));
    });
    return new Blackhole(address, new Int32Array(shared), exited, worker);
  }

  /** Listens on address:port (0 picks one) and fills the accept queue; from then on, new connections are dropped. */
  static async open(address: string, port: number): Promise<Blackhole> {
    for (let attempt = 1; ; attempt++) {
      const hole = await Blackhole.prepare(address);
      const full = await hole.listen(port).catch(async (err: unknown) => {
        await hole.close();
        throw err;
      });
      if (full) return hole;
      // Someone else's connection took a place in the queue before ours (it would hang, not be dropped):
      // closing resets it, and the next try starts over.
      await hole.close();
      if (attempt >= OPEN_ATTEMPTS) throw new Error(`blackhole on ${address}:${port}: other connections kept filling its queue`);
    }
  }

  /** Listens and fills the queue; false when another client's connection got into the queue first. */
  async listen(port: number): Promise<boolean> {
    const listening = new Promise<{ port: number; fillers: (number | undefined)[] }>((resolve, reject) => {
      this.worker.once("message", (m: { port?: number; fillers?: (number | undefined)[]; error?: string }) =>
        m.error ? reject(new Error(`blackhole on ${this.address}:${port}: ${m.error}`)) : resolve({ port: m.port!, fillers: m.fillers ?? [] }),
      );
      this.worker.once("error", reject);
      this.exited.then(() => reject(new Error("blackhole thread exited before listening")));
    });
    const expected = await (queueLength ??= Blackhole.measureQueue());
    Atomics.store(this.flag, 1, port);
    Atomics.store(this.flag, 2, expected);
    Atomics.store(this.flag, 0, 1);
    Atomics.notify(this.flag, 0);
    const listened = await listening;
    this.bound = listened.port;
    // Someone else's connection that got into the queue before a filler would hang (connected, never
    // answered) instead of being dropped: the caller closes this listener, which resets it, and retries.
    if (!(await fillersEstablished(this.address, this.bound, listened.fillers))) return false;
    // The queue is full: the next connection must get no answer.
    const probe = await connectWithin(this.address, this.bound, DROPPED_AFTER_MS);
    if (probe) {
      probe.destroy();
      return false;
    }
    return true;
  }

  private static async measureQueue(): Promise<number> {
    const hole = await Blackhole.prepare("127.0.0.1", true);
    try {
      const listening = new Promise<number>((resolve, reject) => {
        hole.worker.once("message", (m: { port?: number; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.port!)));
        hole.worker.once("error", reject);
      });
      Atomics.store(hole.flag, 1, 0);
      Atomics.store(hole.flag, 2, 0);
      Atomics.store(hole.flag, 0, 1);
      Atomics.notify(hole.flag, 0);
      hole.bound = await listening;
      for (;;) {
        if (hole.fillers.length >= MAX_QUEUE) throw new Error("a backlog-1 listener never filled its accept queue");
        const s = await connectWithin("127.0.0.1", hole.bound, DROPPED_AFTER_MS);
        if (!s) return hole.fillers.length;
        hole.fillers.push(s);
      }
    } finally {
      await hole.close();
    }
  }

  /** Stops dropping: the port is closed (refused) until something listens on it again. */
  async close(): Promise<void> {
    for (const s of this.fillers) s.destroy();
    this.fillers.length = 0;
    Atomics.store(this.flag, 0, 2);
    Atomics.notify(this.flag, 0);
    await this.exited;
  }
}
