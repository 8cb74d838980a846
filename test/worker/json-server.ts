// The control endpoints of the worker suites' global setups (Node side): a
// server that buffers each request body, then hands it to `handle` with a
// responder that answers JSON.
import http from "node:http";

export type JsonReply = (status: number, value: unknown) => void;

export function jsonServer(handle: (req: http.IncomingMessage, body: string, json: JsonReply) => void): http.Server {
  return http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () =>
      handle(req, body, (status, value) => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
      }),
    );
  });
}
