// Reviewer finding (rv-attack 2): signatures bind the cluster. With one key shared by two clusters (the
// documented EDGELB_GATE_KEY fallback), cluster b's snapshot naming cluster a's node and a private NodePort
// must not get through a's gate.
import { expect, it } from "vitest";
import { GateSigner, readGateKeys } from "../../../worker/sign/index.ts";
import { SIGNATURE_HEADER } from "../../../worker/snapshot/signing.ts";
import { ReplayCache } from "../replay/index.ts";
import { verify } from "./index.ts";

const secret = "s".repeat(44);
const keys = { get: (id: string) => (id === "k1" ? Buffer.from(secret) : undefined), size: 1 };
const ctx = () => ({ keys, replay: new ReplayCache({ capacity: 100, windowS: 30 }), nowS: Math.floor(Date.now() / 1000), maxSkewS: 30, ports: { min: 30000, max: 32767 }, nodeName: "a-node-1", clusterName: "a" });
const head = (header: string) => ({ method: "GET", target: "/admin", rawHeaders: ["Host", "evil.b.example", SIGNATURE_HEADER, header] });

it("cluster b's snapshot can name cluster a's node and a private NodePort, and a's gate refuses it (wrong_cluster)", async () => {
  const signer = new GateSigner(readGateKeys({ EDGELB_GATE_KEY: `k1:${secret}` }));
  const header = await signer.sign("b", { method: "GET", host: "evil.b.example", target: "/admin", node: "a-node-1", nodePort: 31000 });
  expect(verify(head(header as string), ctx())).toEqual({ ok: false, reason: "wrong_cluster" });
  // The same request signed for cluster a passes a's gate.
  const own = await signer.sign("a", { method: "GET", host: "evil.b.example", target: "/admin", node: "a-node-1", nodePort: 31000 });
  expect(verify(head(own as string), ctx())).toMatchObject({ ok: true, nodePort: 31000 });
  // Editing the cluster in the header breaks the HMAC.
  expect(verify(head((header as string).replace(";c=b;", ";c=a;")), ctx())).toEqual({ ok: false, reason: "bad_signature" });
});
