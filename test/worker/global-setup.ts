import http from "node:http";
import type { TestProject } from "vitest/node";

export default async function setup(project: TestProject) {
  const server = http.createServer((req, res) => {
    res.setHeader("content-type", "text/plain");
    res.end(`hello from ${req.socket.localAddress}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.11", r));
  const addr = server.address() as { port: number };
  project.provide("smokeOrigin", `http://127.0.0.11:${addr.port}`);
  return async () => {
    await new Promise((r) => server.close(r));
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    smokeOrigin: string;
  }
}
