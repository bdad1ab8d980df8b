/**
 * Logging: LogTape loggers writing synchronously to stderr. A detached daemon
 * has its log file on descriptors 1 and 2 (see `logfile.ts`), so the same
 * sink, `console.*` and any crash text from the runtime all land in it.
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
}

/** The formatter for a setup. */
function formatterFor(setup: LogSetup): (record: LogRecord) => string {
  if (setup.format === "json") return getJsonLinesFormatter();
  const options = { timestamp: "date-time-timezone", value: "bare" } as const;
  return setup.color
    ? getAnsiColorFormatter(options)
    : getTextFormatter(options);
}

/** A sink that writes each record to descriptor 2, synchronously, whole lines at a time. */
function stderrSink(setup: LogSetup): (record: LogRecord) => void {
  const format = formatterFor(setup);
  return (record) => writeStderr(setup, format(record), record.level);
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
  try {
    Deno.stderr.writeSync(encoder.encode(text));
  } catch {
    // Nowhere left to report a failing log write; never crash over it.
  }
}

/** The sink a setup asks for. */
function sinkFor(setup: LogSetup): (record: LogRecord) => void {
  const toStderr = stderrSink(setup);
  if (setup.syslog === undefined) return toStderr;
  return syslogSink(setup.syslog.libc, {
    socket: setup.syslog.socket,
    ident: setup.name,
    facility: setup.syslog.facility,
    fallback: (record, warning) => {
      if (warning !== undefined) writeStderr(setup, `${warning}\n`, "warning");
      toStderr(record);
    },
  });
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
