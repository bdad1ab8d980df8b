/**
 * Spawning a process with `posix_spawn(3)`: descriptors placed in order,
 * every other one closed, an empty signal mask (or the signals asked for
 * blocked), every signal at its default action, and optionally a new
 * session; and unblocking signals in the calling thread.
 *
 * @module
 */
import type { Libc, SpawnFd, SpawnRequest } from "../types.ts";
import {
  type Core,
  cstr,
  cvector,
  O_APPEND,
  O_CREAT,
  O_NOCTTY,
  O_WRONLY,
} from "./_core.ts";
import { signalNumber } from "./_signals.ts";

const F_DUPFD_CLOEXEC = 1030;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
/** Descriptors are parked at or above this number while spawn actions run. */
const PARK_FD = 64;
/** `posix_spawnattr_t` is 336 bytes and `posix_spawn_file_actions_t` 80 in glibc; room to spare. */
const SPAWNATTR_SIZE = 512;
const FILE_ACTIONS_SIZE = 256;
/** `sigset_t` in glibc: 1024 bits. */
const SIGSET_SIZE = 128;

/** The functions of {@linkcode Libc} that spawn processes and set their signal mask. */
export type Spawning = Pick<Libc, "spawn" | "unblockSignals">;

/** `pthread_sigmask`'s `how`. */
const SIG_UNBLOCK = 1;

/**
 * The Linux spawn functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function spawning(c: Core): Spawning {
  return {
    spawn: (req) => spawn(c, req),
    unblockSignals(signals) {
      c.checkRc(
        "pthread_sigmask",
        signals.join(" "),
        c.symbol("pthread_sigmask")(SIG_UNBLOCK, signalSet(c, signals), null),
      );
    },
  };
}

/** A `sigset_t` holding `signals`. */
function signalSet(
  c: Core,
  signals: readonly Deno.Signal[],
): Uint8Array<ArrayBuffer> {
  const set = new Uint8Array(SIGSET_SIZE);
  c.symbol("sigemptyset")(set);
  for (const signal of signals) {
    c.check(
      "sigaddset",
      signal,
      () => c.symbol("sigaddset")(set, signalNumber(signal)),
    );
  }
  return set;
}

/** {@linkcode Libc.spawn} */
function spawn(c: Core, req: SpawnRequest): number {
  const closefrom = c.symbol("posix_spawn_file_actions_addclosefrom_np");
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
  const keep: Uint8Array[] = [];
  const parked: number[] = [];
  c.checkRc(
    "posix_spawn_file_actions_init",
    "",
    c.symbol("posix_spawn_file_actions_init")(actions),
  );
  c.checkRc("posix_spawnattr_init", "", c.symbol("posix_spawnattr_init")(attr));
  try {
    for (const spec of req.fds) addFdAction(c, actions, spec, parked, keep);
    const top = Math.max(2, ...req.fds.map((s) => s.fd));
    // Below the top, a descriptor of ours without FD_CLOEXEC (another
    // thread's, opened between its open and its fcntl) would pass on.
    const placed = new Set(req.fds.map((s) => s.fd));
    for (let fd = 0; fd < top; fd++) {
      if (placed.has(fd)) continue;
      c.checkRc(
        "posix_spawn_file_actions_addclose",
        `fd ${fd}`,
        c.symbol("posix_spawn_file_actions_addclose")(actions, fd),
      );
    }
    c.checkRc(
      "posix_spawn_file_actions_addclosefrom_np",
      "",
      closefrom(actions, top + 1),
    );
    setAttributes(c, attr, req.setsid === true, req.blocked ?? []);
    const pid = new Int32Array(1);
    const envp = env === null
      ? new Deno.UnsafePointerView(c.symbol("environ")!).getPointer(0)
      : Deno.UnsafePointer.of(env.vector);
    c.checkRc(
      "posix_spawn",
      req.path,
      c.symbol("posix_spawn")(pid, path, actions, attr, argv.vector, envp),
    );
    return pid[0];
  } finally {
    for (const fd of parked) c.symbol("close")(fd);
    c.symbol("posix_spawn_file_actions_destroy")(actions);
    c.symbol("posix_spawnattr_destroy")(attr);
    // The vectors must stay reachable until posix_spawn has returned.
    void argv.keep.length;
    void env?.keep.length;
    void keep.length;
  }
}

/**
 * Add the file action that places `spec` in the child. A source descriptor
 * is parked above the targets first (and recorded in `parked`), so that no
 * dup2 action can overwrite a source that a later action still needs; a
 * path's buffer goes to `keep`, which must outlive the spawn.
 */
function addFdAction(
  c: Core,
  actions: Uint8Array<ArrayBuffer>,
  spec: SpawnFd,
  parked: number[],
  keep: Uint8Array[],
): void {
  if ("dup" in spec) {
    const src = spec.dup;
    const tmp = c.check(
      "fcntl",
      `fd ${src}`,
      () => c.symbol("fcntl")(src, F_DUPFD_CLOEXEC, PARK_FD),
    );
    parked.push(tmp);
    c.checkRc(
      "posix_spawn_file_actions_adddup2",
      `fd ${spec.fd}`,
      c.symbol("posix_spawn_file_actions_adddup2")(actions, tmp, spec.fd),
    );
    return;
  }
  const p = cstr(spec.open);
  keep.push(p);
  const flags = O_NOCTTY | c.O_NOFOLLOW |
    (spec.write ? O_WRONLY | O_CREAT | (spec.append ? O_APPEND : 0) : 0);
  c.checkRc(
    "posix_spawn_file_actions_addopen",
    spec.open,
    c.symbol("posix_spawn_file_actions_addopen")(
      actions,
      spec.fd,
      p,
      flags,
      0o640,
    ),
  );
}

/** An empty signal mask, every signal at its default action, and `setsid`. */
function setAttributes(
  c: Core,
  attr: Uint8Array<ArrayBuffer>,
  setsid: boolean,
  blocked: readonly Deno.Signal[],
): void {
  let flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (setsid) flags |= POSIX_SPAWN_SETSID;
  c.checkRc(
    "posix_spawnattr_setflags",
    "",
    c.symbol("posix_spawnattr_setflags")(attr, flags),
  );
  c.checkRc(
    "posix_spawnattr_setsigmask",
    "",
    c.symbol("posix_spawnattr_setsigmask")(attr, signalSet(c, blocked)),
  );
  const sigset = new Uint8Array(SIGSET_SIZE);
  c.symbol("sigfillset")(sigset);
  c.checkRc(
    "posix_spawnattr_setsigdefault",
    "",
    c.symbol("posix_spawnattr_setsigdefault")(attr, sigset),
  );
}
