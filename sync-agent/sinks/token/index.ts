// A secret read from a file and re-read when it changes, so a rotated
// Kubernetes Secret needs no restart. The kubelet updates a Secret volume by
// writing a new timestamped directory and swapping the `..data` symlink; the
// file we were given (`token` → `..data/token`) never changes itself, which is
// why fs.watch on it misses rotations. So: re-read the content at most every
// `recheckMs` when the token is used (a tiny synchronous read; pushes are
// seconds apart), and at once after the edge refused it (401/403).
import { readFileSync } from "node:fs";
import type { Logger } from "pino";

export interface SecretFileOptions {
  path: string;
  /** Names the setting in logs, e.g. "--push-token-file". */
  label: string;
  /** The content already read (the CLI validates the file at startup). */
  initial?: string | undefined;
  /** Re-read at most this often (default 10 s). */
  recheckMs?: number;
  log?: Logger;
  now?: () => number;
}

export class SecretFile {
  private value: string;
  private checkedAt: number;
  private problem: string | undefined;
  private readonly now: () => number;
  private readonly recheckMs: number;

  constructor(private readonly opts: SecretFileOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.recheckMs = opts.recheckMs ?? 10_000;
    this.checkedAt = this.now();
    if (opts.initial !== undefined) this.value = opts.initial;
    else {
      const read = readSecret(opts.path);
      if (!read.ok) throw new Error(`${opts.label} ${opts.path}: ${read.problem}`);
      this.value = read.value;
    }
  }

  /** The current secret; re-reads the file when the last look is older than recheckMs. */
  get(): string {
    if (this.now() - this.checkedAt >= this.recheckMs) this.refresh("changed on disk");
    return this.value;
  }

  /** Re-reads the file now. A missing or empty file keeps the last good secret (said once). */
  refresh(why = "the edge refused the old one"): void {
    this.checkedAt = this.now();
    const read = readSecret(this.opts.path);
    const { label, path, log } = this.opts;
    if (!read.ok) {
      if (read.problem !== this.problem) {
        this.problem = read.problem;
        log?.warn({ file: path, problem: read.problem }, `${label} ${path}: ${read.problem}; keeping the secret read before`);
      }
      return;
    }
    this.problem = undefined;
    if (read.value === this.value) return;
    this.value = read.value;
    log?.info({ file: path }, `${label} ${path}: re-read the secret (${why}); using the new one from now on`);
  }
}

export function readSecret(path: string): { ok: true; value: string } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return { ok: false, problem: `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  // Trailing newline trimmed (as `kubectl create secret --from-file` leaves it).
  const value = text.trim();
  return value ? { ok: true, value } : { ok: false, problem: "the file is empty" };
}
