import { connect } from "cloudflare:sockets";
import { expect, inject, it } from "vitest";
it("connect() reaches a loopback origin", async () => {
  const u = new URL(inject("smokeOrigin"));
  const s = connect({ hostname: u.hostname, port: Number(u.port) });
  const w = s.writable.getWriter();
  await w.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const r = s.readable.getReader(); let out = "";
  for (;;) { const { value, done } = await r.read(); if (done) break; out += new TextDecoder().decode(value); }
  expect(out).toContain("hello from 127.0.0.11");
});
