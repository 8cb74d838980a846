// rv-proxy (s8): bytes of one edge connection must never turn into another's. Catches a gate that
// reads into a shared (static) buffer (net `onread: { buffer }`) and keeps a view of it after the
// callback returns: a partial head held for the next read, a pipelined request, a body queued
// behind backpressure, a response relayed to a slow client. Addresses: 127.125.2.x (gt8's range; written by rv-proxy, session 8).
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../../sync-agent/gate/keys/index.ts";
import { SIGNATURE_HEADER } from "../../worker/snapshot/signing.ts";
import { gateFor, nodeName, SECRET_1, signature, type TestGate } from "./harness.ts";

const A = "127.125.2.11";
let gate: TestGate;
let app: http.Server;
let appPort: number;
/** The app's view: method, url, a header the client chose, the body's sha256. */
const seen: { url: string; tag: string | undefined; sha: string; length: number }[] = [];
/** A body per path the app answers with (large ones exceed every socket buffer). */
const bodies = new Map<string, Buffer>();

beforeAll(async () => {
  gate = await gateFor(A, {}, KeyRing.of({ k1: SECRET_1 }));
  app = http.createServer((req, res) => {
    let stalled = false;
    const h = createHash("sha256");
    let length = 0;
    req.on("data", (d: Buffer) => {
      h.update(d);
      length += d.length;
      // An upload read slowly: the gate's writes towards the app queue up (backpressure).
      if (req.url === "/up" && !stalled) {
        stalled = true;
        req.pause();
        setTimeout(() => req.resume(), 300);
      }
    });
    req.on("end", () => {
      if (req.url!.startsWith("/split")) {
        // The answer's head in two pieces, 30 ms apart: the gate holds the first piece meanwhile.
        const body = `${req.url} ${req.headers["x-tag"]}`;
        const text = `HTTP/1.1 200 OK\r\nx-tag: ${req.headers["x-tag"]}\r\nx-pad: ${"q".repeat(200)}\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
        req.socket.write(text.slice(0, 150));
        setTimeout(() => req.socket.end(text.slice(150)), 30);
        return;
      }
      seen.push({ url: req.url!, tag: req.headers["x-tag"] as string | undefined, sha: h.digest("hex"), length });
      const body = bodies.get(req.url!.split("?")[0]!) ?? Buffer.from(`${req.url} ${req.headers["x-tag"]}`);
      res.writeHead(200, { "content-length": body.length, "x-tag": String(req.headers["x-tag"]) });
      res.end(body);
    });
  });
  await new Promise<void>((r) => app.listen(0, A, r));
  appPort = (app.address() as AddressInfo).port;
});
afterAll(async () => {
  await gate?.close();
  app?.closeAllConnections();
  await new Promise((r) => app?.close(r));
});

const sign = (method: string, target: string) => signature({ node: nodeName(A), nodePort: appPort, method, target });
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(gate.port, A, () => resolve(s));
    s.on("error", reject);
  });
}

/** Reads a whole HTTP/1.1 answer with a Content-Length from `s` (optionally not reading at first for `slowMs`). */
function readAnswer(s: net.Socket, slowMs = 0): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    let headBuf = Buffer.alloc(0);
    let head: string | undefined;
    let want = 0;
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      if (slowMs > 0) {
        // A client that stops reading for a while: the gate's writes to it queue up.
        s.pause();
        setTimeout(() => s.resume(), slowMs);
        slowMs = 0;
      }
      if (head === undefined) {
        headBuf = Buffer.concat([headBuf, d]);
        const end = headBuf.indexOf("\r\n\r\n");
        if (end === -1) return;
        head = headBuf.subarray(0, end).toString("latin1");
        const m = /content-length: *(\d+)/i.exec(head);
        if (!m) return reject(new Error(`no length: ${head}`));
        want = Number(m[1]);
        d = headBuf.subarray(end + 4);
      }
      parts.push(Buffer.from(d));
      got += d.length;
      if (got >= want) {
        s.off("data", onData);
        resolve({ head, body: Buffer.concat(parts).subarray(0, want) });
      }
    };
    s.on("data", onData);
    s.on("close", () => reject(new Error(`closed after ${got} body bytes: ${headBuf.subarray(0, 200).toString("latin1")}`)));
  });
}

describe("rv-proxy: no bytes cross between edge connections (static read buffers)", () => {
  it("a head held over between reads is not overwritten by other connections' reads", async () => {
    const rounds = 20;
    const work = Array.from({ length: rounds }, async (_, i) => {
      const target = `/held-${i}-${"p".repeat(40)}`;
      const head = `GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", target)}\r\nX-Tag: held-${i}\r\nConnection: close\r\n\r\n`;
      const s = await connect();
      const answer = readAnswer(s);
      // First half now, the rest after other connections had their reads.
      s.write(head.slice(0, 30));
      await new Promise((r) => setTimeout(r, 5));
      // Noise on other connections meanwhile: different bytes of the same length.
      const noise = await connect();
      noise.on("error", () => {});
      noise.on("data", () => {});
      noise.write("X".repeat(200));
      await new Promise((r) => setTimeout(r, 5));
      s.write(head.slice(30));
      const a = await answer;
      noise.destroy();
      s.destroy();
      return { i, head: a.head, body: a.body.toString() };
    });
    for (const r of await Promise.all(work)) {
      expect(r.head).toMatch(/^HTTP\/1\.1 200 /);
      expect(r.body).toBe(`/held-${r.i}-${"p".repeat(40)} held-${r.i}`);
    }
  });

  it("a large request body (backpressure towards the app) and a large answer to a slow reader arrive byte for byte while other connections run", async () => {
    const big = randomBytes(8 * 1024 * 1024);
    bodies.set("/big", randomBytes(16 * 1024 * 1024));
    const upload = async (tag: string) => {
      const s = await connect();
      const answer = readAnswer(s);
      s.write(`POST /up HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("POST", "/up")}\r\nX-Tag: ${tag}\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n`);
      for (let o = 0; o < big.length; o += 60_000) s.write(big.subarray(o, o + 60_000));
      await answer;
      s.destroy();
    };
    const download = async (tag: string) => {
      const s = await connect();
      const answer = readAnswer(s, 400);
      s.write(`GET /big HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", "/big")}\r\nX-Tag: ${tag}\r\nConnection: close\r\n\r\n`);
      const a = await answer;
      s.destroy();
      return a.body;
    };
    const small = async (i: number) => {
      const target = `/small-${i}`;
      const s = await connect();
      const answer = readAnswer(s);
      s.write(`GET ${target} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", target)}\r\nX-Tag: s${i}\r\nConnection: close\r\n\r\n`);
      const a = await answer;
      s.destroy();
      return a.body.toString();
    };
    const before = seen.length;
    // Other connections keep reading junk for as long as the large transfers run.
    let running = true;
    const wrong: string[] = [];
    const answers = (async () => {
      // Answers on other connections meanwhile (reads from the app's side too), each checked.
      for (let k = 1000; running; k++) {
        const got = await small(k);
        if (got !== `/small-${k} s${k}`) wrong.push(got.slice(0, 80));
      }
    })();
    const noise = (async () => {
      while (running) {
        const n = await connect().catch(() => undefined);
        if (n) {
          n.on("error", () => {});
          n.on("data", () => {});
          n.write(Buffer.alloc(64 * 1024, 0x4a));
        }
        await new Promise((r) => setTimeout(r, 5));
        n?.destroy();
      }
    })();
    const [, down, ...smalls] = await Promise.all([upload("up-1"), download("down-1"), ...Array.from({ length: 30 }, (_, i) => small(i))]);
    running = false;
    await Promise.all([noise, answers]);
    expect(wrong).toEqual([]);
    expect(sha(down as Buffer)).toBe(sha(bodies.get("/big")!));
    expect(smalls).toEqual(Array.from({ length: 30 }, (_, i) => `/small-${i} s${i}`));
    const up = seen.slice(before).find((s) => s.url === "/up")!;
    expect(up).toMatchObject({ tag: "up-1", length: big.length, sha: sha(big) });
  }, 60_000);

  it("an answer whose head comes in pieces is relayed as the app sent it while other answers are read meanwhile", async () => {
    const one = async (path: string, tag: string) => {
      const s = await connect();
      const answer = readAnswer(s);
      s.write(`GET ${path} HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", path)}\r\nX-Tag: ${tag}\r\nConnection: close\r\n\r\n`);
      const a = await answer;
      s.destroy();
      return `${/x-tag: (\S+)/.exec(a.head)?.[1]} ${a.body.toString()}`;
    };
    const splits = Array.from({ length: 5 }, (_, i) => one(`/split-${i}`, `sp${i}`));
    const others = Array.from({ length: 40 }, (_, i) => one(`/other-${i}`, `o${i}`));
    expect(await Promise.all(splits)).toEqual(Array.from({ length: 5 }, (_, i) => `sp${i} /split-${i} sp${i}`));
    expect(await Promise.all(others)).toEqual(Array.from({ length: 40 }, (_, i) => `o${i} /other-${i} o${i}`));
  });

  it("a pipelined second request is read as sent after the first answer, whatever other connections read meanwhile", async () => {
    const one = `GET /pipe-1 HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", "/pipe-1")}\r\nX-Tag: p1\r\n\r\n`;
    const two = `GET /pipe-2 HTTP/1.1\r\nHost: app.example.com\r\n${SIGNATURE_HEADER}: ${await sign("GET", "/pipe-2")}\r\nX-Tag: p2\r\nConnection: close\r\n\r\n`;
    const s = await connect();
    let text = "";
    s.setEncoding("latin1");
    s.on("data", (d: string) => (text += d));
    const closed = new Promise((r) => s.on("close", r));
    s.write(one + two);
    // Other connections read while the second request waits in the gate.
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        const n = await connect();
        n.on("error", () => {});
        n.on("data", () => {});
        n.write("Z".repeat(two.length));
        await new Promise((r) => setTimeout(r, 2));
        n.destroy();
      }),
    );
    await closed;
    const bodiesSeen = text.split(/(?=HTTP\/1\.1 \d{3} )/).map((a) => a.slice(a.indexOf("\r\n\r\n") + 4));
    expect(bodiesSeen).toEqual(["/pipe-1 p1", "/pipe-2 p2"]);
    s.destroy();
  });
});
