// workerd's byte streams for code that runs outside workerd (the routing
// bench child): Node has no IdentityTransformStream or FixedLengthStream, so
// the worker's response relay would throw and every request would be timed as
// a 500. These stand-ins behave alike for the bench: bytes pass through
// unchanged; a FixedLengthStream errors when the body is longer or shorter
// than declared. Installed only when missing; never inside workerd.

export class IdentityTransformStream extends TransformStream<Uint8Array, Uint8Array> {}

export class FixedLengthStream extends TransformStream<Uint8Array, Uint8Array> {
  constructor(expectedLength: number | bigint) {
    const expected = Number(expectedLength);
    if (!Number.isSafeInteger(expected) || expected < 0) throw new RangeError(`FixedLengthStream: invalid length ${String(expectedLength)}`);
    let seen = 0;
    super({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > expected) throw new TypeError(`FixedLengthStream: ${seen} bytes written, ${expected} declared`);
        controller.enqueue(chunk);
      },
      flush() {
        if (seen !== expected) throw new TypeError(`FixedLengthStream: closed after ${seen} of ${expected} bytes`);
      },
    });
  }
}

/** Defines the two globals where the runtime lacks them. */
export function installWorkerdStreams(g: Record<string, unknown> = globalThis as unknown as Record<string, unknown>): void {
  g.IdentityTransformStream ??= IdentityTransformStream;
  g.FixedLengthStream ??= FixedLengthStream;
}
