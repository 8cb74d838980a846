import { describe, expect, it } from "vitest";
import { readSettings } from "./index.ts";

describe("settings from the worker's vars", () => {
  it("has defaults for everything", () => {
    const s = readSettings({});
    expect(s).toMatchObject({ clusters: ["default"], cacheTtlMs: 10_000, transport: "auto", requestLogs: false, pushToken: undefined, maxPushBytes: 10 * 1024 * 1024, problems: [] });
  });

  it("parses the vars", () => {
    const s = readSettings({
      EDGELB_CLUSTERS: " east, west ,east,",
      EDGELB_CACHE_TTL: "2.5",
      EDGELB_TRANSPORT: "Socket",
      EDGELB_REQUEST_LOGS: "TRUE",
      EDGELB_PUSH_TOKEN: " t0k ",
      EDGELB_MAX_PUSH_BYTES: "1000",
    });
    expect(s).toMatchObject({ clusters: ["east", "west"], cacheTtlMs: 2500, transport: "socket", requestLogs: true, pushToken: "t0k", maxPushBytes: 1000 });
  });

  it("names each bad var and falls back to its default", () => {
    const s = readSettings({ EDGELB_CLUSTERS: " , ", EDGELB_CACHE_TTL: "ten", EDGELB_TRANSPORT: "carrier-pigeon", EDGELB_MAX_PUSH_BYTES: "-1" });
    expect(s).toMatchObject({ clusters: ["default"], cacheTtlMs: 10_000, transport: "auto", maxPushBytes: 10 * 1024 * 1024 });
    expect(s.problems).toEqual([
      `EDGELB_CLUSTERS is empty; serving "default"`,
      `EDGELB_CACHE_TTL "ten" is not a number of seconds; using 10`,
      `EDGELB_TRANSPORT "carrier-pigeon" is not auto, fetch or socket; using auto`,
      `EDGELB_MAX_PUSH_BYTES "-1" is not a positive integer; using 10485760`,
    ]);
  });
});
