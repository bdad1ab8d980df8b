/**
 * Linux (glibc, x86_64 and aarch64) implementation of {@linkcode Libc}.
 *
 * The only file that knows glibc symbol names, flag values and struct
 * layouts. Variadic functions (`open`, `fcntl`, `syscall`) are called here
 * only because their calling convention matches the fixed one on these two
 * architectures.
 *
 * @module
 */
import {
  type ErrnoName,
  type FileStat,
  type FileType,
  type GroupEntry,
  type Libc,
  type ProcessView,
  type SpawnRequest,
  SysError,
  type UserEntry,
} from "./types.ts";

const SYMBOLS = {
  /** The address of `char **environ`, read at each spawn: setenv() moves it. */
  environ: { type: "pointer" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "pointer"],
    result: "i32",
  },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: {
    parameters: ["buffer", "i32", "i32"],
    result: "i32",
  },
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  posix_spawn_file_actions_addclosefrom_np: {
    parameters: ["buffer", "i32"],
    result: "i32",
    optional: true,
  },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigmask: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  posix_spawnattr_setsigdefault: {
    parameters: ["buffer", "buffer"],
    result: "i32",
  },
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  sigfillset: { parameters: ["buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read_async: {
    name: "read",
    parameters: ["i32", "buffer", "usize"],
    result: "isize",
    nonblocking: true,
  },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  statx: {
    parameters: ["i32", "buffer", "i32", "u32", "buffer"],
    result: "i32",
  },
  umask: { parameters: ["u32"], result: "u32" },
  chdir: { parameters: ["buffer"], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64"], result: "i64" },
  waitid: { parameters: ["i32", "u32", "buffer", "i32"], result: "i32" },
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  getpwnam: { parameters: ["buffer"], result: "pointer" },
  getpwuid: { parameters: ["u32"], result: "pointer" },
  getgrnam: { parameters: ["buffer"], result: "pointer" },
  getgrgid: { parameters: ["u32"], result: "pointer" },
  setgroups: { parameters: ["usize", "buffer"], result: "i32" },
  initgroups: { parameters: ["buffer", "u32"], result: "i32" },
  setgid: { parameters: ["u32"], result: "i32" },
  setuid: { parameters: ["u32"], result: "i32" },
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  recv_async: {
    name: "recv",
    parameters: ["i32", "buffer", "usize", "i32"],
    result: "isize",
    nonblocking: true,
  },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  poll: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const;

/** Linux values that differ by architecture. */
const ARCH = {
  x86_64: { O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
  aarch64: { O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
} as const;

const O_RDONLY = 0;
const O_WRONLY = 0o1;
const O_RDWR = 0o2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_NONBLOCK = 0o4000;
const O_PATH = 0o10000000;
const O_NOCTTY = 0o400;
const O_APPEND = 0o2000;
const O_CLOEXEC = 0o2000000;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const F_GETFD = 1;
const F_SETFD = 2;
const F_DUPFD_CLOEXEC = 1030;
const F_GET_SEALS = 1034;
const FD_CLOEXEC = 1;
const MFD_CLOEXEC = 1;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const POLLIN = 1;
const PR_SET_NO_NEW_PRIVS = 38;
const P_PIDFD = 3;
const WEXITED = 4;
/** `siginfo_t` is 128 bytes; `si_code` at 8, `si_status` at 24 for SIGCHLD. */
const SIGINFO_SIZE = 128;
const CLD_EXITED = 1;
const CLD_DUMPED = 3;
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = O_CLOEXEC;
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;
/** `struct sockaddr_un`: a 2-byte family, then 108 bytes of path. */
const SUN_PATH_MAX = 108;
const CLOCK_MONOTONIC = 1;
/** `struct dirent` (glibc, 64-bit): d_ino, d_off, d_reclen, d_type, then d_name. */
const DIRENT_NAME_OFFSET = 19;
const RLIMIT_CORE = 4;
/** Ids above this are not valid uids or gids ((uid_t)-1 means "unchanged"). */
const MAX_ID = 0xfffffffe;
/** Descriptors are parked at or above this number while spawn actions run. */
const PARK_FD = 64;

/** `posix_spawnattr_t` is 336 bytes and `posix_spawn_file_actions_t` 80 in glibc; room to spare. */
const SPAWNATTR_SIZE = 512;
const FILE_ACTIONS_SIZE = 256;
/** `sigset_t` in glibc: 1024 bits. */
const SIGSET_SIZE = 128;
/** `struct statx` is 256 bytes on every architecture. */
const STATX_SIZE = 256;

const FILE_TYPES: Record<number, FileType> = {
  0o100000: "file",
  0o040000: "directory",
  0o120000: "symlink",
  0o010000: "fifo",
  0o140000: "socket",
  0o020000: "char-device",
  0o060000: "block-device",
};

/** Clock ticks per second in `/proc/PID/stat` (USER_HZ: 100 on every Linux architecture). */
const USER_HZ = 100;

/**
 * Linux errno values by name: the only place their numbers appear. Every
 * name in {@linkcode ErrnoName} is here, so the two cannot drift apart;
 * `EWOULDBLOCK` is `EAGAIN` on Linux and is reported as `EAGAIN`.
 */
const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ELOOP: 40,
} as const satisfies Record<
  Exclude<ErrnoName, "EWOULDBLOCK" | "UNKNOWN">,
  number
>;

/** Errno names by number, for {@linkcode SysError.code}. */
const ERRNO_NAMES = new Map<number, ErrnoName>(
  Object.entries(ERRNO).map(([name, n]) => [n, name as ErrnoName]),
);

const SIGNALS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGPWR: 30,
  SIGSYS: 31,
};

/** Signal names by number, for reporting how a process ended. */
const SIGNAL_NAMES = new Map(
  Object.entries(SIGNALS).map(([name, n]) => [n, name]),
);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A NUL-terminated copy of `s` for passing as `const char *`. */
function cstr(s: string): Uint8Array<ArrayBuffer> {
  if (s.includes("\0")) {
    throw new TypeError(`String contains a NUL byte: ${JSON.stringify(s)}`);
  }
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Build a `char *const[]` from strings. The returned `keep` array owns the
 * string buffers: hold it until the call that uses the vector returns.
 */
function cvector(strings: string[]): {
  vector: BigUint64Array<ArrayBuffer>;
  keep: Uint8Array[];
} {
  const keep = strings.map(cstr);
  const vector = new BigUint64Array(keep.length + 1);
  keep.forEach((buf, i) => {
    vector[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  });
  return { vector, keep };
}

/**
 * Binds each declared symbol on first use and keeps it: binding all of them
 * up front costs several milliseconds of every start-up, and most commands
 * use a handful. What {@linkcode SymbolCache.get} returns has the types of
 * the symbol's declaration in `S`.
 */
class SymbolCache<S extends Deno.ForeignLibraryInterface> {
  readonly #path: string;
  readonly #symbols: S;
  readonly #bound = new Map<keyof S, unknown>();

  constructor(path: string, symbols: S) {
    this.#path = path;
    this.#symbols = symbols;
  }

  /** The bound symbol `name` (`null` for a missing optional one). */
  get<N extends keyof S & string>(
    name: N,
  ): Deno.StaticForeignLibraryInterface<S>[N] {
    if (!this.#bound.has(name)) {
      const one = { [name]: this.#symbols[name] } as Pick<S, N>;
      this.#bound.set(name, Deno.dlopen(this.#path, one).symbols[name]);
    }
    return this.#bound.get(name) as Deno.StaticForeignLibraryInterface<S>[N];
  }
}

/** glibc's `makedev()`: a major and minor number as one `dev_t`. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) |
    ((ma & ~0xfffn) << 32n);
}

/** Open libc and return the Linux implementation of {@linkcode Libc}. */
export function linuxLibc(): Libc {
  const arch = ARCH[Deno.build.arch as keyof typeof ARCH];
  if (arch === undefined) {
    throw new Error(
      `Linux on ${JSON.stringify(Deno.build.arch)} is not supported`,
    );
  }
  const symbols = new SymbolCache("libc.so.6", SYMBOLS);
  const symbol = <N extends keyof typeof SYMBOLS>(name: N) => symbols.get(name);
  /** Datagram sockets kept for sendDatagram, by address. */
  const senders = new Map<string, number>();
  const O_NOFOLLOW = arch.O_NOFOLLOW;

  // errno is read through a view made once: binding a symbol later, or any
  // other call between the failing one and the read, may overwrite errno.
  // Synchronous calls all run on this thread, so its errno address holds.
  const errnoAt = symbol("__errno_location")();
  const errnoView = errnoAt === null
    ? null
    : new Deno.UnsafePointerView(errnoAt);

  function errno(): number {
    return errnoView === null ? 0 : errnoView.getInt32();
  }

  function sysError(syscall: string, object: string, code: number): SysError {
    const p = symbol("strerror")(code);
    const reason = p === null
      ? `errno ${code}`
      : Deno.UnsafePointerView.getCString(p);
    return new SysError(
      syscall,
      object,
      code,
      ERRNO_NAMES.get(code) ?? "UNKNOWN",
      reason,
    );
  }

  /** Run `call` until it does not fail with EINTR; throw on -1. */
  function check<T extends number | bigint>(
    syscall: string,
    object: string,
    call: () => T,
  ): T {
    for (;;) {
      const r = call();
      if (Number(r) !== -1) return r;
      const e = errno();
      if (e !== ERRNO.EINTR) throw sysError(syscall, object, e);
    }
  }

  /** Throw for a nonzero return of a function that returns an error number. */
  function checkRc(syscall: string, object: string, rc: number): void {
    if (rc !== 0) throw sysError(syscall, object, rc);
  }

  /** Write all of `data` with `call`, resuming after short writes. */
  function writeAll(
    syscall: string,
    fd: number,
    data: Uint8Array,
    call: (chunk: Uint8Array, offset: number) => number | bigint,
  ): void {
    let off = 0;
    while (off < data.length) {
      const chunk = data.subarray(off);
      off += Number(check(syscall, `fd ${fd}`, () => call(chunk, off)));
    }
  }

  /** A `sockaddr_un` for a path or an `@abstract` name, and its length. */
  function unixAddress(address: string): [Uint8Array, number] {
    const abstract = address.startsWith("@");
    const name = encoder.encode(abstract ? address.slice(1) : address);
    const len = 2 + (abstract ? 1 + name.length : name.length + 1);
    if (name.length === 0 || name.includes(0) || len > 2 + SUN_PATH_MAX) {
      throw new TypeError(
        `Invalid Unix socket address ${JSON.stringify(address)}`,
      );
    }
    const buf = new Uint8Array(2 + SUN_PATH_MAX);
    new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
    buf.set(name, abstract ? 3 : 2);
    return [buf, len];
  }

  function datagramSocket(address: string): number {
    return check(
      "socket",
      address,
      () => symbol("socket")(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0),
    );
  }

  /**
   * poll(2) for POLLIN on another thread; `true` once readable. An infinite
   * timeout blocks that thread in the kernel: no wake-ups until it happens.
   */
  async function waitReadable(fd: number, timeoutMs: number): Promise<boolean> {
    const pfd = new Uint8Array(8);
    const v = new DataView(pfd.buffer);
    v.setInt32(0, fd, true);
    v.setInt16(4, POLLIN, true);
    for (;;) {
      const started = performance.now();
      const ms = timeoutMs === Infinity
        ? -1
        : Math.max(0, Math.round(timeoutMs));
      const n = await symbol("poll")(pfd, 1n, ms);
      if (n > 0) return true;
      if (n === 0) return false;
      // poll ran on another thread, so its errno is out of reach: the only
      // retryable failure is EINTR, so retry with the time that is left.
      timeoutMs -= performance.now() - started;
      if (timeoutMs <= 0) return false;
    }
  }

  function readAll(fd: number): Uint8Array {
    return readUpTo(fd, Infinity)!;
  }

  /** The file's bytes from offset 0, or `null` when it holds more than `max`. */
  function readUpTo(fd: number, max: number): Uint8Array | null {
    const parts: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      if (off > max) return null;
      const buf = new Uint8Array(4096);
      const n = Number(check(
        "pread",
        `fd ${fd}`,
        () => symbol("pread")(fd, buf, BigInt(buf.length), BigInt(off)),
      ));
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      off += n;
    }
    const out = new Uint8Array(off);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Call the by-id lookup for a decimal id, the by-name one otherwise. */
  function byNameOrId(
    value: string,
    byId: (id: number) => Deno.PointerValue,
    byName: (name: Uint8Array<ArrayBuffer>) => Deno.PointerValue,
  ): Deno.PointerValue {
    if (!/^[0-9]{1,10}$/.test(value)) return byName(cstr(value));
    return Number(value) <= MAX_ID ? byId(Number(value)) : null;
  }

  /** Target of the symbolic link `path`, or `null` when it is none. */
  function readlink(path: string): string | null {
    const p = cstr(path);
    const buf = new Uint8Array(4096);
    const n = symbol("readlink")(p, buf, BigInt(buf.length));
    if (Number(n) === -1) {
      const e = errno();
      if (e === ERRNO.EINVAL || e === ERRNO.ENOENT) return null;
      throw sysError("readlink", path, e);
    }
    return decoder.decode(buf.subarray(0, Number(n)));
  }

  /** A whole file under /proc, read with open(2) and pread(2). */
  function readProc(path: string): Uint8Array {
    const fd = open(path, {});
    try {
      return readAll(fd);
    } finally {
      symbol("close")(fd);
    }
  }

  /** The descriptor numbers in `/proc/<who>/fd`. */
  function listFds(who: string): number[] {
    const path = `/proc/${who}/fd`;
    const dir = symbol("opendir")(cstr(path));
    if (dir === null) throw sysError("opendir", path, errno());
    const fds: number[] = [];
    try {
      for (
        let e = symbol("readdir")(dir);
        e !== null;
        e = symbol("readdir")(dir)
      ) {
        const name = Deno.UnsafePointerView.getCString(e, DIRENT_NAME_OFFSET);
        if (/^[0-9]+$/.test(name)) fds.push(Number(name));
      }
    } finally {
      symbol("closedir")(dir);
    }
    return fds;
  }

  /** Process `pid`'s descriptor numbers, or `null` when they cannot be read. */
  function fdsOf(pid: number): number[] | null {
    try {
      return listFds(String(pid));
    } catch {
      return null;
    }
  }

  /** open(2) that follows links (for /proc's descriptor links); -1 on failure. */
  function openRaw(path: string, flags: number): number {
    const p = cstr(path);
    for (;;) {
      const fd = symbol("open")(p, flags, 0);
      if (fd !== -1 || errno() !== ERRNO.EINTR) return fd;
    }
  }

  /**
   * Whether process `pid` has a descriptor on `file` whose open file
   * description holds an exclusive flock: fdinfo lists the locks of that
   * description only. `null` when its descriptors cannot be read.
   */
  function holdsLock(
    pid: number,
    file: { dev: string; ino: bigint },
  ): boolean | null {
    const fds = fdsOf(pid);
    if (fds === null) return null;
    for (const n of fds) {
      let st: FileStat;
      try {
        st = stat(`/proc/${pid}/fd/${n}`, true);
      } catch {
        continue;
      }
      if (st.dev !== file.dev || st.ino !== file.ino) continue;
      try {
        const info = decoder.decode(readProc(`/proc/${pid}/fdinfo/${n}`));
        if (/^lock:\s+\d+: FLOCK\s+ADVISORY\s+WRITE /m.test(info)) return true;
      } catch {
        // closed meanwhile
      }
    }
    return false;
  }

  function signalNumber(signal: Deno.Signal): number {
    const n = SIGNALS[signal];
    if (n === undefined) throw new TypeError(`Unknown signal ${signal}`);
    return n;
  }

  function setCloexec(fd: number, on: boolean): void {
    const flags = check(
      "fcntl",
      `fd ${fd}`,
      () => symbol("fcntl")(fd, F_GETFD, 0),
    );
    const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
    check("fcntl", `fd ${fd}`, () => symbol("fcntl")(fd, F_SETFD, next));
  }

  function spawn(req: SpawnRequest): number {
    const closefrom = symbol("posix_spawn_file_actions_addclosefrom_np");
    if (closefrom === null) {
      throw new Error(
        "Spawning needs posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later)",
      );
    }
    const path = cstr(req.path);
    const argv = cvector(req.argv);
    const env = req.env === undefined ? null : cvector(req.env);
    const actions = new Uint8Array(FILE_ACTIONS_SIZE);
    const attr = new Uint8Array(SPAWNATTR_SIZE);
    const sigset = new Uint8Array(SIGSET_SIZE);
    const keep: Uint8Array[] = [];
    const parked: number[] = [];
    checkRc(
      "posix_spawn_file_actions_init",
      "",
      symbol("posix_spawn_file_actions_init")(actions),
    );
    checkRc("posix_spawnattr_init", "", symbol("posix_spawnattr_init")(attr));
    try {
      // Park every source descriptor above the targets so that no dup2
      // action can overwrite a source that a later action still needs.
      for (const spec of req.fds) {
        if ("dup" in spec) {
          const src = spec.dup;
          const tmp = check(
            "fcntl",
            `fd ${src}`,
            () => symbol("fcntl")(src, F_DUPFD_CLOEXEC, PARK_FD),
          );
          parked.push(tmp);
          checkRc(
            "posix_spawn_file_actions_adddup2",
            `fd ${spec.fd}`,
            symbol("posix_spawn_file_actions_adddup2")(actions, tmp, spec.fd),
          );
        } else {
          const p = cstr(spec.open);
          keep.push(p);
          const flags = O_NOCTTY | O_NOFOLLOW |
            (spec.write
              ? O_WRONLY | O_CREAT | (spec.append ? O_APPEND : 0)
              : 0);
          checkRc(
            "posix_spawn_file_actions_addopen",
            spec.open,
            symbol("posix_spawn_file_actions_addopen")(
              actions,
              spec.fd,
              p,
              flags,
              0o640,
            ),
          );
        }
      }
      const top = Math.max(2, ...req.fds.map((s) => s.fd));
      checkRc(
        "posix_spawn_file_actions_addclosefrom_np",
        "",
        closefrom(actions, top + 1),
      );
      let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
      if (req.setsid) flags |= POSIX_SPAWN_SETSID;
      checkRc(
        "posix_spawnattr_setflags",
        "",
        symbol("posix_spawnattr_setflags")(attr, flags),
      );
      symbol("sigemptyset")(sigset);
      checkRc(
        "posix_spawnattr_setsigmask",
        "",
        symbol("posix_spawnattr_setsigmask")(attr, sigset),
      );
      symbol("sigfillset")(sigset);
      checkRc(
        "posix_spawnattr_setsigdefault",
        "",
        symbol("posix_spawnattr_setsigdefault")(attr, sigset),
      );
      const pid = new Int32Array(1);
      const envp = env === null
        ? new Deno.UnsafePointerView(symbol("environ")!).getPointer(0)
        : Deno.UnsafePointer.of(env.vector);
      checkRc(
        "posix_spawn",
        req.path,
        symbol("posix_spawn")(pid, path, actions, attr, argv.vector, envp),
      );
      return pid[0];
    } finally {
      for (const fd of parked) symbol("close")(fd);
      symbol("posix_spawn_file_actions_destroy")(actions);
      symbol("posix_spawnattr_destroy")(attr);
      // The vectors must stay reachable until posix_spawn has returned.
      void argv.keep.length;
      void env?.keep.length;
      void keep.length;
    }
  }

  function open(
    path: string,
    flags: { write?: boolean; create?: boolean; append?: boolean },
    mode = 0o644,
  ): number {
    const p = cstr(path);
    const f = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
      (flags.write ? (flags.append ? O_WRONLY | O_APPEND : O_RDWR) : 0) |
      (flags.create ? O_CREAT : 0);
    return check("open", path, () => symbol("open")(p, f, mode));
  }

  function stat(target: string | number, follow = false): FileStat {
    const buf = new Uint8Array(STATX_SIZE);
    if (typeof target === "number") {
      const empty = cstr("");
      check(
        "statx",
        `fd ${target}`,
        () =>
          symbol("statx")(target, empty, AT_EMPTY_PATH, STATX_BASIC_STATS, buf),
      );
    } else {
      const p = cstr(target);
      check(
        "statx",
        target,
        () =>
          symbol("statx")(
            AT_FDCWD,
            p,
            follow ? 0 : AT_SYMLINK_NOFOLLOW,
            STATX_BASIC_STATS,
            buf,
          ),
      );
    }
    const v = new DataView(buf.buffer);
    const mode = v.getUint16(28, true);
    return {
      type: FILE_TYPES[mode & 0o170000] ?? "file",
      uid: v.getUint32(20, true),
      gid: v.getUint32(24, true),
      nlink: v.getUint32(16, true),
      rdev: `${v.getUint32(128, true)}:${v.getUint32(132, true)}`,
      mode: mode & 0o7777,
      ino: v.getBigUint64(32, true),
      size: Number(v.getBigUint64(40, true)),
      dev: `${v.getUint32(136, true)}:${v.getUint32(140, true)}`,
      devNumber: makedev(v.getUint32(136, true), v.getUint32(140, true)),
    };
  }

  return {
    spawn,
    open,
    stat: (target) => stat(target),
    setCloexec,
    close(fd) {
      // close(2) must not be retried on EINTR: the descriptor is gone either way.
      if (symbol("close")(fd) === -1) {
        const e = errno();
        if (e !== ERRNO.EINTR) throw sysError("close", `fd ${fd}`, e);
      }
    },
    async readAsync(fd, max) {
      const buf = new Uint8Array(max);
      // errno is lost on the worker thread; -1 here is reported as a plain failure.
      const n = Number(await symbol("read_async")(fd, buf, BigInt(max)));
      if (n < 0) throw new Error(`read of fd ${fd} failed`);
      return buf.subarray(0, n);
    },
    fchmod(fd, mode) {
      check("fchmod", `fd ${fd}`, () => symbol("fchmod")(fd, mode));
    },
    write(fd, data) {
      writeAll(
        "write",
        fd,
        data,
        (chunk) => symbol("write")(fd, chunk, BigInt(chunk.length)),
      );
    },
    replace(fd, data) {
      writeAll(
        "pwrite",
        fd,
        data,
        (chunk, off) =>
          symbol("pwrite")(fd, chunk, BigInt(chunk.length), BigInt(off)),
      );
      check(
        "ftruncate",
        `fd ${fd}`,
        () => symbol("ftruncate")(fd, BigInt(data.length)),
      );
    },
    readAll,
    tryLock(fd, exclusive) {
      const op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
      for (;;) {
        if (symbol("flock")(fd, op) === 0) return true;
        const e = errno();
        if (e === ERRNO.EAGAIN) return false;
        if (e !== ERRNO.EINTR) throw sysError("flock", `fd ${fd}`, e);
      }
    },
    pipe() {
      const fds = new Int32Array(2);
      check("pipe2", "", () => symbol("pipe2")(fds, O_CLOEXEC));
      return [fds[0], fds[1]];
    },
    dup2(fd, target) {
      check("dup2", `fd ${fd}`, () => symbol("dup2")(fd, target));
    },
    memfd(name, data) {
      const n = cstr(name);
      const fd = check(
        "memfd_create",
        name,
        () => symbol("memfd_create")(n, MFD_CLOEXEC),
      );
      try {
        this.replace(fd, data);
      } catch (err) {
        symbol("close")(fd);
        throw err;
      }
      return fd;
    },
    memfdName(fd) {
      const link = readlink(`/proc/self/fd/${fd}`);
      const m = link?.match(/^\/memfd:(.*) \(deleted\)$/);
      return m ? m[1] : null;
    },
    // /proc is read through libc: Deno grants /proc/self only with
    // --allow-all, and a compiled daemon runs with fewer permissions.
    openFds() {
      return listFds("self");
    },
    readBounded(fd, max) {
      return readUpTo(fd, max);
    },
    openAt(dir, name, flags, mode = 0o600) {
      const p = cstr(name);
      const f = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
        (flags.path ? O_PATH : O_NONBLOCK |
          (flags.write ? (flags.append ? O_WRONLY | O_APPEND : O_RDWR) : 0) |
          (flags.create ? O_CREAT : 0) |
          (flags.exclusive ? O_EXCL : 0));
      return check(
        "openat",
        name,
        () => symbol("openat")(dir ?? AT_FDCWD, p, f, mode),
      );
    },
    processView(pid, lockOn) {
      let status: string;
      try {
        status = decoder.decode(readProc(`/proc/${pid}/status`));
      } catch {
        return null;
      }
      const field = (name: string) =>
        status.match(new RegExp(`^${name}:\\s*([^\\n]*)`, "m"))?.[1] ?? "";
      const [uid, euid] = field("Uid").split(/\s+/).map(Number);
      let exe: string | null = null;
      try {
        exe = readlink(`/proc/${pid}/exe`)?.replace(/ \(deleted\)$/, "") ??
          null;
      } catch {
        // Another user's process, seen by a non-root caller.
      }
      return {
        exe,
        uid,
        euid,
        ppid: Number(field("PPid")),
        holdsLock: lockOn === undefined ? null : holdsLock(pid, lockOn),
      } satisfies ProcessView;
    },
    readProcessMemfd(pid, name, max, owners) {
      const want = `/memfd:${name} (deleted)`;
      for (const n of fdsOf(pid) ?? []) {
        try {
          if (readlink(`/proc/${pid}/fd/${n}`) !== want) continue;
        } catch {
          continue;
        }
        // O_PATH takes the file without opening it (no device or FIFO is
        // ever opened). The process may have swapped descriptor n since the
        // name was read, so what we hold is judged again: the memfd's name,
        // an owner it may write as, a memory file. Only then is our own
        // handle reopened, which reads exactly that file.
        const handle = openRaw(`/proc/${pid}/fd/${n}`, O_PATH | O_CLOEXEC);
        if (handle < 0) continue;
        try {
          const st = stat(handle);
          if (
            st.type !== "file" || !owners.includes(st.uid) ||
            readlink(`/proc/self/fd/${handle}`) !== want
          ) continue;
          const fd = openRaw(
            `/proc/self/fd/${handle}`,
            O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
          );
          if (fd < 0) continue;
          try {
            // Only memory files (memfd, shmem) have seals.
            if (symbol("fcntl")(fd, F_GET_SEALS, 0) === -1) continue;
            return readUpTo(fd, max);
          } finally {
            symbol("close")(fd);
          }
        } catch {
          continue;
        } finally {
          symbol("close")(handle);
        }
      }
      return null;
    },
    selfCommand() {
      const raw = decoder.decode(readProc("/proc/self/cmdline"));
      return {
        path: Deno.execPath(),
        argv: raw.replace(/\0$/, "").split("\0"),
      };
    },
    selfArgvBytes() {
      const raw = readProc("/proc/self/cmdline");
      // Each argument ends in a NUL.
      const args: Uint8Array[] = [];
      for (let start = 0, i = 0; i < raw.length; i++) {
        if (raw[i] === 0) {
          args.push(raw.subarray(start, i));
          start = i + 1;
        }
      }
      return args;
    },
    processAge(pid) {
      try {
        const stat = decoder.decode(readProc(`/proc/${pid}/stat`));
        // starttime is field 22; fields are counted after the ")" that ends comm.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const started = Number(fields[19]) / USER_HZ;
        const up = Number(
          decoder.decode(readProc("/proc/uptime")).split(" ")[0],
        );
        return Math.max(0, Math.round(up - started));
      } catch {
        return undefined;
      }
    },
    umask(mask) {
      return symbol("umask")(mask);
    },
    chdir(path) {
      const p = cstr(path);
      check("chdir", path, () => symbol("chdir")(p));
    },
    getpid: () => symbol("getpid")(),
    geteuid: () => symbol("geteuid")(),
    pidfdOpen(pid) {
      return Number(check(
        "pidfd_open",
        `pid ${pid}`,
        () =>
          symbol("syscall")(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n, 0n, 0n),
      ));
    },
    pidfdSignal(pidfd, signal) {
      const n = signalNumber(signal);
      check(
        "pidfd_send_signal",
        `fd ${pidfd}`,
        () =>
          symbol("syscall")(
            BigInt(SYS_PIDFD_SEND_SIGNAL),
            BigInt(pidfd),
            BigInt(n),
            0n,
            0n,
          ),
      );
    },
    pidfdWait(pidfd, timeoutMs) {
      return waitReadable(pidfd, timeoutMs);
    },
    reap(pidfd) {
      const info = new Uint8Array(SIGINFO_SIZE);
      check(
        "waitid",
        `fd ${pidfd}`,
        () => symbol("waitid")(P_PIDFD, pidfd, info, WEXITED),
      );
      const v = new DataView(info.buffer);
      const code = v.getInt32(8, true);
      const status = v.getInt32(24, true);
      if (code === CLD_EXITED) return { exited: true, code: status };
      return {
        exited: false,
        signal: SIGNAL_NAMES.get(status) ?? String(status),
        coreDumped: code === CLD_DUMPED,
      };
    },
    fchown(fd, uid, gid) {
      check("fchown", `fd ${fd}`, () => symbol("fchown")(fd, uid, gid));
    },
    lookupUser(nameOrUid) {
      const p = byNameOrId(nameOrUid, symbol("getpwuid"), symbol("getpwnam"));
      if (p === null) return null;
      // struct passwd: pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell
      const v = new Deno.UnsafePointerView(p);
      return {
        name: Deno.UnsafePointerView.getCString(v.getPointer(0)!),
        uid: v.getUint32(16),
        gid: v.getUint32(20),
        home: Deno.UnsafePointerView.getCString(v.getPointer(32)!),
      } satisfies UserEntry;
    },
    lookupGroup(nameOrGid) {
      const p = byNameOrId(nameOrGid, symbol("getgrgid"), symbol("getgrnam"));
      if (p === null) return null;
      // struct group: gr_name, gr_passwd, gr_gid, gr_mem
      const v = new Deno.UnsafePointerView(p);
      return {
        name: Deno.UnsafePointerView.getCString(v.getPointer(0)!),
        gid: v.getUint32(16),
      } satisfies GroupEntry;
    },
    setgroups(gids) {
      const list = new Uint32Array(gids);
      check(
        "setgroups",
        "",
        () => symbol("setgroups")(BigInt(list.length), list),
      );
    },
    initgroups(user, gid) {
      const u = cstr(user);
      check("initgroups", user, () => symbol("initgroups")(u, gid));
    },
    setgid(gid) {
      check("setgid", String(gid), () => symbol("setgid")(gid));
    },
    setuid(uid) {
      check("setuid", String(uid), () => symbol("setuid")(uid));
    },
    setNoNewPrivs() {
      check(
        "prctl",
        "PR_SET_NO_NEW_PRIVS",
        () => symbol("prctl")(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n),
      );
    },
    disableCoreDumps() {
      const rlimit = new BigUint64Array([0n, 0n]);
      check(
        "setrlimit",
        "RLIMIT_CORE",
        () => symbol("setrlimit")(RLIMIT_CORE, rlimit),
      );
    },
    sendDatagram(address, data, opts) {
      const [addr, len] = unixAddress(address);
      // One unconnected socket per address, kept: sendto names the address
      // each time, so a restarted listener is reached again.
      let fd = senders.get(address);
      if (fd === undefined) {
        fd = datagramSocket(address);
        senders.set(address, fd);
      }
      const sock = fd;
      const flags = MSG_NOSIGNAL | (opts?.nonBlocking ? MSG_DONTWAIT : 0);
      check(
        "sendto",
        address,
        () =>
          symbol("sendto")(sock, data, BigInt(data.length), flags, addr, len),
      );
    },
    bindDatagram(address) {
      const [addr, len] = unixAddress(address);
      const fd = datagramSocket(address);
      try {
        check("bind", address, () => symbol("bind")(fd, addr, len));
      } catch (err) {
        symbol("close")(fd);
        throw err;
      }
      return fd;
    },
    async receiveDatagram(fd, timeoutMs) {
      if (!(await waitReadable(fd, timeoutMs))) return null;
      const buf = new Uint8Array(65536);
      const n = Number(
        await symbol("recv_async")(fd, buf, BigInt(buf.length), MSG_DONTWAIT),
      );
      return n < 0 ? null : buf.slice(0, n);
    },
    monotonicMicros() {
      const ts = new BigInt64Array(2);
      check(
        "clock_gettime",
        "CLOCK_MONOTONIC",
        () => symbol("clock_gettime")(CLOCK_MONOTONIC, ts),
      );
      return ts[0] * 1_000_000n + ts[1] / 1000n;
    },
    unlink(path) {
      const p = cstr(path);
      check("unlink", path, () => symbol("unlink")(p));
    },
  };
}
