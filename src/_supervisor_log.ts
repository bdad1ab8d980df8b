/**
 * The supervisor's own log records, in the daemon's formats. The supervisor
 * loads no logging library (LogTape through npm starts Node compatibility,
 * which a long-lived supervisor would keep), so its lines are made here;
 * tests/supervise_unit_test.ts pins them to LogTape's formatters as
 * `log.ts` configures them.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { LOG_LEVELS } from "./options.ts";
import type { SupervisorLogConfig } from "./stage.ts";
import { syslogSink } from "./syslog.ts";
import { type DroppedRecords, failureReason, records } from "./dropped.ts";

/** The levels the supervisor logs at. */
export type Level = "info" | "warning" | "error";
/** The parts of a LogTape record the supervisor's records have. */
export type Entry = { level: Level; message: [string]; timestamp: number };

const TEXT_LEVEL: Record<Level, string> = {
  info: "INF",
  warning: "WRN",
  error: "ERR",
};
const JSON_LEVEL: Record<Level, string> = {
  info: "INFO",
  warning: "WARN",
  error: "ERROR",
};
const encoder = new TextEncoder();

/**
 * One record as a line of the log file, category `NAME·supervisor`: what
 * LogTape's `getTextFormatter({ timestamp: "date-time-timezone", value:
 * "bare" })` or `getJsonLinesFormatter()` make of it.
 *
 * @param format Text or JSON lines.
 * @param name The daemon's name.
 * @param entry The record.
 * @returns The line, with its newline.
 *
 * @example A text line
 * ```ts
 * import { formatLine } from "./_supervisor_log.ts";
 * const entry = { level: "info" as const, message: ["Hello"] as [string], timestamp: 0 };
 * console.log(formatLine("text", "app", entry));
 * // 1970-01-01 00:00:00.000 +00:00 [INF] app·supervisor: Hello
 * ```
 */
export function formatLine(
  format: "text" | "json",
  name: string,
  { level, message: [message], timestamp }: Entry,
): string {
  const iso = new Date(timestamp).toISOString();
  const line = format === "json"
    ? JSON.stringify({
      "@timestamp": iso,
      level: JSON_LEVEL[level],
      message,
      logger: `${name}.supervisor`,
      properties: {},
    })
    : `${iso.replace("T", " ").replace("Z", " +00:00")} [${
      TEXT_LEVEL[level]
    }] ${name}·supervisor: ${message}`;
  return line + "\n";
}

/**
 * The supervisor's records, to the log file on descriptor 2 or to syslog.
 */
export class SupervisorLog {
  #libc: Libc;
  #config: SupervisorLogConfig;
  #name: string;
  #dropped: DroppedRecords;
  #write: (record: Entry) => void;

  constructor(
    libc: Libc,
    config: SupervisorLogConfig,
    name: string,
    dropped: DroppedRecords,
  ) {
    this.#libc = libc;
    this.#config = config;
    this.#name = name;
    this.#dropped = dropped;
    const toFile = (record: Entry) => this.#toFile(record);
    // The daemon's own syslog sink: it never waits for syslog, counts what
    // it drops, and hands back for the log file what syslog refused.
    this.#write = config.to === "file" ? toFile : syslogSink<Entry>(libc, {
      socket: config.syslogSocket,
      ident: name,
      facility: config.facility,
      dropped,
      fallback: toFile,
      notice: (text) =>
        toFile({ level: "warning", message: [text], timestamp: Date.now() }),
    });
  }

  info(message: string): void {
    this.#log("info", message);
  }
  warning(message: string): void {
    this.#log("warning", message);
  }
  error(message: string): void {
    this.#log("error", message);
  }

  #log(level: Level, message: string): void {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.#config.level)) {
      return;
    }
    this.#write({ level, message: [message], timestamp: Date.now() });
  }

  #toFile(entry: Entry): void {
    const line = formatLine(this.#config.format, this.#name, entry);
    try {
      this.#libc.write(2, encoder.encode(line));
    } catch (err) {
      // Counted for `status`: the file is where this would be said.
      this.#dropped.drop("log file", failureReason(err));
      return;
    }
    const ended = this.#dropped.delivered("log file");
    if (ended !== null) {
      this.#toFile({
        level: "warning",
        message: [
          `The log file takes records again: ${
            records(ended.count)
          } dropped (${ended.reason})`,
        ],
        timestamp: Date.now(),
      });
    }
  }
}
