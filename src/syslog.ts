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

/** What waits while syslog's queue is full: a burst gets through, a deaf syslog costs this much memory at most. */
const BACKLOG_BYTES = 256 * 1024;
/** The first retry of a waiting backlog, doubled while nothing goes out. */
const RETRY_FIRST_MS = 5;
const RETRY_MAX_MS = 1000;
/** How long an exiting process gives its backlog to go out. */
const EXIT_WAIT_MS = 500;

/**
 * The sink. Sends never wait: a syslog that stops reading must not stall
 * the daemon. Records its full queue refuses wait in a bounded backlog, sent
 * in order as soon as it takes them again (with each new record, and from a
 * timer that backs off to once a second). What overflows the backlog is
 * dropped and counted, not written to the log file, which is not sized for
 * what was meant for syslog: the first drop of an episode is reported with
 * `notice`, and once the backlog has drained, how many were lost, in syslog
 * and with `notice`. At exit the backlog gets half a second to go out. When
 * the socket is missing or refuses, records go to `fallback` instead, and
 * that too is reported once per episode.
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
  const backlog: { record: R; data: Uint8Array }[] = [];
  let backlogBytes = 0;
  let retryMs = RETRY_FIRST_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Processes here are never forked, so the pid is fixed for the sink's life.
  const header = {
    ident: opts.ident,
    pid: libc.getpid(),
    facility: opts.facility,
  };
  const encode = (record: SyslogRecord) =>
    encoder.encode(syslogLine(record, header));

  /** Send one datagram: `"sent"`, `"full"` (EAGAIN), or why syslog refused it. */
  const send = (data: Uint8Array): "sent" | "full" | Error => {
    try {
      libc.sendDatagram(opts.socket, data, { nonBlocking: true });
    } catch (err) {
      if (err instanceof SysError && err.code === "EAGAIN") return "full";
      return err as Error;
    }
    if (fellBack) {
      fellBack = false;
      opts.notice(`syslog at ${opts.socket} takes records again`);
    }
    return "sent";
  };

  /** Nobody there: keep running and lose nothing, the log file takes it. */
  const fallBack = (record: R, err: Error) => {
    if (!fellBack) {
      opts.notice(
        `syslog is unavailable at ${opts.socket} (${err.message}): logging to stderr`,
      );
    }
    fellBack = true;
    opts.fallback(record);
  };

  /** Send what waits, in order, until the queue is full again; `true` once all went. */
  const flush = (): boolean => {
    let reached = false;
    while (backlog.length > 0) {
      const head = backlog[0];
      const sent = send(head.data);
      if (sent === "full") return false;
      if (sent === "sent") reached = true;
      else fallBack(head.record, sent);
      backlog.shift();
      backlogBytes -= head.data.length;
    }
    const ended = reached ? opts.dropped.delivered("syslog") : null;
    if (ended !== null) {
      const text = `syslog at ${opts.socket} takes records again: ${
        records(ended.count)
      } dropped (${ended.reason})`;
      send(
        encode({ level: "warning", message: [text], timestamp: Date.now() }),
      );
      opts.notice(text);
    }
    return true;
  };

  const retryLater = () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      const waiting = backlog.length;
      if (flush()) {
        retryMs = RETRY_FIRST_MS;
        return;
      }
      retryMs = backlog.length < waiting
        ? RETRY_FIRST_MS
        : Math.min(retryMs * 2, RETRY_MAX_MS);
      retryLater();
    }, retryMs);
    // What still waits at exit is lost: it never keeps the process alive.
    Deno.unrefTimer(timer);
  };

  // The last records (why it stopped) matter most: give them a bounded
  // moment at exit, as the event loop that would retry is gone.
  globalThis.addEventListener("unload", () => {
    const deadline = performance.now() + EXIT_WAIT_MS;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (backlog.length > 0 && !flush() && performance.now() < deadline) {
      Atomics.wait(nap, 0, 0, 2);
    }
  });

  return (record) => {
    const data = encode(record);
    if (backlog.length === 0 || flush()) {
      const sent = send(data);
      if (sent === "sent") return;
      if (sent !== "full") return fallBack(record, sent);
    }
    if (backlogBytes + data.length > BACKLOG_BYTES) {
      if (opts.dropped.drop("syslog", "its queue stays full")) {
        opts.notice(
          `syslog at ${opts.socket} is not taking records (its queue stays full): dropping them; status shows the count`,
        );
      }
      return;
    }
    backlog.push({ record, data });
    backlogBytes += data.length;
    retryLater();
  };
}
