/**
 * The operating-system interface the library needs, as one typed seam.
 *
 * Everything that knows libc symbol names, struct layouts, flag values or
 * per-OS behaviour lives behind this interface in `ffi/`. The rest of the
 * library only sees plain numbers, strings and {@linkcode SysError}s.
 *
 * @module
 */

/** The kind of file a {@linkcode FileStat} describes. */
export type FileType =
  | "file"
  | "directory"
  | "symlink"
  | "fifo"
  | "socket"
  | "char-device"
  | "block-device";

/** File identity and ownership, as `statx(2)` reports it. */
export interface FileStat {
  /** The kind of file. */
  type: FileType;
  /** Device the file lives on, as `"major:minor"`. */
  dev: string;
  /** The same device as one number, encoded as `st_dev` is (what `JOURNAL_STREAM` names). */
  devNumber: bigint;
  /** Inode number. */
  ino: bigint;
  /** Permission bits (`st_mode & 07777`). */
  mode: number;
  /** Owner uid. */
  uid: number;
  /** Owner gid. */
  gid: number;
  /** Hard links to the file. */
  nlink: number;
  /** The device a character or block device file stands for, as `"major:minor"`. */
  rdev: string;
  /** Size in bytes. */
  size: number;
}

/** How to open a file relative to a directory with {@linkcode Libc.openAt}. */
export interface OpenAtFlags {
  /** `O_PATH`: a handle for walking and `fstat`, no access to the content. */
  path?: boolean;
  /** Open for writing (`O_RDWR`, or `O_WRONLY` with `append`). */
  write?: boolean;
  /** `O_APPEND`. */
  append?: boolean;
  /** `O_CREAT`. */
  create?: boolean;
  /** `O_EXCL`: fail with `EEXIST` when the name exists. */
  exclusive?: boolean;
}

/** What the kernel says about a process, for deciding whether to trust it. */
export interface ProcessView {
  /** The executable it runs (`/proc/PID/exe`, without a ` (deleted)` suffix), or `null` when unreadable. */
  exe: string | null;
  /** Real and effective uid. */
  uid: number;
  euid: number;
  /** Parent pid. */
  ppid: number;
  /**
   * Whether it is exiting: its main thread is gone (a zombie) while other
   * threads still end, holding its descriptors (and their locks) until the
   * last one has.
   */
  exiting: boolean;
  /**
   * Whether it holds a descriptor on which an exclusive `flock` is taken on
   * the file asked about; `null` when not asked, or when its descriptors
   * cannot be read (another user's process, seen by a non-root caller).
   */
  holdsLock: boolean | null;
}

/** A user from the system's user database (`getpwnam(3)`, `getpwuid(3)`). */
export interface UserEntry {
  /** Login name. */
  name: string;
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Home directory. */
  home: string;
}

/** A group from the system's group database (`getgrnam(3)`, `getgrgid(3)`). */
export interface GroupEntry {
  /** Group name. */
  name: string;
  /** Group id. */
  gid: number;
}

/** What to place on one descriptor of a spawned process. */
export type SpawnFd =
  | { fd: number; dup: number }
  | { fd: number; open: string; write?: boolean; append?: boolean };

/** How a child ended. */
export type ExitStatus =
  | { exited: true; code: number }
  | { exited: false; signal: string; coreDumped: boolean };

/** One classic BPF instruction (`struct sock_filter`). */
export interface BpfInstruction {
  /** The opcode. */
  code: number;
  /** Jump if true. */
  jt: number;
  /** Jump if false. */
  jf: number;
  /** The constant. */
  k: number;
}

/** How to spawn a process with {@linkcode Libc.spawn}. */
export interface SpawnRequest {
  /** Path of the executable. */
  path: string;
  /** Full argument vector including `argv[0]`. */
  argv: string[];
  /** Environment as `NAME=value` strings; `undefined` passes this process's own. */
  env?: string[];
  /** Start a new session (`setsid`) in the child. */
  setsid?: boolean;
  /**
   * Signals the child starts with blocked (its signal mask is otherwise
   * empty): they stay pending until it unblocks them with
   * {@linkcode Libc.unblockSignals}, once it handles them.
   */
  blocked?: readonly Deno.Signal[];
  /** Descriptors to set up in the child, in order; every other one above 2 is closed. */
  fds: SpawnFd[];
}

/** The libc functions the library uses, with errors already turned into {@linkcode SysError}s. */
export interface Libc {
  /** Spawn a process with `posix_spawn`: empty signal mask (but `req.blocked`), every signal at its default action. */
  spawn(req: SpawnRequest): number;
  /** `pthread_sigmask(SIG_UNBLOCK)` of `signals` in the calling thread: a pending one is delivered now. */
  unblockSignals(signals: readonly Deno.Signal[]): void;
  /** `open(2)` with `O_CLOEXEC | O_NOFOLLOW`; returns the descriptor. */
  open(
    path: string,
    flags: { write?: boolean; create?: boolean; append?: boolean },
    mode?: number,
  ): number;
  /**
   * A new read-only descriptor on the file `fd` has open, through
   * `/proc/self/fd`, with `O_NONBLOCK`: a lease another user holds on the
   * file fails the open with `EAGAIN` instead of holding it for the
   * kernel's lease-break-time (45 s).
   */
  reopenReadOnly(fd: number): number;
  /** `close(2)`. */
  close(fd: number): void;
  /**
   * Wait, on another thread, until one of `fds` is readable (or at its end);
   * `Infinity` waits for ever without a wake-up.
   *
   * @returns Its index in `fds`, or -1 after `timeoutMs`.
   */
  waitReadable(fds: readonly number[], timeoutMs: number): Promise<number>;
  /** `read(2)` on a blocking thread, so the event loop keeps running meanwhile. */
  readAsync(fd: number, max: number): Promise<Uint8Array>;
  /** `fchmod(2)`. */
  fchmod(fd: number, mode: number): void;
  /** `write(2)` the whole buffer, retrying on short writes. */
  write(fd: number, data: Uint8Array): void;
  /** `pwrite(2)` at `offset`, then `ftruncate(2)` to the end of the data. */
  replace(fd: number, data: Uint8Array): void;
  /** `pread(2)` of the whole file from offset 0. */
  readAll(fd: number): Uint8Array;
  /** `pread(2)` from offset 0 of at most `max` bytes; `null` when the file holds more. */
  readBounded(fd: number, max: number): Uint8Array | null;
  /** One `pread(2)` of at most `max` bytes at `offset`: fewer at the end of the file, none past it. */
  readAt(fd: number, offset: number, max: number): Uint8Array;
  /** Whether `fd` is the writing end of a pipe or socket whose reader is gone (`poll(2)` says `POLLERR`). */
  readerGone(fd: number): boolean;
  /**
   * `openat(2)` of one name in a directory (`null`: relative to the current
   * directory, or an absolute name), always with `O_NOFOLLOW`,
   * `O_NONBLOCK` (a FIFO or device never blocks the open), `O_NOCTTY` and
   * `O_CLOEXEC`.
   */
  openAt(
    dir: number | null,
    name: string,
    flags: OpenAtFlags,
    mode?: number,
  ): number;
  /**
   * What the kernel says of process `pid`: its executable, uids, parent,
   * and, when `lockOn` is given, whether it holds the exclusive `flock` on
   * that file.
   * `null` when the process is gone.
   */
  processView(
    pid: number,
    lockOn?: { dev: string; ino: bigint },
  ): ProcessView | null;
  /**
   * Read at most `max` bytes of the memfd named `name` that process `pid`
   * holds open, without opening anything else it may have put there: the
   * descriptor is taken with `O_PATH`, and what was taken must be a memory
   * file of that name owned by one of `owners` (the uids the process runs
   * as: a file it could not write itself is never read for it). `null` when
   * there is none, it is larger, or it cannot be read.
   */
  readProcessMemfd(
    pid: number,
    name: string,
    max: number,
    owners: readonly number[],
  ): Uint8Array | null;
  /**
   * The descriptors of process `pid` (or `"self"`) open on `file` whose open
   * file description holds the exclusive `flock`, as `/proc/PID/fdinfo`
   * shows them, each with its access mode. `null` when its descriptors
   * cannot be read.
   */
  lockingFds(
    pid: number | "self",
    file: { dev: string; ino: bigint },
  ): { fd: number; access: "read" | "write" | "read-write" }[] | null;
  /** `flock(2)` without blocking; returns `false` when another holder has it. */
  tryLock(fd: number, exclusive: boolean): boolean;
  /** `pipe2(2)` with `O_CLOEXEC`: `[readEnd, writeEnd]`. */
  pipe(): [number, number];
  /** `dup2(2)`. */
  dup2(fd: number, target: number): void;
  /** Set or clear `FD_CLOEXEC` on a descriptor. */
  setCloexec(fd: number, on: boolean): void;
  /** `memfd_create(2)` with `MFD_CLOEXEC`, holding `data`. */
  memfd(name: string, data: Uint8Array): number;
  /** The name a memfd on descriptor `fd` was created with, or `null` when `fd` is no memfd. */
  memfdName(fd: number): string | null;
  /** Every descriptor open in this process. */
  openFds(): number[];
  /** This program as the kernel started it: the executable and the full argv (argv[0] included). */
  selfCommand(): { path: string; argv: string[] };
  /** This program's argv as the kernel holds it, each argument's bytes undecoded. */
  selfArgvBytes(): Uint8Array[];
  /** Seconds since process `pid` started, or `undefined` when it is gone. */
  processAge(pid: number): number | undefined;
  /** `statx(2)` of a path (not following a final symlink) or of a descriptor. */
  stat(target: string | number): FileStat;
  /** `umask(2)`; returns the previous mask. */
  umask(mask: number): number;
  /** `chdir(2)`. */
  chdir(path: string): void;
  /** `getpid(2)`. */
  getpid(): number;
  /** `geteuid(2)`. */
  geteuid(): number;
  /** A descriptor that refers to process `pid` and survives pid reuse (`pidfd_open(2)`). */
  pidfdOpen(pid: number): number;
  /** Send `signal` through a pidfd (`pidfd_send_signal(2)`). */
  pidfdSignal(pidfd: number, signal: Deno.Signal): void;
  /**
   * Duplicate descriptor `fd` of the process behind a pidfd into this one
   * (`pidfd_getfd(2)`, close-on-exec): the same open file description, so
   * a `flock` held on it is held through the copy too. Needs ptrace rights
   * over that process (root, or its own uid where yama allows).
   */
  pidfdGetfd(pidfd: number, fd: number): number;
  /** Wait up to `timeoutMs` for the process behind a pidfd to exit; `true` once it has. */
  pidfdWait(pidfd: number, timeoutMs: number): Promise<boolean>;
  /**
   * Collect the exit status of an exited child through its pidfd
   * (`waitid(P_PIDFD, WNOHANG)`), without blocking: wait with
   * {@linkcode Libc.pidfdWait} first. `null` when there is none to collect
   * yet: still running, or exited while a process that traces it (its own
   * user may) has not let go of it.
   */
  reap(pidfd: number): ExitStatus | null;
  /**
   * Become a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): an orphaned
   * descendant is reparented to this process, not to init, so its pid stays
   * taken, even once it has exited, until this process reaps it or ends.
   * An ignored SIGCHLD is set back to its default first. For a short-lived
   * process: the orphans that exit meanwhile stay zombies until it ends.
   */
  becomeSubreaper(): void;
  /** `unlink(2)`. */
  unlink(path: string): void;
  /** `fchown(2)`. */
  fchown(fd: number, uid: number, gid: number): void;
  /** Look a user up by name or by numeric uid; `null` when there is none. */
  lookupUser(nameOrUid: string): UserEntry | null;
  /** Look a group up by name or by numeric gid; `null` when there is none. */
  lookupGroup(nameOrGid: string): GroupEntry | null;
  /** Set the supplementary groups to exactly `gids` (`setgroups(2)`). */
  setgroups(gids: number[]): void;
  /** Set the supplementary groups from the group database (`initgroups(3)`). */
  initgroups(user: string, gid: number): void;
  /** `setgid(3)`: every thread's real, effective and saved gid. */
  setgid(gid: number): void;
  /** `setuid(3)`: every thread's real, effective and saved uid. */
  setuid(uid: number): void;
  /** `prctl(PR_SET_NO_NEW_PRIVS)`: execve can no longer grant privileges (calling thread and its future children). */
  setNoNewPrivs(): void;
  /** `setrlimit(RLIMIT_CORE, 0)`: no core files. */
  disableCoreDumps(): void;
  /**
   * Send one datagram to a Unix socket: a path, or an abstract name written
   * with a leading `@` (the sd_notify convention). With `nonBlocking`, a
   * receiver whose queue is full fails the call with `EAGAIN` instead of
   * making it wait.
   */
  sendDatagram(
    address: string,
    data: Uint8Array,
    opts?: { nonBlocking?: boolean },
  ): void;
  /** Bind a Unix datagram socket at `address` (path or `@abstract`); returns its descriptor. */
  bindDatagram(address: string): number;
  /**
   * The local port of a listening TCP socket on descriptor `fd`
   * (`SO_ACCEPTCONN`, `getsockname`), or `null` when `fd` is none.
   */
  tcpListenerPort(fd: number): number | null;
  /**
   * Attach a classic BPF program to the `SO_REUSEPORT` group of socket `fd`
   * (`SO_ATTACH_REUSEPORT_CBPF`): it returns the index of the socket, in
   * the order they joined, that gets each new connection.
   */
  attachReuseportFilter(fd: number, program: readonly BpfInstruction[]): void;
  /** Wait up to `timeoutMs` for one datagram on a bound socket; `null` on timeout. */
  receiveDatagram(fd: number, timeoutMs: number): Promise<Uint8Array | null>;
  /** `CLOCK_MONOTONIC` in microseconds, as systemd's `MONOTONIC_USEC` wants it. */
  monotonicMicros(): bigint;
}

/** Errno names the library reacts to, so callers never compare raw numbers. */
export type ErrnoName =
  | "EPERM"
  | "ENOENT"
  | "ESRCH"
  | "EINTR"
  | "EBADF"
  | "EAGAIN"
  | "EACCES"
  | "EEXIST"
  | "ENXIO"
  | "ENOTDIR"
  | "EISDIR"
  | "EINVAL"
  | "ENOSPC"
  | "EROFS"
  | "ELOOP"
  | "ENAMETOOLONG"
  | "ENOSYS"
  | "EWOULDBLOCK"
  | "UNKNOWN";

/**
 * A failed system call: which call, on what, and the errno.
 *
 * Callers tell "lock held" from "permission denied" by {@linkcode SysError.code},
 * never by parsing the message.
 *
 * @example Telling errors apart
 * ```ts
 * import { SysError } from "./types.ts";
 * const err = new SysError("open", "/run/x.pid", 13, "EACCES", "Permission denied");
 * console.log(err.code === "EACCES"); // true
 * console.log(err.message); // open "/run/x.pid": Permission denied
 * ```
 */
export class SysError extends Error {
  /** The libc function that failed, e.g. `"open"`. */
  readonly syscall: string;
  /** The errno value. */
  readonly errno: number;
  /** The errno name, or `"UNKNOWN"` for one the library does not name. */
  readonly code: ErrnoName;
  /** The text of `strerror(errno)`. */
  readonly reason: string;

  /**
   * Describe a failed libc call; the message names the call and its object.
   *
   * @param syscall The libc function that failed.
   * @param object What it was called on (a path, a pid), or `""`.
   * @param errno The errno value.
   * @param code Its name.
   * @param reason `strerror(errno)`.
   */
  constructor(
    syscall: string,
    object: string,
    errno: number,
    code: ErrnoName,
    reason: string,
  ) {
    super(
      object === ""
        ? `${syscall}: ${reason}`
        : `${syscall} ${JSON.stringify(object)}: ${reason}`,
    );
    this.name = "SysError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.reason = reason;
  }
}
