import { Command, Option } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CliError } from "../cli/index.ts";
import { LoggedFailure, runCommand, untilStopped } from "./index.ts";

function program(run: () => Promise<void>): Command {
  return new Command("edgelb-test").addOption(new Option("--port <n>").choices(["1", "2"])).action(run);
}

function stderr(): string[] {
  const out: string[] = [];
  vi.spyOn(process.stderr, "write").mockImplementation(((s: string) => (out.push(String(s)), true)) as typeof process.stderr.write);
  vi.spyOn(process.stdout, "write").mockImplementation((() => true) as typeof process.stdout.write);
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe("runCommand: argv to an exit code", () => {
  it("0 for a clean run and for --help; 2 with one line naming the command for bad flags or settings; 1 with the stack for a failure", async () => {
    const err = stderr();
    expect(await runCommand(program(async () => {}), ["node", "x"])).toBe(0);
    expect(await runCommand(program(async () => {}), ["node", "x", "--help"])).toBe(0);
    expect(await runCommand(program(async () => {}), ["node", "x", "--port", "9"])).toBe(2);
    expect(err.join("")).toMatch(/^edgelb-test: option '--port <n>' argument '9' is invalid\. Allowed choices are 1, 2\.\n\(see edgelb-test --help\)\n$/);
    err.length = 0;
    expect(await runCommand(program(async () => { throw new CliError("--thing is required"); }), ["node", "x"])).toBe(2);
    expect(err.join("")).toBe("edgelb-test: --thing is required\n(see edgelb-test --help)\n");
    err.length = 0;
    expect(await runCommand(program(async () => { throw new Error("the API server is gone"); }), ["node", "x"])).toBe(1);
    expect(err.join("")).toMatch(/^edgelb-test: Error: the API server is gone\n\s+at /);
    err.length = 0;
    // Already said as a structured line (gate.port_taken): exit 1, nothing printed again (no stack).
    expect(await runCommand(program(async () => { throw new LoggedFailure("the gate's port is taken"); }), ["node", "x"])).toBe(1);
    expect(err.join("")).toBe("");
  });
});

describe("untilStopped", () => {
  it("resolves on abort and leaves no signal listener behind", async () => {
    const before = [process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")];
    const ac = new AbortController();
    const stopped = untilStopped(ac.signal);
    expect([process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")]).toEqual([before[0]! + 1, before[1]! + 1]);
    ac.abort();
    expect(await stopped).toBe("abort");
    expect([process.listenerCount("SIGTERM"), process.listenerCount("SIGINT")]).toEqual(before);
    expect(await untilStopped(AbortSignal.abort())).toBe("abort");
  });
});
