// Generation conflicts (409: the edge holds a newer generation) come in runs:
// another writer keeps pushing, or an old leader's snapshot is in the way, and
// every retry meets one. Say it once per run, not once per retry; the run ends
// with the next accepted push.
export class ConflictLog {
  private inRun = 0;

  /** A conflict: "warn" for the first of a run, "debug" for the repeats. */
  conflict(): "warn" | "debug" {
    return this.inRun++ === 0 ? "warn" : "debug";
  }

  /** A push was accepted: returns how many conflicts the run had (0: none). */
  resolved(): number {
    const n = this.inRun;
    this.inRun = 0;
    return n;
  }
}
