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
}

/** syslog(3) severities by LogTape level, as sd-daemon prefixes and syslog use them. */
export const SEVERITY: Record<LogLevel, number> = {
  trace: 7,
  debug: 7,
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
};

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
  return (record) => {
    let text = format(record);
    if (setup.journald) {
      // journald takes the priority from each line's own prefix.
      const prefix = `<${SEVERITY[record.level]}>`;
      text = text.replace(/^(?=.)/gm, prefix);
    }
    try {
      Deno.stderr.writeSync(encoder.encode(text));
    } catch {
      // Nowhere left to report a failing log write; never crash over it.
    }
  };
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
    sinks: { stderr: stderrSink(setup) },
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
