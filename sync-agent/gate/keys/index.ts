// The gate's signing keys: a directory holding one file per key, named by its
// key id (a mounted Kubernetes Secret: `kubectl create secret generic
// edgelb-gate-keys --from-literal=k2=...`). Every key in it is accepted, so a
// rotation adds the new key, moves the worker to it, then drops the old one.
// Re-read every few seconds: a Secret update reaches the mounted files without
// a restart. A directory that becomes unreadable keeps the last good keys.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { KEY_ID, secretProblem } from "../../../worker/snapshot/signing.ts";
import type { KeyLookup } from "../verify/index.ts";

/** Keys beyond this many are ignored: a rotation needs two. */
export const MAX_KEYS = 8;

export interface KeyLoad {
  keys: Map<string, Buffer>;
  /** Files that were skipped, and why (never the secret). */
  problems: string[];
}

/** Reads the key directory; throws when the directory itself cannot be read. */
export function loadKeyDir(dir: string): KeyLoad {
  const keys = new Map<string, Buffer>();
  const problems: string[] = [];
  // Kubernetes mounts Secrets through "..data" symlinks: hidden names are its bookkeeping.
  const names = readdirSync(dir).filter((n) => !n.startsWith(".")).sort();
  for (const name of names) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    if (!KEY_ID.test(name)) {
      problems.push(`${name}: a key file's name is its key id: 1-64 letters, digits, '.', '_' or '-'`);
      continue;
    }
    if (keys.size >= MAX_KEYS) {
      problems.push(`${name}: more than ${MAX_KEYS} keys; ignored`);
      continue;
    }
    const secret = readFileSync(path, "utf8").trim();
    const problem = secretProblem(secret);
    if (problem) {
      problems.push(`${name}: ${problem}`);
      continue;
    }
    keys.set(name, Buffer.from(secret, "utf8"));
  }
  return { keys, problems };
}

export interface KeyRingLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** The keys in use, swapped whole on a reload. */
export class KeyRing implements KeyLookup {
  #keys = new Map<string, Buffer>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastProblems = "";

  static of(keys: Record<string, string>): KeyRing {
    const ring = new KeyRing();
    ring.set(new Map(Object.entries(keys).map(([id, s]) => [id, Buffer.from(s, "utf8")])));
    return ring;
  }

  get size(): number {
    return this.#keys.size;
  }

  ids(): string[] {
    return [...this.#keys.keys()];
  }

  get(id: string): Buffer | undefined {
    return this.#keys.get(id);
  }

  set(keys: Map<string, Buffer>): void {
    this.#keys = keys;
  }

  /** Loads the directory now and every `everyMs`; logs what changed, never a secret. */
  watch(dir: string, everyMs: number, log: KeyRingLog): void {
    this.reload(dir, log);
    this.#timer = setInterval(() => this.reload(dir, log), everyMs);
    this.#timer.unref();
  }

  #loadedOnce = false;

  reload(dir: string, log: KeyRingLog): void {
    let load: KeyLoad;
    try {
      load = loadKeyDir(dir);
    } catch (err) {
      const problem = `cannot read ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      if (problem !== this.#lastProblems) log.error({ event: "gate.keys_unreadable", dir, problem, keys: this.ids() }, `The key directory cannot be read (${problem}); keeping the ${this.size} key(s) loaded before.`);
      this.#lastProblems = problem;
      return;
    }
    const problems = load.problems.join("; ");
    if (problems && problems !== this.#lastProblems) log.warn({ event: "gate.keys_skipped", dir, problems: load.problems }, `Some key files were skipped: ${problems}.`);
    this.#lastProblems = problems;
    const before = this.ids();
    const after = [...load.keys.keys()];
    const changed = before.length !== after.length || after.some((id) => !this.#keys.has(id) || !this.#keys.get(id)!.equals(load.keys.get(id)!));
    // The first load is always said (an empty directory at start-up is an error the operator must see).
    const first = !this.#loadedOnce;
    this.#loadedOnce = true;
    if (!changed && !first) return;
    this.set(load.keys);
    const added = after.filter((id) => !before.includes(id));
    const removed = before.filter((id) => !after.includes(id));
    if (after.length === 0) log.error({ event: "gate.keys_loaded", dir, keys: after, added, removed }, `No usable key in ${dir}: every request is refused until one is added.`);
    else log.info({ event: "gate.keys_loaded", dir, keys: after, added, removed }, `Accepting signatures by key(s) ${after.join(", ")}${added.length ? ` (added ${added.join(", ")})` : ""}${removed.length ? ` (removed ${removed.join(", ")})` : ""}.`);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
