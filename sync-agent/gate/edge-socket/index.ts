// The gate's connections from the edge, on one of two paths, behind one small contract (EdgeSocket):
//
// - "wrap": the accepted TCP handle is read and written directly through Node's own stream bindings
//   (tcp_wrap / stream_wrap: `process.binding`, deprecated as DEP0111 but present in Node 20). No
//   net.Socket, Readable or Writable is built per connection. Every edge request is a new connection,
//   and building that net.Socket was over half of a bare Node proxy's instructions per request: in
//   Node 20 (V8 11.3) its constructor's copy of its options (`{ ...options }` plus four added
//   properties) gets a hidden class V8 has never seen at every connection, so ~28 property accesses
//   miss their inline caches each time (docs/gate.md#costs-and-limits).
// - "net": node:net's accepted net.Socket, the documented API. The fallback when the bindings are not
//   there or not as expected (a Node release may change them: the image pins Node 20), and forced by
//   `--edge=net`.
//
// Both paths give the gate's connection logic (server/) the same calls and the same events, so every
// gate test runs against both (EDGELB_TEST_GATE_EDGE=net re-runs them on the fallback).
import net from "node:net";
import { getSystemErrorMap } from "node:util";

export type EdgePath = "wrap" | "net";

/** What the gate's connection logic uses of a connection from the edge. A net.Socket has all of it. */
export interface EdgeSocket {
  readonly destroyed: boolean;
  /** Writes are still accepted (not ended, not destroyed). */
  readonly writable: boolean;
  /** A write returned false and the bytes have not all gone to the kernel yet ("drain" follows). */
  readonly writableNeedDrain: boolean;
  /** Bytes written and not yet taken by the kernel. */
  readonly writableLength: number;
  readonly remoteAddress: string | undefined;
  /** Strings are written as latin1 (bytes as received): the gate writes no other encoding. */
  write(data: Uint8Array | string, encoding?: "latin1"): boolean;
  /** Writes `data`, sends the FIN once everything is flushed, then calls `cb`. */
  end(data: string, encoding: "latin1", cb: () => void): unknown;
  end(cb: () => void): unknown;
  cork(): void;
  uncork(): void;
  pause(): unknown;
  resume(): unknown;
  destroy(): unknown;
  /** No more writes; closed once what was written is flushed. */
  destroySoon(): void;
  once(event: "drain" | "close", fn: () => void): unknown;
  on(event: "error", fn: (err: Error) => void): unknown;
}

/** Where a connection's reads go. */
export interface EdgeSink {
  /** Bytes from the client. The Buffer is the connection's own: it may be kept past this call. */
  onData(chunk: Buffer): void;
  /** The client sent its FIN (the connection stays open for writing: half-open is allowed). */
  onEnd(): void;
  /** The connection is closed (once, after destroy() or a read/write error). */
  onClose(): void;
}

// ---- the bindings (internals), feature-detected once ----

interface TcpHandle {
  onread: (this: TcpHandle, buffer: ArrayBuffer | undefined) => void;
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  writeLatin1String(req: WriteReq, data: string): number;
  shutdown(req: ShutdownReq): number;
  close(cb: (this: TcpHandle) => void): void;
  getpeername(out: { address?: string }): number;
  setNoDelay(on: boolean): number;
  /** This gate's object for the handle (set on accept). */
  edge: WrapSocket;
}
interface ServerHandle {
  onconnection: (this: ServerHandle, err: number, client: TcpHandle | undefined) => void;
  gateServer: net.Server;
  gateAccept: (socket: EdgeSocket) => EdgeSink;
}
interface WriteReq {
  handle: TcpHandle;
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  edge: WrapSocket;
  /** Kept referenced until the kernel has taken it. */
  buffer: Uint8Array | string | null;
}
interface ShutdownReq {
  handle: TcpHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
  edge: WrapSocket;
  callback: (() => void) | undefined;
}
interface Bindings {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
  uvEof: number;
}
/** net.Server's connection count and close check, kept right on the wrap path so close() waits as it does on net's. */
interface ServerInternals {
  _handle: ServerHandle | null;
  _connections: number;
  _emitCloseIfDrained(): void;
}

const TCP_METHODS = ["readStart", "readStop", "writeBuffer", "writeLatin1String", "shutdown", "close", "getpeername", "setNoDelay"];

function loadBindings(): Bindings | undefined {
  try {
    const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
    if (typeof binding !== "function") return undefined;
    const tcp = binding("tcp_wrap");
    const stream = binding("stream_wrap");
    const TCP = tcp.TCP as (((...args: never[]) => unknown) & { prototype: Record<string, unknown> }) | undefined;
    const { WriteWrap, ShutdownWrap, streamBaseState, kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync } = stream;
    const uvEof = [...getSystemErrorMap()].find(([, [name]]) => name === "EOF")?.[0];
    const ok =
      typeof TCP === "function" &&
      TCP_METHODS.every((m) => typeof TCP.prototype[m] === "function") &&
      typeof WriteWrap === "function" &&
      typeof ShutdownWrap === "function" &&
      streamBaseState instanceof Int32Array &&
      [kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync].every((k) => Number.isInteger(k) && (k as number) < streamBaseState.length) &&
      typeof uvEof === "number" &&
      typeof (net.Server.prototype as unknown as ServerInternals)._emitCloseIfDrained === "function";
    if (!ok) return undefined;
    return {
      WriteWrap: WriteWrap as Bindings["WriteWrap"],
      ShutdownWrap: ShutdownWrap as Bindings["ShutdownWrap"],
      state: streamBaseState,
      kReadBytesOrError: kReadBytesOrError as number,
      kArrayBufferOffset: kArrayBufferOffset as number,
      kLastWriteWasAsync: kLastWriteWasAsync as number,
      uvEof,
    };
  } catch {
    return undefined;
  }
}

let bindings: Bindings | undefined | null = null;
function getBindings(): Bindings | undefined {
  if (bindings === null) bindings = loadBindings();
  return bindings;
}

/** Whether this Node has the bindings the wrap path needs (checked once). */
export function wrapAvailable(): boolean {
  return getBindings() !== undefined;
}

// ---- the wrap path ----

/** As net.Socket's default writableHighWaterMark: a write beyond this many unflushed bytes returns false. */
const HIGH_WATER = 16 * 1024;

function errnoError(errno: number, syscall: string): Error {
  const name = getSystemErrorMap().get(errno)?.[0] ?? `E${-errno}`;
  return Object.assign(new Error(`${syscall} ${name}`), { code: name, errno, syscall });
}

function noop(): void {}

/** A connection from the edge on its TCP handle; the calls and events of EdgeSocket, nothing more. */
class WrapSocket implements EdgeSocket {
  sink: EdgeSink | undefined;
  destroyed = false;
  /** end() or destroySoon() was called: nothing more is written. */
  ended = false;
  /** The client's FIN came: libuv reads no more. */
  readEnded = false;
  paused = false;
  writableNeedDrain = false;
  /** Close once the kernel has taken every byte written (destroySoon). */
  closeWhenFlushed = false;
  #drain: (() => void)[] | undefined;
  #close: (() => void)[] | undefined;
  #error: ((err: Error) => void)[] | undefined;

  constructor(
    readonly handle: TcpHandle,
    readonly server: net.Server,
  ) {}

  get writable(): boolean {
    return !this.destroyed && !this.ended;
  }

  get writableLength(): number {
    return this.destroyed ? 0 : this.handle.writeQueueSize;
  }

  get remoteAddress(): string | undefined {
    if (this.destroyed) return undefined;
    const out: { address?: string } = {};
    return this.handle.getpeername(out) === 0 ? out.address : undefined;
  }

  write(data: Uint8Array | string): boolean {
    if (!this.writable) return false;
    const b = getBindings()!;
    const req = new b.WriteWrap();
    req.handle = this.handle;
    req.oncomplete = afterWrite;
    req.async = false;
    req.edge = this;
    req.buffer = null;
    const err = typeof data === "string" ? this.handle.writeLatin1String(req, data) : this.handle.writeBuffer(req, data);
    if (err !== 0) {
      this.fail(errnoError(err, "write"));
      return false;
    }
    // Written whole at once (the common case): no callback comes. Otherwise the rest waits in libuv.
    if (b.state[b.kLastWriteWasAsync] !== 0) {
      req.async = true;
      req.buffer = data;
      if (this.handle.writeQueueSize >= HIGH_WATER) this.writableNeedDrain = true;
    }
    return !this.writableNeedDrain;
  }

  end(data: string | (() => void), _encoding?: "latin1", cb?: () => void): void {
    if (typeof data === "function") cb = data;
    else this.write(data);
    if (this.destroyed || this.ended) return;
    this.ended = true;
    const b = getBindings()!;
    const req = new b.ShutdownWrap();
    req.handle = this.handle;
    req.oncomplete = afterShutdown;
    req.edge = this;
    req.callback = cb;
    const err = this.handle.shutdown(req);
    // 1: done already (as net reads it).
    if (err === 1) cb?.();
    else if (err !== 0) this.fail(errnoError(err, "shutdown"));
  }

  cork(): void {}
  uncork(): void {}

  pause(): this {
    if (!this.paused) {
      this.paused = true;
      if (!this.readEnded && !this.destroyed) this.handle.readStop();
    }
    return this;
  }

  resume(): this {
    if (this.paused) {
      this.paused = false;
      if (!this.readEnded && !this.destroyed) this.handle.readStart();
    }
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writableNeedDrain = false;
    // Pending writes are cancelled (their callbacks see ECANCELED and are ignored); "close" comes after.
    this.handle.close(onHandleClose);
    return this;
  }

  destroySoon(): void {
    this.ended = true;
    if (this.destroyed) return;
    if (this.handle.writeQueueSize === 0) this.destroy();
    else this.closeWhenFlushed = true;
  }

  once(event: "drain" | "close", fn: () => void): this {
    if (event === "drain") (this.#drain ??= []).push(fn);
    else (this.#close ??= []).push(fn);
    return this;
  }

  on(_event: "error", fn: (err: Error) => void): this {
    (this.#error ??= []).push(fn);
    return this;
  }

  /** A read or write error: the connection is closed (error listeners first, as net emits "error" before "close"). */
  fail(err: Error): void {
    if (this.destroyed) return;
    const listeners = this.#error;
    if (listeners) for (const fn of listeners) fn(err);
    this.destroy();
  }

  flushed(): void {
    if (this.closeWhenFlushed) {
      this.destroy();
      return;
    }
    if (!this.writableNeedDrain) return;
    this.writableNeedDrain = false;
    const fns = this.#drain;
    this.#drain = undefined;
    if (fns) for (const fn of fns) fn();
  }

  closed(): void {
    const s = this.server as unknown as ServerInternals;
    s._connections--;
    s._emitCloseIfDrained();
    this.sink?.onClose();
    const fns = this.#close;
    this.#close = undefined;
    if (fns) for (const fn of fns) fn();
  }
}

function afterWrite(this: WriteReq, status: number): void {
  const s = this.edge;
  this.buffer = null;
  if (s.destroyed) return;
  if (status < 0) s.fail(errnoError(status, "write"));
  else if (s.handle.writeQueueSize === 0) s.flushed();
}

function afterShutdown(this: ShutdownReq, status: number): void {
  const s = this.edge;
  if (s.destroyed) return;
  if (status < 0) s.fail(errnoError(status, "shutdown"));
  else this.callback?.();
}

function onHandleClose(this: TcpHandle): void {
  this.edge.closed();
}

/**
 * The connection's reads. Each read has its own ArrayBuffer (Node allocates one per read and trims it
 * to the bytes read), so the Buffer over it is the connection's own.
 */
function onEdgeRead(this: TcpHandle, buffer: ArrayBuffer | undefined): void {
  const b = bindings!;
  const n = b.state[b.kReadBytesOrError]!;
  const s = this.edge;
  if (s.destroyed) return;
  if (n > 0) {
    s.sink!.onData(Buffer.from(buffer!, b.state[b.kArrayBufferOffset]!, n));
    return;
  }
  if (n === 0) return;
  if (n === b.uvEof) {
    s.readEnded = true;
    s.sink!.onEnd();
    return;
  }
  s.fail(errnoError(n, "read"));
}

function onWrapConnection(this: ServerHandle, err: number, client: TcpHandle | undefined): void {
  const server = this.gateServer;
  if (err !== 0 || client === undefined) {
    server.emit("error", errnoError(err, "accept"));
    return;
  }
  const internals = server as unknown as ServerInternals;
  if (server.maxConnections && internals._connections >= server.maxConnections) {
    client.close(noop);
    return;
  }
  internals._connections++;
  client.setNoDelay(true);
  const socket = new WrapSocket(client, server);
  client.edge = socket;
  client.onread = onEdgeRead;
  socket.sink = this.gateAccept(socket);
  client.readStart();
}

// ---- the net path ----

const SINK = Symbol("edgelb.gate.sink");
type NetEdge = net.Socket & { [SINK]: EdgeSink };
// Shared listeners (not closures per connection): every edge request is a new connection.
function onNetData(this: NetEdge, chunk: Buffer): void {
  this[SINK].onData(chunk);
}
function onNetEnd(this: NetEdge): void {
  this[SINK].onEnd();
}
function onNetError(this: NetEdge): void {
  this.destroy();
}
function onNetClose(this: NetEdge): void {
  this[SINK].onClose();
}

/**
 * A TCP server whose connections from the edge come on `path`; `accept` gets each one and returns where
 * its reads go. Listen, address, close, maxConnections and their errors are net.Server's on both paths.
 */
export function createEdgeServer(path: EdgePath, accept: (socket: EdgeSocket) => EdgeSink): net.Server {
  if (path === "net") {
    return net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      const edge = socket as NetEdge;
      edge[SINK] = accept(socket);
      socket.on("data", onNetData);
      socket.on("end", onNetEnd);
      socket.on("error", onNetError);
      socket.on("close", onNetClose);
    });
  }
  if (!wrapAvailable()) throw new Error("the wrap edge path needs Node's tcp_wrap/stream_wrap bindings, which this Node does not have as expected");
  const server = net.createServer();
  // Before any connection: "listening" is emitted on the tick after the handle exists, before the loop polls it.
  server.on("listening", () => {
    const handle = (server as unknown as ServerInternals)._handle;
    if (!handle) return;
    handle.gateServer = server;
    handle.gateAccept = accept;
    handle.onconnection = onWrapConnection;
  });
  return server;
}
