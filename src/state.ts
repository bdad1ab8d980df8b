/**
 * What running processes publish for the control commands, and where:
 *
 * - the **launch record** `x.launch` beside the pidfile, written by root (or
 *   the caller) when the daemon starts: what may hold the pidfile (this
 *   program, and the uids it runs as), so that a pid is believed only when
 *   the kernel agrees;
 * - the **supervisor file** `x.supervisor`, written by the supervisor of
 *   `start --restart` (the child, its restarts, why it gave up);
 * - the **daemon's state** (reload outcomes, where it logs), which the daemon
 *   keeps in a memfd of its own: it runs unprivileged, so it must not hold a
 *   descriptor to any file root created. Readers take it from
 *   `/proc/PID/fd` of the verified daemon and treat it as the daemon's word:
 *   bounded, validated, never a pid to signal.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { pidfilePolicy } from "./pidfile.ts";
import { openChecked } from "./safe_open.ts";
import { oneLine } from "./text.ts";

/** What the daemon publishes. */
export interface DaemonState {
  /** The daemon's pid. */
  pid: number;
  /** The supervisor's pid, when the daemon runs under one (`start --restart`). */
  supervisor?: number;
  /** Reloads asked for (SIGHUPs seen), counting from 0. */
  reloadsRequested: number;
  /** The request number the last finished reload covered. */
  reloadsDone: number;
  /** The error text of the last finished reload, or `null` when it succeeded. */
  lastReloadError: string | null;
  /** Where the daemon logs, for `status`. */
  logsTo?: string;
  /** Log records it could not write (a deaf syslog, a full disk), once there are any. */
  droppedRecords?: number;
  /** 1 for a daemon `start` or `run` started, n + 1 for the one `upgrade` started from generation n. */
  generation?: number;
}

/** What the supervisor publishes. */
export interface SupervisorState {
  /** The supervisor's pid, to match against the pidfile. */
  pid: number;
  /** The running daemon's pid, or `null` between two runs. */
  child: number | null;
  /** Whether that daemon has said it is ready. */
  childReady: boolean;
  /** Restarts since `start`. */
  restarts: number;
  /**
   * How the last daemon ended (`"status 1"`, `"signal SIGSEGV"`), when (ms
   * since the epoch), and what it said in its exit record, if anything.
   */
  lastExit:
    | { status: string; at: number; said?: { how: string; detail: string } }
    | null;
  /** When the next restart is due (ms since the epoch), while waiting for it. */
  nextRestartAt: number | null;
  /** Why the supervisor gave up, once it has. */
  gaveUp: string | null;
  /** The daemon's stop timeout in seconds: `stop` waits longer than that for the supervisor. */
  stopTimeout: number;
  /** Where the supervisor and the daemon log, for `status`. */
  logsTo: string;
  /** The supervisor's own log records it could not write, once there are any. */
  droppedRecords?: number;
  /** The last upgrade it took on (`upgrade`), once there is one. */
  upgrade?: SupervisedUpgrade;
  /**
   * The last upgrade request it refused (none under way could be started),
   * apart: a refusal never hides the answer of the upgrade under way.
   */
  refused?: { id: string; error: string };
}

/** How an upgrade asked of the supervisor goes. */
export interface SupervisedUpgrade {
  /** The request's id. */
  id: string;
  /** The daemon being replaced. */
  pid: number;
  /** The new generation, once spawned. */
  next: number | null;
  /** Under way, done (the new one is ready, the old one asked to stop), or failed. */
  outcome: "starting" | "done" | "failed";
  /** Why it failed. */
  error: string | null;
}

/**
 * What `upgrade` asks of the supervisor of `start --restart`, in a root-owned
 * file beside the pidfile (`x.request`), announced with SIGWINCH.
 */
export interface UpgradeRequest {
  /** Matches the answer in {@linkcode SupervisorState.upgrade}. */
  id: string;
  /** The program to run (see {@linkcode LaunchRecord.program}). */
  program: string[];
  /** The new generation's settings. */
  daemon: unknown;
  /** The new generation's number. */
  generation: number;
}

/** The upgrade request for a pidfile: `x.pid` → `x.request`. */
function requestPath(pidfile: string): string {
  return `${base(pidfile)}.request`;
}

/**
 * Write an upgrade request; the supervisor removes it once read. A file
 * already there is removed first: a request of ours is never left pending
 * (the supervisor takes it at the signal), and beside a pidfile in a shared
 * directory another user's file of that name would otherwise refuse every
 * upgrade.
 */
export function writeUpgradeRequest(
  libc: Libc,
  pidfile: string,
  request: UpgradeRequest,
): void {
  const path = requestPath(pidfile);
  for (let tries = 3;; tries--) {
    try {
      libc.unlink(path);
    } catch {
      // not there
    }
    try {
      StateFile.create(libc, path, request).close();
      return;
    } catch (err) {
      // Put back between the two by its owner: try again, then say so.
      if (tries <= 1) throw err;
    }
  }
}

/** Read and remove the upgrade request, or `null` when there is none to trust. */
export function takeUpgradeRequest(
  libc: Libc,
  pidfile: string,
): UpgradeRequest | null {
  const data = readSideFile(libc, requestPath(pidfile)) as
    | Record<string, unknown>
    | null;
  try {
    libc.unlink(requestPath(pidfile));
  } catch {
    // not there
  }
  if (
    data === null || !isString(data.id) || !Array.isArray(data.program) ||
    data.program.length === 0 || !data.program.every(isString) ||
    !isCount(data.generation) || typeof data.daemon !== "object" ||
    data.daemon === null
  ) {
    return null;
  }
  return {
    id: data.id,
    program: data.program,
    daemon: data.daemon,
    generation: data.generation,
  };
}

/** What may hold the pidfile, recorded by whoever started the daemon. */
export interface LaunchRecord {
  /** The executable that started it (this program). */
  exe: string;
  /** The uids the pidfile's holder runs as: the starter's, and the one it drops to. */
  uids: number[];
  /** Whether the pidfile names a supervisor (`start --restart`). */
  supervised: boolean;
  /** Whether `run` took the pidfile: a service manager owns the process. */
  foreground: boolean;
  /**
   * This program as a command line that runs it again (absolute paths): the
   * executable as started — its path, so that a binary replaced there is
   * the one found — and, under `deno run`, its flags and the script.
   */
  program: string[];
  /**
   * The options `start` was given, by long name, paths made absolute: the
   * control commands apply them under their own, so that `restart` starts
   * the daemon as it was started and `stop` waits its stop timeout.
   */
  options: RecordedOptions;
  /** When `start` launched it, in ms since the epoch. */
  startedAt: number;
}

/** Option values as given on a command line: a string, or `true` for a flag. */
export type RecordedOptions = Record<string, string | true>;

/** The memfd name under which a daemon publishes its {@linkcode DaemonState}. */
export const STATE_MEMFD = "denod-state";
/** Side files and published state larger than this are garbage. */
const STATE_MAX = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The base of the side files: the pidfile path without `.pid`. */
function base(pidfile: string): string {
  return pidfile.replace(/\.pid$/, "");
}

/** The supervisor's state file for a pidfile: `x.pid` → `x.supervisor`. */
export function supervisorPath(pidfile: string): string {
  return `${base(pidfile)}.supervisor`;
}

/** The exit record for a pidfile: `x.pid` → `x.exit`. */
export function exitPath(pidfile: string): string {
  return `${base(pidfile)}.exit`;
}

/** The launch record for a pidfile: `x.pid` → `x.launch`. */
function launchPath(pidfile: string): string {
  return `${base(pidfile)}.launch`;
}

/** The upgrade in progress for a pidfile: `x.pid` → `x.upgrade`. */
function upgradePath(pidfile: string): string {
  return `${base(pidfile)}.upgrade`;
}

/**
 * What `upgrade` records while two generations hold the pidfile's lock, for
 * `status`; neither pid is believed unless the kernel shows it holding the
 * lock.
 */
export interface UpgradeInProgress {
  /** The generation being replaced. */
  pid: number;
  /** The generation replacing it. */
  next: number;
}

/** Record an upgrade in progress; the caller holds the pidfile's lock. */
export function writeUpgradeFile(
  libc: Libc,
  pidfile: string,
  upgrade: UpgradeInProgress,
): void {
  StateFile.create(libc, upgradePath(pidfile), upgrade).close();
}

/** The upgrade is over. */
export function removeUpgradeFile(libc: Libc, pidfile: string): void {
  try {
    libc.unlink(upgradePath(pidfile));
  } catch {
    // not there
  }
}

/** The upgrade in progress, as recorded, or `null`. */
export function readUpgradeFile(
  libc: Libc,
  pidfile: string,
): UpgradeInProgress | null {
  const data = readSideFile(libc, upgradePath(pidfile)) as
    | Record<string, unknown>
    | null;
  return data !== null && isCount(data.pid) && isCount(data.next)
    ? { pid: data.pid, next: data.next }
    : null;
}

/**
 * Remove the side files of a pidfile whose processes are gone, and the exit
 * record unless `keepExit` (a daemon that just ended keeps its own). Only
 * the holder of the pidfile's lock may call this; the pidfile's directory
 * was checked when the lock was taken.
 */
export function removeSideFiles(
  libc: Libc,
  pidfile: string,
  { keepExit = false } = {},
): void {
  const paths = [
    launchPath(pidfile),
    supervisorPath(pidfile),
    upgradePath(pidfile),
    requestPath(pidfile),
  ];
  if (!keepExit) paths.push(exitPath(pidfile));
  for (const path of paths) {
    try {
      libc.unlink(path);
    } catch {
      // not there
    }
  }
}

/**
 * A JSON file beside the pidfile that a privileged process holds open and
 * rewrites in place; opened with the pidfile's rules (no symlink anywhere,
 * a regular file with one link, owned by root or the caller).
 */
export class StateFile<T> {
  /** The path. */
  readonly path: string;
  #libc: Libc;
  #fd: number;
  #closed = false;

  private constructor(libc: Libc, path: string, fd: number) {
    this.#libc = libc;
    this.path = path;
    this.#fd = fd;
  }

  /**
   * Create (or take over) a state file, mode 0644; the caller holds the
   * pidfile lock.
   */
  static create<T>(libc: Libc, path: string, state: T): StateFile<T> {
    const { fd } = openChecked(
      libc,
      path,
      { ...pidfilePolicy(libc.geteuid()), what: "state file" },
      { write: true, create: true, mode: 0o644 },
      { privateWrite: true },
    );
    libc.fchmod(fd, 0o644);
    const file = new StateFile<T>(libc, path, fd);
    file.write(state);
    return file;
  }

  /** Replace the content with `state`. */
  write(state: T): void {
    this.#libc.replace(this.#fd, encoder.encode(JSON.stringify(state) + "\n"));
  }

  /** Close, keeping the file for the control commands to read. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.#fd);
  }

  /** Unlink and close. Safe to call twice. */
  remove(): void {
    if (this.#closed) return;
    try {
      this.#libc.unlink(this.path);
    } catch {
      // Already gone, or no longer ours to remove.
    }
    this.close();
  }
}

/** The daemon's own published state: a memfd only it holds. */
export class PublishedState<T> {
  #libc: Libc;
  #fd: number;
  #closed = false;

  /** Create the memfd holding `state`. */
  constructor(libc: Libc, state: T) {
    this.#libc = libc;
    this.#fd = libc.memfd(STATE_MEMFD, encode(state));
  }

  /** Replace the content with `state`. */
  write(state: T): void {
    if (!this.#closed) this.#libc.replace(this.#fd, encode(state));
  }

  /** Give the memfd to the user the daemon becomes (`fchown`). */
  handTo(uid: number, gid: number): void {
    this.#libc.fchown(this.#fd, uid, gid);
  }

  /** Close it: the state is gone with it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#libc.close(this.#fd);
  }
}

function encode(state: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(state) + "\n");
}

/**
 * Parse bytes, trying again while a rewrite (a write then a truncate) is
 * caught half done.
 */
function parseJson(read: () => Uint8Array | null): unknown {
  for (let attempt = 0; attempt < 5; attempt++) {
    const bytes = read();
    if (bytes === null) return null;
    try {
      return JSON.parse(decoder.decode(bytes));
    } catch {
      // Caught mid-rewrite: read again.
    }
  }
  return null;
}

/**
 * Read a JSON side file with the pidfile's rules, at most `max` bytes of it.
 *
 * @returns What it holds, or `null` when it cannot be opened or parsed.
 */
function readSideFile(
  libc: Libc,
  path: string,
  { what = "state file", max = STATE_MAX } = {},
): unknown {
  let fd: number;
  try {
    ({ fd } = openChecked(
      libc,
      path,
      { ...pidfilePolicy(libc.geteuid()), what },
      {},
      { privateWrite: true },
    ));
  } catch {
    return null;
  }
  try {
    return parseJson(() => libc.readBounded(fd, max));
  } finally {
    libc.close(fd);
  }
}

const isString = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Read what daemon `pid` publishes. Call it only for a pid verified to be
 * the daemon (or its supervisor's child): the content is the daemon's word,
 * checked field by field and made printable.
 *
 * @returns The state, or `null` when none can be read.
 */
export function readState(libc: Libc, pid: number): DaemonState | null {
  const view = libc.processView(pid);
  if (view === null) return null;
  const owners = [view.uid, view.euid];
  const data = parseJson(() =>
    libc.readProcessMemfd(pid, STATE_MEMFD, STATE_MAX, owners)
  ) as Record<string, unknown> | null;
  if (
    data === null || typeof data !== "object" || data.pid !== pid ||
    !isCount(data.reloadsRequested) || !isCount(data.reloadsDone) ||
    !(data.lastReloadError === null || isString(data.lastReloadError))
  ) {
    return null;
  }
  return {
    pid,
    ...(isCount(data.supervisor) ? { supervisor: data.supervisor } : {}),
    reloadsRequested: data.reloadsRequested,
    reloadsDone: data.reloadsDone,
    lastReloadError: data.lastReloadError === null
      ? null
      : oneLine(data.lastReloadError),
    ...(isString(data.logsTo) ? { logsTo: oneLine(data.logsTo) } : {}),
    ...(isCount(data.droppedRecords)
      ? { droppedRecords: data.droppedRecords }
      : {}),
    ...(isCount(data.generation) ? { generation: data.generation } : {}),
  };
}

/**
 * Read the supervisor's state file, when it belongs to process `pid`.
 *
 * @returns The state, or `null` when missing, unreadable or another process's.
 */
export function readSupervisorState(
  libc: Libc,
  pidfile: string,
  pid: number | undefined,
): SupervisorState | null {
  const data = readSideFile(libc, supervisorPath(pidfile)) as
    | SupervisorState
    | null;
  if (
    typeof data?.pid !== "number" || data.pid !== pid ||
    typeof data.restarts !== "number" || typeof data.stopTimeout !== "number"
  ) {
    return null;
  }
  return {
    ...data,
    lastExit: data.lastExit === null ? null : {
      status: oneLine(String(data.lastExit?.status)),
      at: Number(data.lastExit?.at),
      ...(isString(data.lastExit?.said?.how) &&
          isString(data.lastExit.said.detail)
        ? {
          said: {
            how: oneLine(data.lastExit.said.how).slice(0, 20),
            detail: oneLine(data.lastExit.said.detail).slice(0, 500),
          },
        }
        : {}),
    },
    gaveUp: data.gaveUp === null ? null : oneLine(String(data.gaveUp)),
    logsTo: oneLine(String(data.logsTo)),
  };
}

/** Write the launch record; the caller holds the pidfile lock. */
export function writeLaunchRecord(
  libc: Libc,
  pidfile: string,
  record: LaunchRecord,
): void {
  const file = StateFile.create(libc, launchPath(pidfile), record);
  file.close();
}

/** Read the launch record, or `null` when there is none to trust. */
export function readLaunchRecord(
  libc: Libc,
  pidfile: string,
): LaunchRecord | null {
  const data = readSideFile(libc, launchPath(pidfile)) as
    | Record<string, unknown>
    | null;
  if (
    data === null || !isString(data.exe) || !Array.isArray(data.uids) ||
    !data.uids.every(isCount)
  ) {
    return null;
  }
  const program = Array.isArray(data.program) && data.program.every(isString)
    ? data.program
    : [data.exe];
  return {
    exe: data.exe,
    uids: data.uids,
    supervised: data.supervised === true,
    foreground: data.foreground === true,
    program,
    options: recordedOptions(data.options),
    startedAt: isCount(data.startedAt) ? data.startedAt : 0,
  };
}

/** The recorded options, each a string or `true` (a record from an older version has none). */
function recordedOptions(data: unknown): RecordedOptions {
  const options: RecordedOptions = Object.create(null);
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    return options;
  }
  for (const [name, value] of Object.entries(data)) {
    if (isString(value) || value === true) options[name] = value;
  }
  return options;
}

/**
 * How a daemon's run ended: `running` until it says otherwise (a daemon
 * killed by SIGKILL or a crash never does); `stopped` when asked to (a
 * signal, `stop`, its supervisor); `failed` by an error (before or after
 * ready); `returned` when `main` returned and nothing was left to run;
 * `exited` by `Deno.exit` in the payload; `killed` by a signal it could not
 * handle (only a supervisor sees that, and says it); `upgraded` when a new
 * generation replaced it.
 */
export type ExitHow =
  | "running"
  | "stopped"
  | "failed"
  | "returned"
  | "exited"
  | "killed"
  | "upgraded";

const EXIT_HOWS: readonly ExitHow[] = [
  "running",
  "stopped",
  "failed",
  "returned",
  "exited",
  "killed",
  "upgraded",
];

/**
 * The exit record (`x.exit`): how the last run ended, in the daemon's own
 * words. The daemon writes it through a descriptor `start` opened for it
 * before the drop, to a file root (or the caller) keeps owning; readers
 * take it as the daemon's word — bounded, checked field by field,
 * printable, never a pid to signal.
 */
export interface ExitRecord {
  /** The daemon's pid (0 before it wrote one). */
  pid: number;
  /** How it ended, or `running`. */
  how: ExitHow;
  /** What ended it: the signal, the error's message, who stopped it. */
  detail: string;
  /** The exit status, when one was set. */
  code: number | null;
  /** When it ended (or, while `running`, started), in ms since the epoch. */
  at: number;
}

/**
 * Whether a run ended in a way somebody should look at — `status` says dead:
 * an error, a signal, a non-zero status, or no word at all. A daemon stopped
 * as asked, upgraded, or done with status 0 is merely not running.
 */
export function endedBadly(record: ExitRecord): boolean {
  switch (record.how) {
    case "stopped":
    case "upgraded":
      return false;
    case "returned":
    case "exited":
      return record.code !== 0;
    default:
      return true;
  }
}

/** An exit record file, written through a descriptor held open. */
export class ExitRecordFile {
  #libc: Libc;
  #fd: number;

  constructor(libc: Libc, fd: number) {
    this.#libc = libc;
    this.#fd = fd;
  }

  /** The descriptor, to hand to the next stage. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * Create the record for a new run (the caller holds the pidfile lock and
   * removed the old one), `running`. It stays the creator's: the daemon
   * writes it after its drop through the descriptor alone, since as the
   * file's owner it could also lease it (every other open of it, root's
   * included, then waits the kernel's lease-break-time), open it to every
   * user, or link it into a directory of its own.
   */
  static create(libc: Libc, pidfile: string): ExitRecordFile {
    const { fd } = openChecked(
      libc,
      exitPath(pidfile),
      { ...pidfilePolicy(libc.geteuid()), what: "exit record" },
      { write: true, create: true, mode: 0o644 },
      { privateWrite: true },
    );
    const file = new ExitRecordFile(libc, fd);
    try {
      file.write({
        pid: 0,
        how: "running",
        detail: "",
        code: null,
        at: Date.now(),
      });
    } catch (err) {
      file.close();
      throw err;
    }
    return file;
  }

  /** Replace the record; a failure is not worth failing the daemon for. */
  write(record: ExitRecord): void {
    try {
      this.#libc.replace(this.#fd, encode(record));
    } catch {
      // A full disk: the record stays as it was.
    }
  }

  /**
   * Read the record back through our descriptor (the supervisor, of its
   * child's), or `null`. The open file description is the daemon's too,
   * whose status flags it may change (`O_DIRECT` makes a read fail): a
   * failure is no record, never the reader's end.
   */
  read(): ExitRecord | null {
    try {
      return checkExitRecord(
        parseJson(() => this.#libc.readBounded(this.#fd, EXIT_MAX)),
      );
    } catch {
      return null;
    }
  }

  /** Close the descriptor; the record stays. */
  close(): void {
    if (this.#fd < 0) return;
    this.#libc.close(this.#fd);
    this.#fd = -1;
  }
}

/** An exit record larger than this is garbage. */
const EXIT_MAX = 4096;

/** The record, checked field by field and made printable, or `null`. */
function checkExitRecord(data: unknown): ExitRecord | null {
  const d = data as Partial<Record<keyof ExitRecord, unknown>> | null;
  if (
    d === null || typeof d !== "object" || !isCount(d.pid) ||
    !EXIT_HOWS.includes(d.how as ExitHow) || !isString(d.detail) ||
    !(d.code === null || Number.isSafeInteger(d.code)) || !isCount(d.at)
  ) {
    return null;
  }
  return {
    pid: d.pid,
    how: d.how as ExitHow,
    detail: oneLine(d.detail).slice(0, 500),
    code: d.code as number | null,
    at: d.at,
  };
}

/**
 * Read the exit record beside a pidfile, or `null`. It is opened with the
 * pidfile's rules — root's or the caller's, one link, writable by nobody
 * else, without following a link or blocking —: in a shared directory like
 * /tmp another user could have put one there. What it says is still only
 * the daemon's word, at most {@linkcode EXIT_MAX} bytes.
 */
export function readExitRecord(
  libc: Libc,
  pidfile: string,
): ExitRecord | null {
  try {
    return checkExitRecord(
      readSideFile(libc, exitPath(pidfile), {
        what: "exit record",
        max: EXIT_MAX,
      }),
    );
  } catch {
    return null;
  }
}
