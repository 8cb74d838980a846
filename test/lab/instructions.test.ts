// What `npm start` tells a newcomer to type must work from their second
// terminal as printed.
import { describe, expect, it } from "vitest";
import { kubeconfigExport } from "../../lab/demo/instructions.ts";
import { formatWorkerLine } from "../../lab/demo/logs.ts";

describe("npm start's instructions", () => {
  it("export KUBECONFIG names a path that still works after cd: $PWD/… below the working directory, else absolute", () => {
    expect(kubeconfigExport("/home/you/edgelb/.edgelb/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=$PWD/.edgelb/kubeconfig");
    expect(kubeconfigExport("/tmp/lab/state/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=/tmp/lab/state/kubeconfig");
    expect(kubeconfigExport("/home/you/kubeconfig", "/home/you/edgelb")).toBe("export KUBECONFIG=/home/you/kubeconfig");
  });
});

describe("npm start's worker lines", () => {
  const out = { line: () => {}, color: false };
  it("say that no snapshot yet is expected at start, at info, not as a warning", () => {
    const line = formatWorkerLine(out, JSON.stringify({ time: "2026-12-01T10:00:00.000Z", level: "warn", event: "config.missing", cluster: "demo", key: "cluster/demo" }));
    expect(line).toMatch(/worker INFO\s+config\.missing cluster=demo key=cluster\/demo \(nothing pushed yet: the agent's first push follows\)$/);
    expect(line).not.toMatch(/WARN/);
  });
  it("keep every other level as the worker said it", () => {
    expect(formatWorkerLine(out, JSON.stringify({ level: "warn", event: "config.removed", cluster: "demo" }))).toMatch(/worker WARN\s+config\.removed cluster=demo$/);
  });
});
