// nginx as the classic baseline: a round-robin reverse proxy with upstream
// keep-alive (what any tuned deployment uses), one worker process so it gets
// the same share of the 2 cores as workerd. Runs in the foreground from a
// temp prefix; nothing touches /etc/nginx or system paths.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { killChild, track } from "./cleanup.ts";
import { findBinary } from "./loadgen.ts";

export interface NginxProxy {
  url: string;
  stop(): Promise<void>;
}

export function findNginx(): string | undefined {
  return findBinary("nginx");
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(host: string, port: number, deadlineMs: number, exited: () => string | undefined): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const why = exited();
    if (why) throw new Error(why);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${host}:${port} within ${deadlineMs} ms`);
}

export async function startNginx(bin: string, origins: { address: string; port: number }[]): Promise<NginxProxy> {
  const prefix = await mkdtemp(path.join(tmpdir(), "edgelb-bench-nginx-"));
  await mkdir(path.join(prefix, "logs"));
  const port = await freePort();
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${path.join(prefix, t)};`)
    .join("\n");
  // As root, nginx would switch workers to "nobody"; keep them as the caller.
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  const conf = `${user}worker_processes 1;
daemon off;
master_process on;
pid ${path.join(prefix, "nginx.pid")};
error_log ${path.join(prefix, "logs/error.log")} warn;
events { worker_connections 4096; }
http {
  access_log off;
${temp}
  upstream origins {
${origins.map((o) => `    server ${o.address}:${o.port};`).join("\n")}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origins;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`;
  const confPath = path.join(prefix, "nginx.conf");
  await writeFile(confPath, conf);
  const child = spawn(bin, ["-p", prefix, "-c", confPath, "-e", path.join(prefix, "logs/error.log")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let exit: string | undefined;
  child.on("exit", (code, signal) => (exit = `nginx exited with ${signal ?? code}: ${stderr.trim().slice(-400)}`));
  const stop = track(
    "nginx",
    async () => {
      await killChild(child);
      await rm(prefix, { recursive: true, force: true });
    },
    () => {
      // SIGTERM: the master stops its workers (SIGKILL would orphan them).
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      rmSync(prefix, { recursive: true, force: true });
    },
  );
  try {
    await waitForPort("127.0.0.1", port, 10_000, () => exit);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, stop };
}
