/**
 * A LogTape sink for the local syslog daemon: RFC 3164 datagrams to
 * `/dev/log` (or another socket) through libc `socket`/`sendto`, with the
 * daemon's name as tag, its pid, the facility, and a severity mapped from the
 * level. Sends never block: the daemon keeps running whatever syslog does.
 *
 * @module
 */
import type { LogLevel, LogRecord } from "@logtape/logtape";
import { type Libc, SysError } from "../ffi/mod.ts";
import { type DroppedRecords, records } from "./dropped.ts";

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
 * The sink. Sends never wait: a syslog that stops reading must not stall
 * the daemon. A record it does not take in time is dropped and counted,
 * not written to the log file, which is not sized for what was meant for
 * syslog; the first one of an episode is reported with `notice`, and the
 * end of the episode in syslog and with `notice`. When the socket is
 * missing or refuses, records go to `fallback` instead, and that too is
 * reported once per episode.
 *
 * @param libc The OS interface.
 * @param opts Socket path, tag, facility, the drop counter, and where the
 * records syslog refused and the sink's own notices go.
 */
export function syslogSink<R extends SyslogRecord>(
  libc: Libc,
  opts: {
    socket: string;
    ident: string;
    facility: number;
    dropped: DroppedRecords;
    /** Write a record to the log file instead. */
    fallback: (record: R) => void;
    /** Write one warning of the sink's own to the log file. */
    notice: (text: string) => void;
  },
): (record: R) => void {
  let fellBack = false;
  // Processes here are never forked, so the pid is fixed for the sink's life.
  const header = {
    ident: opts.ident,
    pid: libc.getpid(),
    facility: opts.facility,
  };
  const send = (record: SyslogRecord) =>
    libc.sendDatagram(
      opts.socket,
      encoder.encode(syslogLine(record, header)),
      { nonBlocking: true },
    );
  return (record) => {
    try {
      send(record);
    } catch (err) {
      if (err instanceof SysError && err.code === "EAGAIN") {
        if (opts.dropped.drop("syslog", err.reason)) {
          opts.notice(
            `syslog at ${opts.socket} is not taking records (${err.reason}): dropping them; status shows the count`,
          );
        }
        return;
      }
      // Nobody there: keep running and lose nothing, the log file takes it.
      if (!fellBack) {
        opts.notice(
          `syslog is unavailable at ${opts.socket} (${
            (err as Error).message
          }): logging to stderr`,
        );
      }
      fellBack = true;
      opts.fallback(record);
      return;
    }
    if (fellBack) {
      fellBack = false;
      opts.notice(`syslog at ${opts.socket} takes records again`);
    }
    const ended = opts.dropped.delivered("syslog");
    if (ended !== null) {
      const text = `syslog at ${opts.socket} takes records again: ${
        records(ended.count)
      } dropped (${ended.reason})`;
      try {
        send({ level: "warning", message: [text], timestamp: Date.now() });
      } catch {
        // Full again already: the file has it.
      }
      opts.notice(text);
    }
  };
}
