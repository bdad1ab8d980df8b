/**
 * A LogTape sink for the local syslog daemon: RFC 3164 datagrams to
 * `/dev/log` (or another socket) through libc `socket`/`sendto`, with the
 * daemon's name as tag, its pid, the facility, and a severity mapped from the
 * level. When the socket is missing or refuses, the daemon keeps running:
 * it says so once and writes the records to stderr instead.
 *
 * @module
 */
import type { LogLevel, LogRecord } from "@logtape/logtape";
import type { Libc } from "../ffi/mod.ts";

/** syslog(3) severities by LogTape level, as sd-daemon prefixes and syslog use them. */
export const SEVERITY: Record<LogLevel, number> = {
  trace: 7,
  debug: 7,
  info: 6,
  warning: 4,
  error: 3,
  fatal: 2,
};

/** syslog(3) facilities by name. */
export const FACILITIES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

const MONTHS = [
  "Jan",
  "Feb",
  "Mar",
  "Apr",
  "May",
  "Jun",
  "Jul",
  "Aug",
  "Sep",
  "Oct",
  "Nov",
  "Dec",
];
const encoder = new TextEncoder();

/** What a syslog line is made of: a LogTape record, or the supervisor's own. */
export type SyslogRecord = Pick<LogRecord, "level" | "message" | "timestamp">;

/** A record's message with its values filled in. */
export function messageText(record: SyslogRecord): string {
  return record.message
    .map((part, i) =>
      i % 2 === 0
        ? String(part)
        : typeof part === "string"
        ? part
        : Deno.inspect(part)
    )
    .join("");
}

/**
 * One RFC 3164 line: `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE` (the local
 * daemon adds the host name).
 *
 * @example
 * ```ts
 * import { syslogLine } from "./syslog.ts";
 * const record = { level: "warning", message: ["Disk at ", 91, "%"], timestamp: Date.UTC(2026, 10, 4, 9, 5, 7) } as const;
 * const line = syslogLine(record, { ident: "myd", pid: 42, facility: 3 });
 * console.log(line.startsWith("<28>Nov ")); // true
 * ```
 */
export function syslogLine(
  record: SyslogRecord,
  opts: { ident: string; pid: number; facility: number },
): string {
  const d = new Date(record.timestamp);
  const pad = (n: number) => String(n).padStart(2, "0");
  const stamp = `${MONTHS[d.getMonth()]} ${
    String(d.getDate()).padStart(2, " ")
  } ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const pri = opts.facility * 8 + SEVERITY[record.level];
  return `<${pri}>${stamp} ${opts.ident}[${opts.pid}]: ${messageText(record)}`;
}

/**
 * The sink.
 *
 * @param libc The OS interface.
 * @param opts Socket path, tag, facility, and what to do with a record syslog did not take.
 */
export function syslogSink<R extends SyslogRecord>(
  libc: Libc,
  opts: {
    socket: string;
    ident: string;
    facility: number;
    fallback: (record: R, warning?: string) => void;
  },
): (record: R) => void {
  let warned = false;
  // Processes here are never forked, so the pid is fixed for the sink's life.
  const header = {
    ident: opts.ident,
    pid: libc.getpid(),
    facility: opts.facility,
  };
  return (record) => {
    const line = syslogLine(record, header);
    try {
      libc.sendDatagram(opts.socket, encoder.encode(line));
    } catch (err) {
      // Keep running and lose nothing: this record goes to stderr, and the
      // first failure says why.
      const warning = warned
        ? undefined
        : `syslog is unavailable at ${opts.socket} (${
          (err as Error).message
        }): logging to stderr`;
      warned = true;
      opts.fallback(record, warning);
    }
  };
}
