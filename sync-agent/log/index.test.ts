import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { redactConfig, defaultConfig } from "../config.ts";
import { createLogger } from "./index.ts";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      cb();
    },
  });
  return { lines, destination };
}

describe("logger", () => {
  it("writes JSON lines with the level as a word and never a token", () => {
    const { lines, destination } = capture();
    const log = createLogger({ format: "json", level: "info", destination });
    const config = defaultConfig({ cluster: "home", pushToken: "tok-123", apiToken: "cf-456" });
    log.info({ config: redactConfig(config), pushToken: "tok-123" }, "starting");
    log.debug("hidden");
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: "info", msg: "starting", component: "edgelb-sync-agent", pushToken: "[redacted]" });
    expect(lines[0]).not.toMatch(/tok-123|cf-456/);
  });

  it("writes one readable line per message in pretty form", () => {
    const { lines, destination } = capture();
    const log = createLogger({ format: "pretty", level: "info", destination });
    log.warn({ node: "node-2" }, "node node-2 failed its health check (HTTP 503): out of rotation");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WARN.*: node node-2 failed its health check \(HTTP 503\): out of rotation$/);
  });
});
