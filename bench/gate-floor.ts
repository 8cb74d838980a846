// The floor under the node gate's rows (bench/gate.ts): a bare Node `net` proxy on the same hop, in a
// process of its own, so the gate's CPU per request can be split into what any Node proxy on this hop
// costs (accept, read, one write each way, close: Node's net and the kernel) and the gate's own work
// (strict parse, signature check, replay cache, head rewrites, metrics). It does only what a correct
// relay of the bench's answers needs: it forwards each request head (its `Connection: close` dropped,
// so the NodePort keeps the connection) over a pooled keep-alive connection to the NodePort named by
// the signature header, relays the answer until its Content-Length is reached (or, chunked, its last chunk), then closes the
// edge's connection once flushed, as the gate does. No verification: never deploy this.
// Args: <address>…; prints {"port": N} once listening; answers each stdin line with {"forwarded": N}.
import net from "node:net";
import { createInterface } from "node:readline";

const CLOSE = /\r\nconnection: *close(?=\r\n)/i;
const NODE_PORT = /\r\nx-edgelb-signature:[^\r]*;p=(\d+);/i;
const LENGTH = /\r\ncontent-length: *(\d+)\r\n/i;
let forwarded = 0;

interface Up extends net.Socket {
  edge: net.Socket | null;
  remaining: number;
}

function serve(address: string, port: number): Promise<number> {
  const pool = new Map<number, Up[]>();
  const server = net.createServer({ noDelay: true }, (edge) => {
    let head = "";
    edge.on("error", () => edge.destroy());
    edge.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.endsWith("\r\n\r\n")) return;
      const nodePort = Number(NODE_PORT.exec(head)?.[1]);
      let idle = pool.get(nodePort);
      if (!idle) pool.set(nodePort, (idle = []));
      // A pooled connection the NodePort closed while idle leaves the pool on its close (below).
      const up = idle.pop() ?? connect(address, nodePort, idle);
      up.edge = edge;
      up.remaining = -1;
      up.write(head.replace(CLOSE, ""), "latin1");
      head = "";
    });
  });
  return new Promise((resolve) => server.listen(port, address, () => resolve((server.address() as net.AddressInfo).port)));
}

function connect(address: string, port: number, idle: Up[]): Up {
  const up = net.connect({ host: address, port, noDelay: true }) as Up;
  up.on("error", () => up.destroy());
  up.on("close", () => {
    // Closed while idle (the NodePort's keep-alive timeout between rows): out of the pool, or the next
    // request would be written to a dead socket and its edge connection would hang (seen: 0 req/s rounds).
    const i = idle.indexOf(up);
    if (i !== -1) idle.splice(i, 1);
    up.edge?.destroy();
  });
  up.on("data", (chunk: Buffer) => {
    const edge = up.edge;
    if (!edge) return void up.destroy();
    if (up.remaining === -1) {
      const text = chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n") + 4;
      const length = LENGTH.exec(text.slice(0, end))?.[1];
      // No Content-Length: a chunked answer, ended by its last chunk (no trailers in the bench's answers).
      up.remaining = length === undefined ? (text.endsWith("\r\n0\r\n\r\n") ? 0 : Infinity) : Number(length) - (chunk.length - end);
    } else if (up.remaining === Infinity) {
      if (chunk.toString("latin1").endsWith("0\r\n\r\n")) up.remaining = 0;
    } else up.remaining -= chunk.length;
    edge.write(chunk);
    if (up.remaining > 0) return;
    forwarded++;
    up.edge = null;
    idle.push(up);
    if (edge.writableLength === 0) edge.destroy();
    else edge.destroySoon();
  });
  return up;
}

let port = 0;
for (const address of process.argv.slice(2)) port = await serve(address, port);
process.stdout.write(`${JSON.stringify({ port })}\n`);
createInterface({ input: process.stdin }).on("line", () => process.stdout.write(`${JSON.stringify({ forwarded })}\n`));
process.once("SIGTERM", () => process.exit(0));
