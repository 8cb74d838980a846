// Reviewer finding (rv-newcomer 11): a gate started with an empty key directory must say so.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { KeyRing } from "./index.ts";

it("a gate started with an empty key directory says so (error), not silently refusing everything", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gate-keys-"));
  try {
    const lines: { level: string; msg: string }[] = [];
    const log = {
      info: (_o: object, msg: string) => lines.push({ level: "info", msg }),
      warn: (_o: object, msg: string) => lines.push({ level: "warn", msg }),
      error: (_o: object, msg: string) => lines.push({ level: "error", msg }),
    };
    const ring = new KeyRing();
    ring.reload(dir, log as never);
    expect(lines.filter((l) => l.level === "error").map((l) => l.msg).join("\n")).toMatch(/No usable key/);
    // Said once: the next reload of the same empty directory is quiet.
    ring.reload(dir, log as never);
    expect(lines.filter((l) => l.level === "error")).toHaveLength(1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
