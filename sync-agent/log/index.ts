// Logs are what a user reads with `kubectl logs`: one JSON object per line
// by default (for log pipelines), human-readable lines with pino-pretty on a
// terminal or with --log-format pretty. Every message reads as a sentence;
// the same facts are in structured fields.
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type LogFormat = "json" | "pretty";

export interface LogOptions {
  format: LogFormat;
  level: string;
  /** Where lines go (default stdout). */
  destination?: NodeJS.WritableStream;
  /** The `component` field of every line (default edgelb-sync-agent; the node gate says edgelb-node-gate). */
  component?: string;
}

export function createLogger(opts: LogOptions): Logger {
  const base = {
    level: opts.level,
    base: { component: opts.component ?? "edgelb-sync-agent" },
    // Belt and braces: secrets never reach a log line, whatever is logged.
    redact: { paths: ["pushToken", "apiToken", "*.pushToken", "*.apiToken", "authorization", "*.authorization"], censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.format === "pretty") {
    const stream = pretty({
      colorize: Boolean((opts.destination as { isTTY?: boolean } | undefined)?.isTTY ?? process.stdout.isTTY),
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,component",
      hideObject: true, // messages are full sentences; the fields are for JSON pipelines
      sync: true,
      destination: (opts.destination ?? process.stdout) as never,
    });
    return pino(base, stream);
  }
  // "level":"warn" rather than 40: readable in `kubectl logs` and by log pipelines.
  return pino({ ...base, formatters: { level: (label) => ({ level: label }) } }, (opts.destination ?? pino.destination({ dest: 1, sync: true })) as never);
}

/** The default format: pretty on a terminal, JSON otherwise. */
export function defaultLogFormat(): LogFormat {
  return process.stdout.isTTY ? "pretty" : "json";
}
