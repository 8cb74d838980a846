// How a failed connect is told apart: a connect timeout (a blackholed node)
// from a refusal, because passive health ejects on the first timeout.
import { describe, expect, it } from "vitest";
import { ConnectError } from "../types.ts";
import { openConnection, type Connect } from "./connection.ts";

const origin = { node: "n1", address: "192.0.2.1", port: 30080, scheme: "http" as const };

function fakeConnect(opened: Promise<unknown>): Connect {
  return () =>
    ({
      opened,
      closed: new Promise(() => {}),
      close: async () => {},
      readable: new ReadableStream(),
      writable: new WritableStream(),
    }) as unknown as Socket;
}

describe("openConnection", () => {
  it("says a connect that got no answer within the timeout timed out", async () => {
    const err = await openConnection(fakeConnect(new Promise(() => {})), origin, 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(true);
    expect((err as ConnectError).message).toContain("no connection within 20 ms");
  });

  it("says a refused connect did not time out", async () => {
    const err = await openConnection(fakeConnect(Promise.reject(new Error("connection refused"))), origin, 1_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).timedOut).toBe(false);
  });
});
