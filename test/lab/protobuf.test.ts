// kubectl's protobuf request bodies (lab/cluster/api/protobuf.ts): what it
// encodes decodes to the same object, and hostile bytes are a clear 4xx.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeProtobuf } from "../../lab/cluster/api/protobuf.ts";
import { ApiError } from "../../lab/cluster/api/status.ts";

// A minimal encoder with upstream's field numbers, as Go's generated code writes them.
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};
const bytesField = (field: number, b: number[]) => [...varint(field * 8 + 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytesField(field, [...Buffer.from(s, "utf8")]);
const int = (field: number, n: number) => [...varint(field * 8), ...varint(n)];
const map = (field: number, m: Record<string, string>) => Object.entries(m).flatMap(([k, v]) => bytesField(field, [...str(1, k), ...str(2, v)]));

interface Container {
  name: string;
  image: string;
  ports: number[];
}
function encodeDeployment(name: string, labels: Record<string, string>, replicas: number, containers: Container[]): Buffer {
  const meta = (n: string | undefined, l: Record<string, string>) => [...(n ? str(1, n) : []), ...str(4, ""), ...int(7, 0), ...bytesField(8, []), ...map(11, l)];
  const container = (c: Container) => [...str(1, c.name), ...str(2, c.image), ...c.ports.flatMap((p) => bytesField(6, [...int(3, p), ...str(4, "TCP")])), ...bytesField(8, [])];
  const template = [...bytesField(1, meta(undefined, labels)), ...bytesField(2, containers.flatMap((c) => bytesField(2, container(c))))];
  const spec = [...int(1, replicas), ...bytesField(2, map(1, labels)), ...bytesField(3, template), ...bytesField(4, []), ...int(5, 0), ...int(7, 0)];
  const raw = [...bytesField(1, meta(name, labels)), ...bytesField(2, spec), ...bytesField(3, [])];
  const unknown = [...bytesField(1, [...str(1, "apps/v1"), ...str(2, "Deployment")]), ...bytesField(2, raw), ...str(3, ""), ...str(4, "")];
  return Buffer.from([0x6b, 0x38, 0x73, 0x00, ...unknown]);
}

const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/);

describe("protobuf request bodies", () => {
  it("a Deployment as kubectl encodes it decodes to the JSON object", () => {
    fc.assert(
      fc.property(
        label,
        fc.dictionary(label, label, { minKeys: 1, maxKeys: 4 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.record({ name: label, image: fc.string({ minLength: 1, maxLength: 40 }), ports: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 }) }), { minLength: 1, maxLength: 3 }),
        (name, labels, replicas, containers) => {
          const got = decodeProtobuf(encodeDeployment(name, labels, replicas, containers));
          expect(got).toEqual({
            apiVersion: "apps/v1",
            kind: "Deployment",
            metadata: { name, creationTimestamp: null, labels },
            spec: {
              replicas,
              selector: { matchLabels: labels },
              template: {
                metadata: { creationTimestamp: null, labels },
                spec: { containers: containers.map((c) => ({ name: c.name, image: c.image, ...(c.ports.length ? { ports: c.ports.map((p) => ({ containerPort: p, protocol: "TCP" })) } : {}), resources: {} })) },
              },
              strategy: {},
            },
            status: {},
          });
        },
      ),
    );
  });

  it("an Eviction as kubectl drain encodes it (policy/v1, with DeleteOptions) decodes to the JSON object", () => {
    const encodeEviction = (name: string, namespace: string, grace: number | undefined, uid: string | undefined, dryRun: string[]) => {
      const meta = [...str(1, name), ...str(2, ""), ...str(3, namespace), ...str(4, ""), ...int(7, 0), ...bytesField(8, [])];
      const opts = [...(grace !== undefined ? int(1, grace) : []), ...(uid ? bytesField(2, str(1, uid)) : []), ...dryRun.flatMap((d) => str(5, d))];
      const raw = [...bytesField(1, meta), ...bytesField(2, opts)];
      return Buffer.from([0x6b, 0x38, 0x73, 0x00, ...bytesField(1, [...str(1, "policy/v1"), ...str(2, "Eviction")]), ...bytesField(2, raw)]);
    };
    fc.assert(
      fc.property(label, label, fc.option(fc.integer({ min: 0, max: 3600 }), { nil: undefined }), fc.option(label, { nil: undefined }), fc.subarray(["All"]), (name, ns, grace, uid, dryRun) => {
        expect(decodeProtobuf(encodeEviction(name, ns, grace, uid, dryRun))).toEqual({
          apiVersion: "policy/v1",
          kind: "Eviction",
          metadata: { name, namespace: ns, creationTimestamp: null },
          deleteOptions: { ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}), ...(uid ? { preconditions: { uid } } : {}), ...(dryRun.length ? { dryRun } : {}) },
        });
      }),
    );
  });

  it("hostile bytes are a 400 or 415 Status, never a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeProtobuf(Buffer.from([0x6b, 0x38, 0x73, 0x00, ...bytes]));
        } catch (e) {
          expect(e).toBeInstanceOf(ApiError);
          expect([400, 415]).toContain((e as ApiError).code);
        }
      }),
    );
    expect(() => decodeProtobuf(Buffer.from("{}"))).toThrow(/k8s\\0 prefix/);
  });

  it("a kind it has no message for, or a field it does not know, is refused by name", () => {
    const secret = Buffer.from([0x6b, 0x38, 0x73, 0x00, ...bytesField(1, [...str(1, "v1"), ...str(2, "Secret")])]);
    expect(() => decodeProtobuf(secret)).toThrow(/not v1\/Secret; send JSON instead/);
    const odd = Buffer.from([0x6b, 0x38, 0x73, 0x00, ...bytesField(1, [...str(1, "apps/v1"), ...str(2, "Deployment")]), ...bytesField(2, bytesField(2, str(99, "x")))]);
    expect(() => decodeProtobuf(odd)).toThrow(/cannot decode protobuf field spec#99/);
  });
});
