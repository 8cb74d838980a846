// Idle keep-alive connections to this node's NodePorts, per port, reused
// last-in first-out: the most recently used connection is the one least likely
// to have been closed by the app's idle timeout. Bounded in count and idle
// age. The connection's owner (the forwarder) destroys one that says anything
// while idle: such bytes answer nothing that was asked.
import type { Socket } from "node:net";

export interface UpstreamPoolOptions {
  /** Idle connections kept per NodePort. */
  maxIdlePerPort: number;
  /**
   * A connection idle for longer is not reused: the app may be closing it at that very moment (Node's
   * default keep-alive timeout is 5 s), and a request written into a closing connection is lost.
   */
  maxIdleMs: number;
  now?: () => number;
}

interface Idle {
  socket: Socket;
  since: number;
}

export class UpstreamPool {
  readonly #idle = new Map<number, Idle[]>();
  readonly #o: UpstreamPoolOptions;
  readonly #now: () => number;
  #size = 0;

  constructor(o: UpstreamPoolOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Idle connections held. */
  get size(): number {
    return this.#size;
  }

  /** The freshest idle connection to `port`, or undefined. It is the caller's until put back or destroyed. */
  take(port: number): Socket | undefined {
    const stack = this.#idle.get(port);
    if (!stack) return undefined;
    const cutoff = this.#now() - this.#o.maxIdleMs;
    for (let e = stack.pop(); e; e = stack.pop()) {
      this.#size--;
      if (e.since >= cutoff && !e.socket.destroyed && e.socket.readyState === "open") return e.socket;
      e.socket.destroy();
    }
    return undefined;
  }

  /** Keeps a connection whose last response ended cleanly, or destroys it when the pool is full. */
  put(port: number, socket: Socket): void {
    let stack = this.#idle.get(port);
    if (!stack) this.#idle.set(port, (stack = []));
    if (stack.length >= this.#o.maxIdlePerPort || socket.destroyed) {
      socket.destroy();
      return;
    }
    stack.push({ socket, since: this.#now() });
    this.#size++;
  }

  /** Drops connections idle for longer than maxIdleMs, and those closed while idle. */
  sweep(): void {
    const cutoff = this.#now() - this.#o.maxIdleMs;
    for (const [port, stack] of this.#idle) {
      const keep = stack.filter((e) => e.since >= cutoff && !e.socket.destroyed);
      for (const e of stack) if (!keep.includes(e)) e.socket.destroy();
      this.#size -= stack.length - keep.length;
      if (keep.length === 0) this.#idle.delete(port);
      else this.#idle.set(port, keep);
    }
  }

  destroy(): void {
    for (const stack of this.#idle.values()) for (const e of stack) e.socket.destroy();
    this.#idle.clear();
    this.#size = 0;
  }
}
