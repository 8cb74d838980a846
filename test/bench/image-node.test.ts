// Section 1g runs the node gate on the Node the image ships (bench/lib/image-node): the pinned
// release must be the Dockerfile's major, a fetched tarball must match its pinned integrity, and
// whatever goes wrong leaves the gates on the bench's own Node with the reason in the texts.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { dockerfileNodeMajor, IMAGE_NODE, imageNode, integrityMatches, type ImageNodeDeps } from "../../bench/lib/image-node/index.ts";
import { createHash } from "node:crypto";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "edgelb-image-node-"));
  dirs.push(d);
  return d;
}

/** A stand-in binary that prints a version, as `node -v` does. */
function fakeNode(file: string, version: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\necho ${version}\n`);
  chmodSync(file, 0o755);
}

function deps(over: Partial<ImageNodeDeps>): ImageNodeDeps {
  return {
    env: {},
    platform: "linux",
    arch: "x64",
    cacheDir: tmp(),
    versionOf: (node) => readFileSync(node, "utf8").match(/echo (\S+)/)![1]!,
    pack: () => {
      throw new Error("no registry here");
    },
    unpack: () => {
      throw new Error("nothing to unpack");
    },
    execPath: "/usr/bin/node",
    execVersion: "v20.20.2",
    ...over,
  };
}

describe("the gate bench's Node (the image's)", () => {
  it("is pinned to the Dockerfile's Node major release", () => {
    const major = dockerfileNodeMajor(readFileSync(path.join(ROOT, "Dockerfile"), "utf8"));
    expect(major).toBe(Number(IMAGE_NODE.version.split(".")[0]));
    expect(dockerfileNodeMajor("FROM x\nARG NODE_VERSION=20\n")).toBe(20);
    expect(dockerfileNodeMajor("ARG NODE_VERSION\n")).toBeUndefined();
  });

  it("checks a tarball's integrity as npm records it", () => {
    const bytes = new TextEncoder().encode("a tarball");
    const good = `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
    expect(integrityMatches(bytes, good)).toBe(true);
    expect(integrityMatches(new TextEncoder().encode("another"), good)).toBe(false);
    expect(integrityMatches(bytes, "md5-abc")).toBe(false);
  });

  it("uses EDGELB_BENCH_GATE_NODE when set, and says whether it is the image's major", () => {
    const d = tmp();
    fakeNode(path.join(d, "node22"), "v22.1.0");
    const n = imageNode(deps({ env: { EDGELB_BENCH_GATE_NODE: path.join(d, "node22") } }));
    expect(n).toMatchObject({ path: path.join(d, "node22"), version: "v22.1.0", imageMajor: false });
    expect(n.source).toContain("EDGELB_BENCH_GATE_NODE");
  });

  it("uses the release kept from an earlier run without fetching it again", () => {
    const cacheDir = tmp();
    const binary = path.join(cacheDir, `node-v${IMAGE_NODE.version}`, "bin", "node");
    fakeNode(binary, `v${IMAGE_NODE.version}`);
    let packed = 0;
    const n = imageNode(deps({ cacheDir, pack: () => (packed++, "") }));
    expect(packed).toBe(0);
    expect(n).toMatchObject({ path: binary, version: `v${IMAGE_NODE.version}`, imageMajor: true });
  });

  it("refuses a fetched tarball whose integrity differs, and runs the gates on the bench's own Node", () => {
    const cacheDir = tmp();
    const n = imageNode(
      deps({
        cacheDir,
        pack: (_spec, dir) => {
          writeFileSync(path.join(dir, "x.tgz"), "not the release");
          return path.join(dir, "x.tgz");
        },
        unpack: () => {
          throw new Error("must not unpack");
        },
      }),
    );
    expect(n).toMatchObject({ path: "/usr/bin/node", version: "v20.20.2", imageMajor: false });
    expect(n.source).toContain("does not match the pinned integrity");
    expect(existsSync(path.join(cacheDir, `node-v${IMAGE_NODE.version}`))).toBe(false);
  });

  it("falls back with the reason when the registry cannot be reached or the platform has no such binary", () => {
    expect(imageNode(deps({})).source).toContain("could not fetch it (no registry here)");
    const mac = imageNode(deps({ platform: "darwin", arch: "arm64" }));
    expect(mac.path).toBe("/usr/bin/node");
    expect(mac.source).toContain("linux x64, this is darwin arm64");
  });
});

describe("the gate bench's Node options", () => {
  it("are the DaemonSet's, heap and young generation bounded", async () => {
    const { daemonSetNodeOptions } = await import("../../bench/gate.ts");
    const options = daemonSetNodeOptions(readFileSync(path.join(ROOT, "deploy/gate/daemonset.yaml"), "utf8"));
    expect(options).toMatch(/--max-old-space-size=\d+/);
    expect(options).toMatch(/--max-semi-space-size=\d+/);
    expect(daemonSetNodeOptions('        - name: NODE_OPTIONS\n          value: "--max-old-space-size=64"\n')).toBe("--max-old-space-size=64");
    expect(daemonSetNodeOptions("        - name: OTHER\n          value: x\n")).toBeUndefined();
  });
});
