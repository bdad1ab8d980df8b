/**
 * Logging: LogTape loggers writing synchronously to stderr. A detached daemon
 * has its log file on descriptors 1 and 2 (see `logfile.ts`), so the same
 * sink, `console.*` and any crash text from the runtime all land in it.
 *
 * @module
 */
import {
  configureSync,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";

const encoder = new TextEncoder();

const formatter = getTextFormatter({
  timestamp: "date-time-timezone",
  value: "bare",
});

/** A sink that writes each record as one line to descriptor 2, synchronously. */
function stderrSink(record: LogRecord): void {
  try {
    Deno.stderr.writeSync(encoder.encode(formatter(record)));
  } catch {
    // Nowhere left to report a failing log write; never crash over it.
  }
}

/**
 * Configure LogTape for a daemon and return its logger.
 *
 * @param name The daemon name: the root logger category.
 * @param level The lowest level written.
 * @returns The daemon's logger.
 */
export function setupLogging(name: string, level: LogLevel): Logger {
  resetSync();
  configureSync({
    sinks: { stderr: stderrSink },
    loggers: [
      { category: [name], lowestLevel: level, sinks: ["stderr"] },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["stderr"],
      },
    ],
  });
  return getLogger([name]);
}
