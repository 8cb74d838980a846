// --dry-run: reads what is stored (when the real sink is configured) so the
// printed diff is real, and writes nothing.
import type { Snapshot } from "../../worker/snapshot/schema.ts";
import type { ReadResult, Sink, WriteResult } from "./types.ts";

export class DryRunSink implements Sink {
  readonly description: string;
  constructor(private readonly inner?: Sink) {
    this.description = inner ? `dry run (reading ${inner.description})` : "dry run";
  }
  async read(signal?: AbortSignal): Promise<ReadResult> {
    return this.inner ? this.inner.read(signal) : { snapshot: null, generation: 0 };
  }
  async write(snapshot: Snapshot): Promise<WriteResult> {
    return { bytes: Buffer.byteLength(JSON.stringify(snapshot)), unchanged: false };
  }
  async remove(): Promise<void> {}
}
