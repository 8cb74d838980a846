import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readSettings } from "./index.ts";

describe("settings from the worker's vars", () => {
  it("has defaults for everything", () => {
    const s = readSettings({});
    expect(s).toMatchObject({
      clusters: ["default"],
      cacheTtlMs: 60_000,
      transport: "auto",
      requestLogs: false,
      echoRequestId: "errors",
      forwarded: false,
      pushToken: undefined,
      readToken: undefined,
      controlHosts: undefined,
      maxPushBytes: 10 * 1024 * 1024,
      problems: [],
    });
    expect(s.clusterTokens.size).toBe(0);
  });

  it("reads EDGELB_ECHO_REQUEST_ID: errors or always, any case; anything else is a problem and errors", () => {
    expect(readSettings({ EDGELB_ECHO_REQUEST_ID: " Always " }).echoRequestId).toBe("always");
    expect(readSettings({ EDGELB_ECHO_REQUEST_ID: "errors" }).echoRequestId).toBe("errors");
    const bad = readSettings({ EDGELB_ECHO_REQUEST_ID: "yes" });
    expect(bad.echoRequestId).toBe("errors");
    expect(bad.problems).toEqual([`EDGELB_ECHO_REQUEST_ID "yes" is not errors or always; using errors`]);
  });

  it("reads EDGELB_FORWARDED: true or false; anything else is a problem and false", () => {
    expect(readSettings({ EDGELB_FORWARDED: "TRUE" }).forwarded).toBe(true);
    expect(readSettings({ EDGELB_FORWARDED: "false" }).forwarded).toBe(false);
    const bad = readSettings({ EDGELB_FORWARDED: "yes" });
    expect(bad.forwarded).toBe(false);
    expect(bad.problems).toEqual([`EDGELB_FORWARDED "yes" is not true or false; using false`]);
  });

  it("parses the vars", () => {
    const s = readSettings({
      EDGELB_CLUSTERS: " east, west ,east,",
      EDGELB_CACHE_TTL: "2.5",
      EDGELB_TRANSPORT: "Socket",
      EDGELB_REQUEST_LOGS: "TRUE",
      EDGELB_PUSH_TOKEN: " t0k ",
      EDGELB_READ_TOKEN: " r3ad ",
      EDGELB_PUSH_TOKENS: '{"east": " e4st ", "west": "w3st"}',
      EDGELB_CONTROL_HOSTS: " Edge.Example.com , edgelb.me.workers.dev.,127.0.0.1:8787",
      EDGELB_MAX_PUSH_BYTES: "1000",
    });
    expect(s).toMatchObject({ clusters: ["east", "west"], cacheTtlMs: 2500, transport: "socket", requestLogs: true, pushToken: "t0k", readToken: "r3ad", maxPushBytes: 1000 });
    expect([...s.clusterTokens]).toEqual([
      ["east", "e4st"],
      ["west", "w3st"],
    ]);
    expect([...s.controlHosts!]).toEqual(["edge.example.com", "edgelb.me.workers.dev", "127.0.0.1"]);
    expect(s.problems).toEqual([]);
  });

  it("names each bad var and falls back to its default", () => {
    const s = readSettings({ EDGELB_CLUSTERS: " , ", EDGELB_CACHE_TTL: "ten", EDGELB_TRANSPORT: "carrier-pigeon", EDGELB_MAX_PUSH_BYTES: "-1" });
    expect(s).toMatchObject({ clusters: ["default"], cacheTtlMs: 60_000, transport: "auto", maxPushBytes: 10 * 1024 * 1024 });
    expect(s.problems).toEqual([
      `EDGELB_CLUSTERS is empty; serving "default"`,
      `EDGELB_CACHE_TTL "ten" is not a number of seconds; using 60`,
      `EDGELB_TRANSPORT "carrier-pigeon" is not auto, fetch or socket; using auto`,
      `EDGELB_MAX_PUSH_BYTES "-1" is not a positive integer; using 10485760`,
    ]);
  });

  it("leaves out bad or shared cluster tokens (fail closed) without quoting any secret", () => {
    const secret = "s3cret-value";
    const notJson = readSettings({ EDGELB_PUSH_TOKENS: `{east: ${secret}` });
    expect(notJson.clusterTokens.size).toBe(0);
    expect(notJson.problems).toEqual([`EDGELB_PUSH_TOKENS is not JSON (expected {"cluster": "token", ...}); no per-cluster token is accepted`]);

    const s = readSettings({
      EDGELB_PUSH_TOKEN: "single",
      EDGELB_READ_TOKEN: "reader",
      EDGELB_PUSH_TOKENS: JSON.stringify({ Bad_Name: secret, empty: " ", num: 5, a: "shared", b: "shared", c: "reader", d: "single", ok: secret }),
    });
    expect([...s.clusterTokens]).toEqual([["ok", secret]]);
    expect(s.problems).toEqual([
      `EDGELB_PUSH_TOKENS: "Bad_Name" is not a cluster name (a DNS label); its token is not accepted`,
      `EDGELB_PUSH_TOKENS: the token of cluster "empty" is not a non-empty string; it is not accepted`,
      `EDGELB_PUSH_TOKENS: the token of cluster "num" is not a non-empty string; it is not accepted`,
      `EDGELB_PUSH_TOKENS: clusters "a" and "b" share a token; neither is accepted`,
      `EDGELB_PUSH_TOKENS: the token of cluster "c" equals EDGELB_READ_TOKEN; it is not accepted as a cluster token`,
      `EDGELB_PUSH_TOKENS: the token of cluster "d" equals EDGELB_PUSH_TOKEN; it is not accepted as a cluster token`,
    ]);
    expect(s.problems.join("\n")).not.toContain(secret);
    expect(readSettings({ EDGELB_PUSH_TOKENS: '["x"]' }).problems[0]).toContain("is not a JSON object");
  });

  it("EDGELB_PUSH_TOKENS: any map of cluster names to distinct tokens reads back as is; any other text never throws", () => {
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    const token = fc.stringMatching(/^[\x21-\x7e]{1,64}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, token), { selector: ([n]) => n, maxLength: 8 }), (entries) => {
        fc.pre(new Set(entries.map(([, t]) => t)).size === entries.length);
        const s = readSettings({ EDGELB_PUSH_TOKENS: JSON.stringify(Object.fromEntries(entries)) });
        expect(s.problems).toEqual([]);
        expect(new Map(s.clusterTokens)).toEqual(new Map(entries));
      }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (raw) => {
        const s = readSettings({ EDGELB_PUSH_TOKENS: raw });
        for (const [cluster, t] of s.clusterTokens) expect(typeof cluster === "string" && t.length > 0).toBe(true);
      }),
    );
  });

  it("a control-host list without a valid name serves control nowhere, not everywhere", () => {
    const s = readSettings({ EDGELB_CONTROL_HOSTS: "https://edge.example.com/, *.example.com" });
    expect(s.controlHosts).toEqual(new Set());
    expect(s.problems).toEqual([
      `EDGELB_CONTROL_HOSTS: "https://edge.example.com/" is not a hostname; left out`,
      `EDGELB_CONTROL_HOSTS: "*.example.com" is not a hostname; left out`,
      `EDGELB_CONTROL_HOSTS names no valid hostname; the control endpoints answer on no hostname`,
    ]);
  });

  it("EDGELB_FAST_BUDGET: 80,000 requests a day by default, 0 turns it off, anything but a whole number is refused", () => {
    expect(readSettings({}).fastBudget).toBe(80_000);
    expect(readSettings({ EDGELB_FAST_BUDGET: "0" }).fastBudget).toBe(0);
    expect(readSettings({ EDGELB_FAST_BUDGET: "500000" }).fastBudget).toBe(500_000);
    for (const bad of ["-1", "1.5", "lots"]) {
      const s = readSettings({ EDGELB_FAST_BUDGET: bad });
      expect(s.fastBudget).toBe(80_000);
      expect(s.problems).toEqual([`EDGELB_FAST_BUDGET "${bad}" is not a whole number of requests a day; using 80000`]);
    }
  });

  it("EDGELB_FAST_HOLD: 25 s by default, 0 polls, more than 25 s is refused (a held check must end within waitUntil's 30 s)", () => {
    expect(readSettings({}).fastHoldMs).toBe(25_000);
    expect(readSettings({ EDGELB_FAST_HOLD: "0" }).fastHoldMs).toBe(0);
    expect(readSettings({ EDGELB_FAST_HOLD: "10" }).fastHoldMs).toBe(10_000);
    for (const bad of ["30", "-1", "soon"]) {
      const s = readSettings({ EDGELB_FAST_HOLD: bad });
      expect(s.fastHoldMs).toBe(25_000);
      expect(s.problems).toEqual([`EDGELB_FAST_HOLD "${bad}" is not a number of seconds from 0 to 25 (a check must end within waitUntil's 30 s); using 25`]);
    }
  });
});
