/**
 * The glibc symbols the Linux implementation calls, declared `as const` so
 * that each bound function has the types of its declaration, and the cache
 * that binds them.
 *
 * @module
 */

/** The C library every symbol is looked up in. */
export const LIBRARY = "libc.so.6";

/** Every glibc function (and the one variable) the Linux implementation uses. */
export const SYMBOLS = {
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
  posix_spawn_file_actions_addclose: {
    parameters: ["buffer", "i32"],
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
  sigaddset: { parameters: ["buffer", "i32"], result: "i32" },
  pthread_sigmask: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
  sigaction: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
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
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  setsockopt: {
    parameters: ["i32", "i32", "i32", "buffer", "u32"],
    result: "i32",
  },
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
  poll_now: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
  },
} as const;

/** The declarations in {@linkcode SYMBOLS}. */
export type Symbols = typeof SYMBOLS;

/** The name of a declared symbol. */
export type SymbolName = keyof Symbols;

/** Symbol `N` once bound: a function with its declared parameter and result types. */
export type Bound<N extends SymbolName> = Deno.StaticForeignLibraryInterface<
  Symbols
>[N];

/**
 * Binds each declared symbol on first use and keeps it: binding all of them
 * up front costs several milliseconds of every start-up, and most commands
 * use a handful. What {@linkcode SymbolCache.get} returns has the types of
 * the symbol's declaration in `S`.
 */
export class SymbolCache<S extends Deno.ForeignLibraryInterface> {
  readonly #path: string;
  readonly #symbols: S;
  readonly #bound = new Map<keyof S, unknown>();

  /**
   * A cache that has bound nothing yet.
   *
   * @param path The library to open.
   * @param symbols The declarations to bind from it, one at a time.
   */
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
