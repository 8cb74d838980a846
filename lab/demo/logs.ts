// Readable terminal output for `npm start`: the agent's pino lines and the
// worker's JSON lines become one stream of short, aligned, labelled lines
//
//   09:12:03.120 agent  INFO  pushed generation 4 to the edge: …
//   09:12:03.125 worker INFO  push.accepted cluster=demo generation=4 …
//
// Colours only when the output is a terminal (and NO_COLOR is unset).
import { pino, type Logger } from "pino";

export interface Output {
  /** Writes one line (a newline is added). */
  line(text: string): void;
  color: boolean;
}

export function terminalOutput(stream: NodeJS.WriteStream = process.stdout): Output {
  const color = Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.FORCE_COLOR !== "0";
  return { line: (text) => void stream.write(`${text}\n`), color };
}

const CODES = { dim: 2, bold: 1, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, gray: 90 } as const;
export type Style = keyof typeof CODES;

export function paint(out: Pick<Output, "color">, style: Style, text: string): string {
  return out.color ? `\u001b[${CODES[style]}m${text}\u001b[0m` : text;
}

const LEVEL_STYLE: Record<string, Style> = { debug: "gray", info: "green", warn: "yellow", error: "red", fatal: "red" };

function clock(t: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}.${p(t.getMilliseconds(), 3)}`;
}

type Source = "agent" | "gate" | "worker" | "demo";
const SOURCE_STYLE: Record<Source, Style> = { agent: "cyan", gate: "yellow", worker: "magenta", demo: "blue" };

function prefix(out: Output, source: Source, level: string, time: Date): string {
  const lvl = level.toUpperCase().padEnd(5);
  const src = source.padEnd(6);
  return `${paint(out, "gray", clock(time))} ${paint(out, SOURCE_STYLE[source], src)} ${paint(out, LEVEL_STYLE[level] ?? "gray", lvl)}`;
}

/**
 * The agent's logger: its messages are whole sentences (the same facts are in
 * the JSON fields for log pipelines), so a line here is time, source, level
 * and the message. Its child `{ part: "gate" }` (the lab's node gates) speaks
 * as `gate`; a child bound to `{ labCluster }` (one of several clusters'
 * agents) starts its messages with the cluster's name, as the demo's lines do.
 */
export function agentLogger(out: Output, level = "info"): Logger {
  const destination = {
    write(line: string) {
      let entry: { level?: number; time?: string; msg?: string; part?: unknown; labCluster?: unknown };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        out.line(line.replace(/\n+$/, ""));
        return;
      }
      const lvl = pino.levels.labels[entry.level ?? 30] ?? "info";
      const source = entry.part === "gate" ? "gate" : "agent";
      const cluster = typeof entry.labCluster === "string" ? `${entry.labCluster}: ` : "";
      out.line(`${prefix(out, source, lvl, entry.time ? new Date(entry.time) : new Date())} ${cluster}${entry.msg ?? ""}`);
    },
  };
  return pino({ level, base: { component: "edgelb-sync-agent" }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** Fields of a worker log line worth a glance, in this order; others follow. */
const FIRST = ["cluster", "generation", "host", "method", "path", "status", "node", "origin", "ms", "error", "reason"];
const SKIP = new Set(["time", "level", "event", "requestId", "transport"]);

function fieldText(v: unknown): string {
  if (typeof v === "string") return /\s/.test(v) || v === "" ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/**
 * Worker events that are expected in a fresh lab, said as such: a newcomer's
 * first screen should not open on a warning. (In production they keep their level.)
 */
const EXPECTED_IN_LAB: Record<string, { level: string; note: string }> = {
  "config.missing": { level: "info", note: "nothing pushed yet: the agent's first push follows" },
};

/** One worker (workerd stdout) line, readable: `event key=value …`. Non-JSON lines pass through. */
export function formatWorkerLine(out: Output, raw: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(raw) as Record<string, unknown>;
    if (typeof entry !== "object" || entry === null || typeof entry.event !== "string") throw new Error("not a log entry");
  } catch {
    return `${prefix(out, "worker", "info", new Date())} ${raw}`;
  }
  const expected = EXPECTED_IN_LAB[entry.event as string];
  const level = expected?.level ?? (typeof entry.level === "string" ? entry.level : "info");
  const time = typeof entry.time === "string" ? new Date(entry.time) : new Date();
  const keys = [...FIRST.filter((k) => k in entry), ...Object.keys(entry).filter((k) => !FIRST.includes(k) && !SKIP.has(k))];
  const fields = keys.map((k) => `${paint(out, "gray", `${k}=`)}${fieldText(entry[k])}`).join(" ");
  const note = expected ? ` ${paint(out, "gray", `(${expected.note})`)}` : "";
  return `${prefix(out, "worker", level, time)} ${entry.event as string}${fields ? ` ${fields}` : ""}${note}`;
}

/** Lines from the demo itself (what it set up, what the simulator did). */
export function demoLog(out: Output, level: "info" | "warn" | "error", text: string): void {
  out.line(`${prefix(out, "demo", level, new Date())} ${text}`);
}
