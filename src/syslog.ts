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
import { type Timer, unreferenced } from "./timer.ts";

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
function messageText(record: SyslogRecord): string {
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

/** What {@linkcode syslogSink} sends where, and whom it tells. */
export interface SyslogSinkOptions<R extends SyslogRecord> {
  /** The syslog socket, usually `/dev/log`. */
  socket: string;
  /** The tag of each line: the daemon's name. */
  ident: string;
  /** The syslog(3) facility number. */
  facility: number;
  /** Where what overflows the backlog is counted. */
  dropped: DroppedRecords;
  /** Write a record to the log file instead. */
  fallback: (record: R) => void;
  /** Write one warning of the sink's own to the log file. */
  notice: (text: string) => void;
}

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
 * @returns The sink: give it each record.
 */
export function syslogSink<R extends SyslogRecord>(
  libc: Libc,
  opts: SyslogSinkOptions<R>,
): (record: R) => void {
  const sender = new SyslogSender(libc, opts);
  return (record) => sender.send(record);
}

/** One sink's state: the backlog, its retry timer, and whether records go to the file. */
class SyslogSender<R extends SyslogRecord> {
  readonly #libc: Libc;
  readonly #opts: SyslogSinkOptions<R>;
  readonly #header: { ident: string; pid: number; facility: number };
  readonly #backlog: { record: R; data: Uint8Array }[] = [];
  #backlogBytes = 0;
  #retryMs = RETRY_FIRST_MS;
  #timer: Timer | undefined;
  #fellBack = false;

  constructor(libc: Libc, opts: SyslogSinkOptions<R>) {
    this.#libc = libc;
    this.#opts = opts;
    // Processes here are never forked, so the pid is fixed for the sink's life.
    this.#header = {
      ident: opts.ident,
      pid: libc.getpid(),
      facility: opts.facility,
    };
    globalThis.addEventListener("unload", () => this.#drainAtExit());
  }

  /** Send a record, behind those already waiting; hold it if syslog's queue is full. */
  send(record: R): void {
    const data = this.#encode(record);
    if (this.#backlog.length === 0 || this.#flush()) {
      const sent = this.#sendDatagram(data);
      if (sent === "sent") return;
      if (sent !== "full") return this.#fallBack(record, sent);
    }
    if (this.#backlogBytes + data.length > BACKLOG_BYTES) {
      return this.#overflow();
    }
    this.#backlog.push({ record, data });
    this.#backlogBytes += data.length;
    this.#schedule();
  }

  #encode(record: SyslogRecord): Uint8Array {
    return encoder.encode(syslogLine(record, this.#header));
  }

  /** Send one datagram: `"sent"`, `"full"` (EAGAIN), or why syslog refused it. */
  #sendDatagram(data: Uint8Array): "sent" | "full" | Error {
    try {
      this.#libc.sendDatagram(this.#opts.socket, data, { nonBlocking: true });
    } catch (err) {
      if (err instanceof SysError && err.code === "EAGAIN") return "full";
      return err as Error;
    }
    if (this.#fellBack) {
      this.#fellBack = false;
      this.#opts.notice(`syslog at ${this.#opts.socket} takes records again`);
    }
    return "sent";
  }

  /** Nobody there: keep running and lose nothing, the log file takes it. */
  #fallBack(record: R, err: Error): void {
    if (!this.#fellBack) {
      this.#opts.notice(
        `syslog is unavailable at ${this.#opts.socket} (${err.message}): logging to stderr`,
      );
    }
    this.#fellBack = true;
    this.#opts.fallback(record);
  }

  /** The backlog is full: drop the record, and say so once per episode. */
  #overflow(): void {
    if (this.#opts.dropped.drop("syslog", "its queue stays full")) {
      this.#opts.notice(
        `syslog at ${this.#opts.socket} is not taking records (its queue stays full): dropping them; status shows the count`,
      );
    }
  }

  /** Send what waits, in order, until the queue is full again; `true` once all went. */
  #flush(): boolean {
    let reached = false;
    while (this.#backlog.length > 0) {
      const head = this.#backlog[0];
      const sent = this.#sendDatagram(head.data);
      if (sent === "full") return false;
      if (sent === "sent") reached = true;
      else this.#fallBack(head.record, sent);
      this.#backlog.shift();
      this.#backlogBytes -= head.data.length;
    }
    if (reached) this.#drained();
    return true;
  }

  /** Syslog took records again: if some were dropped, say how many, there and with `notice`. */
  #drained(): void {
    const ended = this.#opts.dropped.delivered("syslog");
    if (ended === null) return;
    const text = `syslog at ${this.#opts.socket} takes records again: ${
      records(ended.count)
    } dropped (${ended.reason})`;
    this.#sendDatagram(
      this.#encode({
        level: "warning",
        message: [text],
        timestamp: Date.now(),
      }),
    );
    this.#opts.notice(text);
  }

  /** Retry the backlog later, sooner while it moves, backing off while it does not. */
  #schedule(): void {
    if (this.#timer !== undefined) return;
    // What still waits at exit is lost: it never keeps the process alive.
    this.#timer = unreferenced(this.#retryMs, () => {
      this.#timer = undefined;
      const waiting = this.#backlog.length;
      if (this.#flush()) {
        this.#retryMs = RETRY_FIRST_MS;
        return;
      }
      this.#retryMs = this.#backlog.length < waiting
        ? RETRY_FIRST_MS
        : Math.min(this.#retryMs * 2, RETRY_MAX_MS);
      this.#schedule();
    });
  }

  /**
   * The last records (why it stopped) matter most: give them a bounded
   * moment at exit, as the event loop that would retry is gone.
   */
  #drainAtExit(): void {
    const deadline = performance.now() + EXIT_WAIT_MS;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (
      this.#backlog.length > 0 && !this.#flush() &&
      performance.now() < deadline
    ) {
      Atomics.wait(nap, 0, 0, 2);
    }
  }
}
