import { describe, expect, it } from "vitest";
import { lab } from "../../test/worker/helpers.ts";
import { createFetchTransport, originURL } from "./fetch/index.ts";
import { selectTransport, type Transports } from "./index.ts";
import { type Origin, type Transport, UpstreamResetError } from "./types.ts";

const fake = (name: "fetch" | "socket"): Transport => ({ name, send: () => Promise.reject(new Error("unused")) });
const transports: Transports = { fetch: fake("fetch"), socket: fake("socket") };
const origin = (address: string): Origin => ({ node: "n", address, port: 30080, scheme: "http" });

describe("transport selection", () => {
  it("auto: IP literals go over sockets, hostnames over fetch()", () => {
    expect(selectTransport(transports, origin("192.0.2.7"), undefined, "auto").name).toBe("socket");
    expect(selectTransport(transports, origin("2001:db8::7"), undefined, "auto").name).toBe("socket");
    expect(selectTransport(transports, origin("node-1.example.net"), undefined, "auto").name).toBe("fetch");
  });

  it("the worker's EDGELB_TRANSPORT applies unless the Service's policy says otherwise", () => {
    expect(selectTransport(transports, origin("192.0.2.7"), undefined, "fetch").name).toBe("fetch");
    expect(selectTransport(transports, origin("node-1.example.net"), undefined, "socket").name).toBe("socket");
    expect(selectTransport(transports, origin("192.0.2.7"), "socket", "fetch").name).toBe("socket");
    expect(selectTransport(transports, origin("node-1.example.net"), "auto", "socket").name).toBe("fetch");
  });
});

describe("fetch transport", () => {
  it("builds origin URLs, bracketing IPv6", () => {
    expect(originURL(origin("2001:db8::7"), "/a?b=1")).toBe("http://[2001:db8::7]:30080/a?b=1");
    expect(originURL({ ...origin("n.example.net"), scheme: "https" }, "/")).toBe("https://n.example.net:30080/");
  });

  it("turns a refused connection into an UpstreamResetError naming the node (fetch() cannot tell refused from reset)", async () => {
    const t = createFetchTransport();
    const o: Origin = { node: "ghost", address: lab.deadAddress, port: lab.nodePort, scheme: "http" };
    const err = await t
      .send({ origin: o, request: new Request("http://x/"), connectTimeoutMs: 1000, responseTimeoutMs: 1000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamResetError);
    expect((err as UpstreamResetError).message).toContain(`cannot reach ghost (${lab.deadAddress}:${lab.nodePort})`);
    expect((err as UpstreamResetError).origin).toBe(o);
  });
  it("leaves no unhandled promise behind when the connection is refused, with or without a body", async () => {
    // workerd itself logs an info line ("uncaught exception ... Network
    // connection lost") for every fetch() that cannot connect, even one whose
    // rejection is handled; that line is not ours. This guards our own side:
    // the race with the timeout, the client's abort signal, the request body.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: Event) => {
      unhandled.push((e as PromiseRejectionEvent).reason);
      e.preventDefault();
    };
    addEventListener("unhandledrejection", onUnhandled);
    try {
      const t = createFetchTransport();
      const o: Origin = { node: "ghost", address: lab.deadAddress, port: lab.nodePort, scheme: "http" };
      const client = new AbortController();
      const bodies: (() => BodyInit | null)[] = [
        () => null,
        () => "small",
        () => new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(1024)) }),
      ];
      for (const body of bodies) {
        const b = body();
        const request = new Request("http://x/upload", { method: b === null ? "GET" : "POST", body: b, signal: client.signal });
        const err = await t.send({ origin: o, request, connectTimeoutMs: 1000, responseTimeoutMs: 1000 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UpstreamResetError);
      }
      // Rejections are reported after the microtask queue drains; give them a turn or two.
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      removeEventListener("unhandledrejection", onUnhandled);
    }
  });
});
