// What `npm start` tells a newcomer to type must work from their second
// terminal as printed.
import { describe, expect, it } from "vitest";
import { kubeconfigExport } from "../../lab/demo/instructions.ts";
import { agentLogger, formatWorkerLine } from "../../lab/demo/logs.ts";

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

describe("npm start's agent and gate lines", () => {
  it("a node gate's lines say gate, not agent (the agent forwards nothing)", () => {
    const lines: string[] = [];
    const log = agentLogger({ line: (l) => lines.push(l), color: false });
    log.child({ part: "gate" }).warn("Forwarding to 127.0.0.12:32338 failed");
    log.info("pushed generation 2");
    expect(lines[0]).toMatch(/^\S+ gate\s+WARN\s+Forwarding to 127\.0\.0\.12:32338 failed$/);
    expect(lines[1]).toMatch(/^\S+ agent\s+INFO\s+pushed generation 2$/);
  });
});

describe("which node the edge used, as the docs tell a newcomer to look", () => {
  // With pods, the echo's "node" is the pod's node (kube-proxy forwards across nodes): after
  // excluding node-3 it still shows up. "via" is the node whose NodePort the edge used (rv-newcomer #2).
  it("README and docs/lab.md loops grep \"via\", not \"node\"", async () => {
    const { readFileSync } = await import("node:fs");
    for (const page of ["README.md", "docs/lab.md"]) {
      const text = readFileSync(page, "utf8");
      const loops = text.split("\n").filter((l) => /curl -s http:\/\/web\.localhost:8787\/ \| grep -o/.test(l));
      expect(loops.length, page).toBeGreaterThan(0);
      for (const l of loops) expect(l, page).toContain(`grep -o '"via":"[^"]*"'`);
      expect(text, page).toMatch(/`"?via"?` is the node whose NodePort the\s+edge used/);
    }
  });
});
