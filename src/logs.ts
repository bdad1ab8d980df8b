/**
 * `logs`: the daemon's own log, wherever it goes — its log file (the last
 * lines, then new ones across rotation, like `tail -n N -F`), or syslog
 * through `journalctl` where journald holds it.
 *
 * Run as root on a file the daemon's user owns, every open walks from `/`
 * without following a symbolic link and checks what it opened (a regular
 * file with one link, owned by root, the caller or the daemon's user), on
 * every reopen too: a daemon's user who swaps a link in at rotation gets a
 * refusal, never another file's content. On a terminal, control characters
 * are shown as escapes, so the log cannot steer it.
 *
 * @module
 */
import { type Libc, SysError } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import { collectExit } from "./process.ts";
import type { CoreOptions } from "./options.ts";
import { openChecked, type OpenedFile, withUserHint } from "./safe_open.ts";
import { visible } from "./text.ts";
import { sleep } from "./timer.ts";

/** The options that say where a daemon logs. */
export type LogOptions = Pick<
  CoreOptions,
  "logTo" | "logFile" | "syslog" | "syslogSocket"
>;

/** Where a daemon's log can be read. */
export type LogSource =
  /** A file; `note` says why it is not the whole story. */
  | { kind: "file"; path: string; note?: string }
  /** journald, by the syslog identifier (the daemon's name). */
  | { kind: "journal"; identifier: string }
  /** Nowhere `logs` can read: `why` says where it goes instead. */
  | { kind: "none"; why: string };

/** The socket journald listens on for native clients: it runs when it is there. */
const JOURNAL_SOCKET = "/run/systemd/journal/socket";

/**
 * Where the log of a daemon started with `core` is. Today `core` comes from
 * the command line of `logs` itself, resolved like `start`'s; a daemon's
 * launch record, once `start` writes one, can be passed in its place.
 *
 * @param core Where the daemon logs (resolved options).
 * @param name The daemon's name: its syslog identifier.
 * @param journald Whether journald runs (default: its socket exists).
 * @returns The log file, the journal, or why there is nothing to read.
 *
 * @example
 * ```ts
 * import { logSource } from "./logs.ts";
 * const core = {
 *   logTo: "syslog" as const,
 *   logFile: "/var/log/myd.log",
 *   syslog: "daemon",
 *   syslogSocket: "/dev/log",
 * };
 * console.log(logSource(core, "myd", () => true)); // { kind: "journal", identifier: "myd" }
 * console.log(logSource(core, "myd", () => false).kind); // file
 * ```
 */
export function logSource(
  core: LogOptions,
  name: string,
  journald: () => boolean = journaldRuns,
): LogSource {
  if (core.logTo === "stderr") {
    return {
      kind: "none",
      why:
        "The daemon logs to stderr (it runs in the foreground): read it where its service manager keeps it",
    };
  }
  if (core.logFile === "/dev/null" && core.logTo === "file") {
    return { kind: "none", why: "The daemon logs to /dev/null: nothing kept" };
  }
  if (core.logTo === "file") return { kind: "file", path: core.logFile };
  if (journald()) return { kind: "journal", identifier: name };
  if (core.logFile === "/dev/null") {
    return {
      kind: "none",
      why:
        `The daemon logs to syslog (${core.syslog} at ${core.syslogSocket}), not journald: read it where that syslog daemon writes`,
    };
  }
  return {
    kind: "file",
    path: core.logFile,
    // Only stdout and stderr: start points them at the log file whatever
    // the records' destination.
    note: `The daemon's records go to syslog (${core.syslog} at ${
      JSON.stringify(core.syslogSocket)
    }), not journald: showing ${
      JSON.stringify(core.logFile)
    }, which holds its stdout and stderr, not those records`,
  };
}

/** Whether journald runs here. */
function journaldRuns(): boolean {
  try {
    return Deno.lstatSync(JOURNAL_SOCKET).isSocket === true;
  } catch {
    return false;
  }
}

/** What to show, and how. */
export interface LogsRequest {
  /** The last lines to show (0: none). */
  lines: number;
  /** Keep showing new lines until interrupted. */
  follow: boolean;
  /** Uids that may own the log file (and, in the journal, send records). */
  owners: readonly number[];
  /** A one-line note for stderr. */
  note: (text: string) => void;
  /** Ends following. */
  signal?: AbortSignal;
  /** Where the lines go (default: stdout). */
  out?: Output;
  /** Milliseconds between looks at a followed file (default: 250, 50 while it grows). */
  pollMs?: number;
}

/** Where the lines go: raw bytes, or made visible for a terminal. */
export interface Output {
  /** Write all of `bytes`; `false` once the reader is gone (a closed pipe). */
  write(bytes: Uint8Array): Promise<boolean>;
  /** Write what is held back (half a character), at the end. */
  end(): Promise<void>;
  /** Whether nobody reads any more (`logs -f | head -1`), though nothing was written. */
  gone(): boolean;
}

/**
 * Show the log: the last lines, then, when following, new ones.
 *
 * @param libc The OS interface.
 * @param source Where the log is ({@linkcode logSource}).
 * @param request How many lines, whether to follow, whom to trust.
 * @returns The exit code: 0, or 1 when there was nothing to read.
 * @throws {DaemonError} A refused or unreadable log file, in one line.
 */
export async function showLogs(
  libc: Libc,
  source: LogSource,
  request: LogsRequest,
): Promise<number> {
  if (source.kind === "none") throw new DaemonError(source.why, Exit.FAILURE);
  if (source.kind === "journal") {
    return await journal(libc, source.identifier, request);
  }
  if (source.note !== undefined) request.note(source.note);
  const out = request.out ?? stdoutOutput(libc, request.signal);
  const file = new LogFile(libc, source.path, request.owners);
  try {
    return request.follow
      ? await follow(file, out, request)
      : await showTail(file, out, request);
  } finally {
    await out.end();
  }
}

/** Bytes read at a time, backwards for the last lines and forwards for the rest. */
const CHUNK = 64 * 1024;
/**
 * How far back the last lines are looked for, per line and in all: a file
 * of holes or of one endless line is not read (and shown) whole to find
 * its line breaks.
 */
const LOOKBACK_PER_LINE = 1024 * 1024;
const LOOKBACK_MAX = 1024 * 1024 * 1024;
const NL = 0x0a;

/** The log file, opened the safe way each time. */
class LogFile {
  readonly #libc: Libc;
  readonly path: string;
  readonly #owners: readonly number[];

  constructor(libc: Libc, path: string, owners: readonly number[]) {
    this.#libc = libc;
    this.path = path;
    this.#owners = owners;
  }

  /**
   * Open it (walk from `/`, no symlink, no blocking, a regular file with one
   * link owned by a trusted uid); `null` when it, or a directory above it,
   * does not exist.
   */
  open(): OpenedFile | null {
    try {
      const opened = openChecked(
        this.#libc,
        this.path,
        { what: "log file", owners: this.#owners, trustDirs: false },
        {},
        { device: "1:3" },
      );
      if (opened.kind === "device") {
        this.#libc.close(opened.fd);
        throw new DaemonError(
          `The log file ${
            JSON.stringify(this.path)
          } is /dev/null: nothing kept`,
          Exit.FAILURE,
        );
      }
      return opened;
    } catch (err) {
      if (err instanceof DaemonError && isMissing(err.cause)) return null;
      throw withUserHint(this.#libc, this.path, this.#owners, err);
    }
  }

  /** The size of the file open on `fd`. */
  size(fd: number): number {
    return this.#libc.stat(fd).size;
  }

  read(fd: number, offset: number): Uint8Array {
    return this.#libc.readAt(fd, offset, CHUNK);
  }

  close(fd: number): void {
    this.#libc.close(fd);
  }
}

function isMissing(err: unknown): boolean {
  return err instanceof SysError && err.code === "ENOENT";
}

/** Whether an open was refused for a lease another process holds on the file. */
function isLeased(err: unknown): boolean {
  return err instanceof DaemonError && err.cause instanceof SysError &&
    err.cause.code === "EAGAIN";
}

/**
 * Where the last `n` lines of a file of `size` bytes start, read backwards
 * a chunk at a time; a last line without its newline counts as a line.
 *
 * @returns The offset, and whether the look back stopped at its bound.
 */
export function tailStart(
  read: (offset: number, max: number) => Uint8Array,
  size: number,
  n: number,
  lookback = Math.min(LOOKBACK_MAX, n * LOOKBACK_PER_LINE),
): { offset: number; bounded: boolean } {
  if (n === 0) return { offset: size, bounded: false };
  const floor = Math.max(0, size - lookback);
  let earliest = -1;
  // The newline that ends the last line starts no line of its own.
  let end = size;
  if (size > 0 && read(size - 1, 1)[0] === NL) end--;
  let found = 0;
  while (end > floor) {
    const from = Math.max(floor, end - CHUNK);
    const bytes = read(from, end - from);
    for (let i = bytes.length - 1; i >= 0; i--) {
      if (bytes[i] !== NL) continue;
      if (++found === n) return { offset: from + i + 1, bounded: false };
      earliest = from + i;
    }
    end = from;
  }
  if (floor === 0) return { offset: 0, bounded: false };
  // The oldest whole line inside the bound, else the end of one too long.
  return { offset: earliest === -1 ? floor : earliest + 1, bounded: true };
}

/** `logs -n N`: the last lines, then done. */
async function showTail(
  file: LogFile,
  out: Output,
  { lines, note }: LogsRequest,
): Promise<number> {
  const opened = file.open();
  if (opened === null) {
    throw new DaemonError(
      `No log file ${
        JSON.stringify(file.path)
      } yet: the daemon has not written one`,
      Exit.FAILURE,
    );
  }
  try {
    const size = opened.stat.size;
    let { offset } = lastLines(file, opened, lines, note);
    // What the file holds now: a daemon writing meanwhile does not keep
    // this going.
    while (offset < size) {
      const bytes = file.read(opened.fd, offset).subarray(0, size - offset);
      if (bytes.length === 0) break;
      if (!await out.write(bytes)) break;
      offset += bytes.length;
    }
    return Exit.OK;
  } finally {
    file.close(opened.fd);
  }
}

function lastLines(
  file: LogFile,
  opened: OpenedFile,
  lines: number,
  note: (text: string) => void,
): { offset: number } {
  const start = tailStart(
    (offset, max) => file.read(opened.fd, offset).subarray(0, max),
    opened.stat.size,
    lines,
  );
  if (start.bounded) {
    note(
      `Fewer than ${lines} line breaks in the last ${
        Math.round((opened.stat.size - start.offset) / 1024 / 1024)
      } MiB of ${JSON.stringify(file.path)}: showing those only`,
    );
  }
  return start;
}

/** The file being followed: its descriptor, identity and how far it was read. */
interface Followed {
  fd: number;
  dev: string;
  ino: bigint;
  offset: number;
  /** The bytes just before `offset`, as read: changed, the file was rewritten. */
  mark: Uint8Array;
}

/** How many bytes before the offset are kept to notice a file rewritten past it. */
const MARK = 256;
/** Milliseconds between looks at a quiet file, and at one being written. */
const POLL_IDLE_MS = 250;
const POLL_BUSY_MS = 50;

/**
 * `logs -f`: like `tail -F`. The file is looked at every 250 ms (50 ms
 * while it grows): when it shrank, or the bytes before the offset changed
 * (copytruncate, then more written than had been read), it is read again
 * from the start; when its name holds another file (rename and create), the
 * old one is read to its end and the new one from its start — once the new
 * one has content, since until the daemon reopens its log it still writes
 * the old one. A file that does not exist yet is waited for.
 */
async function follow(
  file: LogFile,
  out: Output,
  request: LogsRequest,
): Promise<number> {
  const { signal } = request;
  let current: Followed | null = null;
  let leased = false;
  /**
   * The file at the path now, `null` while it is missing or leased: a
   * lease its owner holds refuses our open until it gives it up, which our
   * open asked it to do within the kernel's lease-break-time.
   */
  const look = (): OpenedFile | null => {
    try {
      const opened = file.open();
      leased = false;
      return opened;
    } catch (err) {
      if (!isLeased(err)) throw err;
      if (!leased) {
        request.note(
          `${
            JSON.stringify(file.path)
          } is leased by another process: waiting for it`,
        );
      }
      leased = true;
      return null;
    }
  };
  const opened = look();
  if (opened === null) {
    if (!leased) {
      request.note(
        `No log file ${JSON.stringify(file.path)} yet: waiting for it`,
      );
    }
  } else {
    current = followed(
      file,
      opened,
      lastLines(file, opened, request.lines, request.note),
    );
  }
  /** Start `f` over from its beginning, saying why. */
  const truncated = (f: Followed) => {
    request.note(`${JSON.stringify(file.path)} was truncated`);
    f.offset = 0;
    f.mark = new Uint8Array(0);
  };
  try {
    let busy = false;
    for (;;) {
      if (current !== null) {
        const before = current.offset;
        if (!await drain(file, current, out, truncated, signal)) {
          return Exit.OK;
        }
        busy = current.offset !== before;
      }
      if (signal?.aborted) return Exit.OK;
      await sleep(
        request.pollMs ?? (busy ? POLL_BUSY_MS : POLL_IDLE_MS),
        signal,
      );
      if (signal?.aborted || out.gone()) return Exit.OK;
      if (current !== null && rewritten(file, current)) truncated(current);
      const next = look();
      if (next === null) continue;
      if (
        current !== null && next.stat.dev === current.dev &&
        next.stat.ino === current.ino
      ) {
        file.close(next.fd);
        continue;
      }
      if (current !== null && next.stat.size === 0) {
        // The daemon may still write the renamed file until it reopens.
        file.close(next.fd);
        continue;
      }
      if (current !== null) {
        const last = current;
        current = null;
        const more = await drain(file, last, out, truncated, signal);
        file.close(last.fd);
        if (!more) {
          file.close(next.fd);
          return Exit.OK;
        }
        request.note(`${JSON.stringify(file.path)} was replaced`);
      }
      current = followed(file, next, { offset: 0 });
    }
  } finally {
    if (current !== null) file.close(current.fd);
  }
}

function followed(
  file: LogFile,
  opened: OpenedFile,
  { offset }: { offset: number },
): Followed {
  return {
    fd: opened.fd,
    dev: opened.stat.dev,
    ino: opened.stat.ino,
    offset,
    mark: markBefore(file, opened.fd, offset),
  };
}

function markBefore(file: LogFile, fd: number, offset: number): Uint8Array {
  const from = Math.max(0, offset - MARK);
  return file.read(fd, from).slice(0, offset - from);
}

/** Whether the file was cut below the offset, or rewritten up to past it. */
function rewritten(file: LogFile, f: Followed): boolean {
  if (file.size(f.fd) < f.offset) return true;
  const now = markBefore(file, f.fd, f.offset);
  return now.length !== f.mark.length || now.some((b, i) => b !== f.mark[i]);
}

/**
 * Write what `f` holds past its offset; `false` once the reader is gone or
 * `signal` aborted. A file rewritten past the offset since the last look
 * (truncated, then written further than we had read) is started over
 * through `truncated` before anything of it is shown.
 */
async function drain(
  file: LogFile,
  f: Followed,
  out: Output,
  truncated: (f: Followed) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  for (;;) {
    // A file written faster than it is shown still lets a signal end this.
    if (signal?.aborted) return false;
    const bytes = file.read(f.fd, f.offset);
    if (bytes.length === 0) return true;
    // Checked after the read: what was read is the new file's middle then.
    if (rewritten(file, f)) {
      truncated(f);
      continue;
    }
    f.offset += bytes.length;
    f.mark = tail(f.mark, bytes);
    if (!await out.write(bytes)) return false;
  }
}

/** The last {@linkcode MARK} bytes of `a` followed by `b`. */
function tail(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length >= MARK) return b.slice(b.length - MARK);
  const keep = a.subarray(Math.max(0, a.length + b.length - MARK));
  const out = new Uint8Array(keep.length + b.length);
  out.set(keep);
  out.set(b, keep.length);
  return out;
}

/**
 * Standard output: bytes as they are into a pipe or file; for a terminal,
 * text with every control character but newline and tab escaped, and each
 * byte that is not UTF-8 shown as `\xNN`.
 */
function stdoutOutput(libc: Libc, signal?: AbortSignal): Output {
  const terminal = Deno.stdout.isTerminal() ? new TerminalText() : null;
  const encoder = new TextEncoder();
  // A write to a reader that stopped reading never returns: `signal` ends
  // the wait for it (the process then exits with the write pending).
  const aborted = new Promise<null>((resolve) => {
    if (signal?.aborted) resolve(null);
    signal?.addEventListener("abort", () => resolve(null), { once: true });
  });
  const put = async (data: Uint8Array) => {
    try {
      for (let at = 0; at < data.length;) {
        const n = await Promise.race([
          Deno.stdout.write(data.subarray(at)),
          aborted,
        ]);
        if (n === null) return false;
        at += n;
      }
      return true;
    } catch (err) {
      // The runtime ignores SIGPIPE: a closed pipe is an error here.
      if (err instanceof Deno.errors.BrokenPipe) return false;
      throw err;
    }
  };
  return {
    write: (bytes) =>
      put(terminal === null ? bytes : encoder.encode(terminal.render(bytes))),
    gone: () => libc.readerGone(1),
    async end() {
      if (terminal !== null) {
        await put(encoder.encode(terminal.render(new Uint8Array(0), true)));
      }
    },
  };
}

/**
 * Bytes made into text a terminal shows as it is, across chunk boundaries:
 * a character cut in two by a read is kept until its other half comes.
 *
 * @example
 * ```ts
 * import { TerminalText } from "./logs.ts";
 * const t = new TerminalText();
 * console.log(t.render(new Uint8Array([0x61, 0x1b, 0x5b, 0x32, 0x4a, 0xc3]))); // a\u001b[2J
 * console.log(t.render(new Uint8Array([0xa9, 0xff, 0x0a]))); // é\xff + newline
 * ```
 */
export class TerminalText {
  #carry = new Uint8Array(0);
  readonly #decoder = new TextDecoder();

  /**
   * The next bytes as visible text.
   *
   * @param chunk Bytes of the log.
   * @param final No more bytes follow: an unfinished character is shown as bytes.
   * @returns Text safe to write to a terminal.
   */
  render(chunk: Uint8Array, final = false): string {
    const bytes = new Uint8Array(this.#carry.length + chunk.length);
    bytes.set(this.#carry);
    bytes.set(chunk, this.#carry.length);
    let out = "";
    let start = 0;
    let i = 0;
    while (i < bytes.length) {
      const n = utf8Length(bytes, i);
      if (n > 0) {
        i += n;
        continue;
      }
      if (n === -1 && !final) break;
      out += this.#decoder.decode(bytes.subarray(start, i)) +
        `\\x${bytes[i].toString(16).padStart(2, "0")}`;
      start = ++i;
    }
    out += this.#decoder.decode(bytes.subarray(start, i));
    this.#carry = bytes.slice(i);
    return visible(out);
  }
}

/**
 * The length of the UTF-8 character at `b[i]` (RFC 3629: no overlong form,
 * no surrogate, nothing past U+10FFFF); 0 when the bytes are not one, -1
 * when the bytes end before it does.
 */
function utf8Length(b: Uint8Array, i: number): number {
  const lead = b[i];
  if (lead < 0x80) return 1;
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) n = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    n = 3;
    if (lead === 0xe0) lo = 0xa0;
    if (lead === 0xed) hi = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    n = 4;
    if (lead === 0xf0) lo = 0x90;
    if (lead === 0xf4) hi = 0x8f;
  } else return 0;
  for (let k = 1; k < n; k++) {
    if (i + k >= b.length) return -1;
    const c = b[i + k];
    if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return 0;
  }
  return n;
}

/**
 * The `journalctl` arguments for the daemon's records: by its syslog
 * identifier, and only from the trusted uids (anyone can send records
 * with any identifier to the journal).
 *
 * @example
 * ```ts
 * import { journalArgs } from "./logs.ts";
 * console.log(journalArgs("myd", { lines: 5, follow: true, owners: [0, 998] }).join(" "));
 * // --no-pager --quiet --lines=5 --follow --identifier=myd _UID=0 _UID=998
 * ```
 */
export function journalArgs(
  identifier: string,
  request: Pick<LogsRequest, "lines" | "follow" | "owners">,
): string[] {
  return [
    "--no-pager",
    "--quiet",
    `--lines=${request.lines}`,
    ...(request.follow ? ["--follow"] : []),
    `--identifier=${identifier}`,
    ...[...new Set(request.owners)].map((uid) => `_UID=${uid}`),
  ];
}

/** The directories `journalctl` is looked for in, when PATH has none. */
const JOURNALCTL_DIRS = ["/usr/bin", "/bin"];

/** Run `journalctl` on our stdout and stderr; its exit code is ours. */
async function journal(
  libc: Libc,
  identifier: string,
  request: LogsRequest,
): Promise<number> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":")
    .filter((d) => d.startsWith("/"))
    .concat(JOURNALCTL_DIRS);
  const path = dirs.map((d) => `${d}/journalctl`).find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  if (path === undefined) {
    throw new DaemonError(
      "The daemon logs to journald, and journalctl is not installed",
      Exit.FAILURE,
    );
  }
  const pid = libc.spawn({
    path,
    argv: ["journalctl", ...journalArgs(identifier, request)],
    fds: [{ fd: 0, open: "/dev/null" }, { fd: 1, dup: 1 }, { fd: 2, dup: 2 }],
  });
  const pidfd = libc.pidfdOpen(pid);
  const stop = () => {
    try {
      libc.pidfdSignal(pidfd, "SIGTERM");
    } catch {
      // already gone
    }
  };
  request.signal?.addEventListener("abort", stop, { once: true });
  try {
    while (!await libc.pidfdWait(pidfd, 1000)) {
      // waiting for journalctl
    }
    const status = await collectExit(libc, pidfd, 1000);
    if (request.signal?.aborted) return Exit.OK;
    return status?.exited ? status.code : Exit.FAILURE;
  } finally {
    request.signal?.removeEventListener("abort", stop);
    libc.close(pidfd);
  }
}
