/**
 * Logging: LogTape loggers writing synchronously to stderr. A detached daemon
 * has its log file on descriptors 1 and 2 (see `logfile.ts`), so the same
 * sink, `console.*` and any crash text from the runtime all land in it.
 * Nothing here blocks on or dies of a destination that stopped taking
 * records: such records are dropped and counted (`dropped.ts`).
 *
 * @module
 */
import {
  configureSync,
  getAnsiColorFormatter,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import type { Libc } from "../ffi/mod.ts";
import { SEVERITY, syslogSink } from "./syslog.ts";
import {
  type DroppedRecords,
  failureReason,
  guardConsole,
  records,
} from "./dropped.ts";

const encoder = new TextEncoder();

/** How the daemon's records are written. */
export interface LogSetup {
  /** The daemon name: the root logger category. */
  name: string;
  /** The lowest level written. */
  level: LogLevel;
  /** Text lines, or one JSON object per line (for log shippers). */
  format: "text" | "json";
  /** Prefix each line with its sd-daemon priority `<N>`: stderr is journald's. */
  journald: boolean;
  /** Colour the level: stderr is a terminal and `NO_COLOR` is unset. */
  color: boolean;
  /** Send records to syslog instead of stderr. */
  syslog?: { libc: Libc; socket: string; facility: number };
  /** Counts the records that could not be written, `console.*`'s included. */
  dropped: DroppedRecords;
}

/** The formatter for a setup. */
function formatterFor(setup: LogSetup): (record: LogRecord) => string {
  if (setup.format === "json") return getJsonLinesFormatter();
  const options = { timestamp: "date-time-timezone", value: "bare" } as const;
  return setup.color
    ? getAnsiColorFormatter(options)
    : getTextFormatter(options);
}

/** One warning of the logging's own, as a record. */
function noticeRecord(setup: LogSetup, text: string): LogRecord {
  return {
    category: [setup.name],
    level: "warning",
    message: [text],
    rawMessage: text,
    properties: {},
    timestamp: Date.now(),
  };
}

/**
 * The sink a setup asks for. Writes that fail are counted and dropped, never
 * thrown, and so are those of `console.*`, which writes to the same file.
 */
function sinkFor(setup: LogSetup): (record: LogRecord) => void {
  const format = formatterFor(setup);
  const dropped = setup.dropped;
  const syslog = setup.syslog;
  // Each destination reports the other's failures: the closures below refer
  // to one another, and run only once both exist.
  const toSyslog = syslog === undefined ? undefined : syslogSink(syslog.libc, {
    socket: syslog.socket,
    ident: setup.name,
    facility: syslog.facility,
    dropped,
    fallback: (record: LogRecord) => toFile(record),
    notice: (text) => toFile(noticeRecord(setup, text)),
  });
  const fileFailed = (err: unknown) => {
    const reason = failureReason(err);
    // Said once, where it can still be read: syslog when records go there.
    if (dropped.drop("log file", reason) && !dropped.failing("syslog")) {
      toSyslog?.(noticeRecord(
        setup,
        `Cannot write to the log file (${reason}): dropping what goes there; status shows the count`,
      ));
    }
  };
  const fileDelivered = () => {
    const ended = dropped.delivered("log file");
    if (ended === null) return;
    const text = `The log file takes records again: ${
      records(ended.count)
    } dropped (${ended.reason})`;
    toFile(noticeRecord(setup, text));
    toSyslog?.(noticeRecord(setup, text));
  };
  const toFile = (record: LogRecord) => {
    try {
      writeStderr(setup, format(record), record.level);
    } catch (err) {
      fileFailed(err);
      return;
    }
    fileDelivered();
  };
  guardConsole({ failed: fileFailed, delivered: fileDelivered });
  return toSyslog ?? toFile;
}

/** Write formatted text to descriptor 2, with journald prefixes when asked. */
function writeStderr(
  setup: LogSetup,
  formatted: string,
  level: LogLevel,
): void {
  // journald takes the priority from each line's own prefix.
  const text = setup.journald
    ? formatted.replace(/^(?=.)/gm, `<${SEVERITY[level]}>`)
    : formatted;
  let data = encoder.encode(text);
  while (data.length > 0) data = data.subarray(Deno.stderr.writeSync(data));
}

/**
 * Configure LogTape for a daemon and return its logger.
 *
 * @param setup Name, level and how records are written.
 * @returns The daemon's logger.
 */
export function setupLogging(setup: LogSetup): Logger {
  resetSync();
  configureSync({
    sinks: { stderr: sinkFor(setup) },
    loggers: [
      { category: [setup.name], lowestLevel: setup.level, sinks: ["stderr"] },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["stderr"],
      },
    ],
  });
  return getLogger([setup.name]);
}
