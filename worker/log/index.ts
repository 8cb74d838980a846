// One JSON line per notable event, written with console.log so `wrangler tail`
// and the Miniflare/workerd stdout show it unchanged.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  (level: LogLevel, event: string, fields?: LogFields): void;
}

export function createLogger(write: (line: string) => void = (line) => console.log(line), now: () => number = Date.now): Logger {
  return (level, event, fields = {}) => {
    write(JSON.stringify({ time: new Date(now()).toISOString(), level, event, ...fields }));
  };
}

/** A logger that keeps entries in memory, for tests. */
export function memoryLogger(): Logger & { entries: (LogFields & { level: LogLevel; event: string })[] } {
  const entries: (LogFields & { level: LogLevel; event: string })[] = [];
  const log = ((level: LogLevel, event: string, fields: LogFields = {}) => {
    entries.push({ level, event, ...fields });
  }) as Logger & { entries: typeof entries };
  log.entries = entries;
  return log;
}
