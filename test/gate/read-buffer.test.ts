// The gate reads its NodePort connections into one shared buffer (net's onread): bytes in it live only
// until the read callback returns. Whatever the gate still holds after that (a write the edge has not
// taken yet, a chunk-size line cut in two) must be a copy, or a later read (another request's answer)
// would show through in this one's: a cross-request data leak. Two large answers with different
// contents, through the gate at once, must each arrive exactly as the app sent them.
// Addresses: 127.125.1.x (gt8's range).
import { createHash } from "node:crypto";
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, nodeName, SECRET_1, signature, type TestGate } from "./harness.ts";

const A = "127.125.1.11";
const SIZE = 6 * 1024 * 1024;
let gate: TestGate;
let app: net.Server;
let appPort: number;

/** `size` bytes that differ from every other body's at every position: a byte from the tag and the offset. */
function body(tag: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (tag * 31 + (i >> 10) + i) & 0xff;
  return b;
}
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const bodies = new Map([1, 2, 3].map((t) => [t, body(t, SIZE)]));

beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  // /length/<tag>: Content-Length; /chunked/<tag>: chunked, in chunks of odd sizes (size lines cut across reads).
  app = net.createServer((socket) => {
    let buf = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      buf += d;
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) return;
      const [, kind, tag] = /^GET \/(length|chunked|cut)\/(\d)/.exec(buf)!;
      buf = buf.slice(end + 4);
      if (kind === "cut") {
        // A chunk-size line cut in two across reads: the gate keeps its first half until the second comes.
        socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1");
        setTimeout(() => socket.write("0\r\n0123456789abcdef\r\n0\r\n\r\n"), 20);
        return;
      }
      const b = bodies.get(Number(tag))!;
      if (kind === "length") {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n`);
        for (let i = 0; i < b.length; i += 100_003) socket.write(b.subarray(i, i + 100_003));
        return;
      }
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      for (let i = 0; i < b.length; i += 7_777) {
        const c = b.subarray(i, i + 7_777);
        socket.write(`${c.length.toString(16)}\r\n`);
        socket.write(c);
        socket.write("\r\n");
      }
      socket.write("0\r\n\r\n");
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((r) => app.listen(0, A, r));
  appPort = (app.address() as AddressInfo).port;
});
afterAll(async () => {
  await gate?.close();
  await new Promise((r) => app?.close(r));
});

/** One signed GET on its own connection (as the edge sends it); the answer's body, as received. */
async function get(target: string): Promise<Buffer> {
  const sig = await signature({ node: nodeName(A), nodePort: appPort, target });
  return new Promise((resolve, reject) => {
    const socket = net.connect(gate.port, A, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${sig}\r\nConnection: close\r\n\r\n`));
    const parts: Buffer[] = [];
    socket.on("data", (d: Buffer) => parts.push(d));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(parts);
      const end = all.indexOf("\r\n\r\n");
      resolve(all.subarray(end + 4));
    });
  });
}

function unchunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let p = 0; ; ) {
    const nl = b.indexOf("\r\n", p);
    const size = parseInt(b.toString("latin1", p, nl), 16);
    if (size === 0) return Buffer.concat(out);
    out.push(b.subarray(nl + 2, nl + 2 + size));
    p = nl + 2 + size + 2;
  }
}

describe("the gate's shared read buffer", () => {
  it("never lets one answer's bytes show through in another's: large answers at once, Content-Length and chunked, arrive exactly as sent", async () => {
    const [a, b, c] = await Promise.all([get("/length/1"), get("/length/2"), get("/chunked/3")]);
    expect(a.length).toBe(SIZE);
    expect(sha(a)).toBe(sha(bodies.get(1)!));
    expect(sha(b)).toBe(sha(bodies.get(2)!));
    expect(sha(unchunk(c))).toBe(sha(bodies.get(3)!));
  });

  it("keeps its own copy of a chunk-size line cut across reads (the next read reuses the buffer)", async () => {
    expect((await get("/cut/1")).toString("latin1")).toBe("10\r\n0123456789abcdef\r\n0\r\n\r\n");
  });
});
