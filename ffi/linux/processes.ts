/**
 * Processes as the kernel shows them in `/proc`: executables, uids, locks
 * held, descriptors, argv and age; and this process's pid and monotonic
 * clock.
 *
 * @module
 */
import type { FileStat, Libc, ProcessView } from "../types.ts";
import {
  type Core,
  O_CLOEXEC,
  O_NOCTTY,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
} from "./_core.ts";
import { fdsOf, listFds, openRaw, readlink, readProc } from "./_proc.ts";
import { readUpTo } from "./descriptors.ts";
import { statx } from "./files.ts";

/** Clock ticks per second in `/proc/PID/stat` (USER_HZ: 100 on every Linux architecture). */
const USER_HZ = 100;
const CLOCK_MONOTONIC = 1;
const F_GET_SEALS = 1034;

const decoder = new TextDecoder();

/** The functions of {@linkcode Libc} that look at processes. */
export type Processes = Pick<
  Libc,
  | "processView"
  | "lockingFds"
  | "readProcessMemfd"
  | "openFds"
  | "memfdName"
  | "selfCommand"
  | "selfArgvBytes"
  | "processAge"
  | "getpid"
  | "monotonicMicros"
>;

/**
 * The Linux process functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function processes(c: Core): Processes {
  return {
    processView: (pid, lockOn) => processView(c, pid, lockOn),
    lockingFds: (pid, file) => lockingFds(c, pid, file),
    readProcessMemfd: (pid, name, max, owners) =>
      readProcessMemfd(c, pid, name, max, owners),
    openFds: () => listFds(c, "self"),
    memfdName(fd) {
      const link = readlink(c, `/proc/self/fd/${fd}`);
      const m = link?.match(/^\/memfd:(.*) \(deleted\)$/);
      return m ? m[1] : null;
    },
    selfCommand() {
      const raw = decoder.decode(readProc(c, "/proc/self/cmdline"));
      return {
        path: Deno.execPath(),
        argv: raw.replace(/\0$/, "").split("\0"),
      };
    },
    selfArgvBytes() {
      const raw = readProc(c, "/proc/self/cmdline");
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
    processAge: (pid) => processAge(c, pid),
    getpid: () => c.symbol("getpid")(),
    monotonicMicros() {
      const ts = new BigInt64Array(2);
      c.check(
        "clock_gettime",
        "CLOCK_MONOTONIC",
        () => c.symbol("clock_gettime")(CLOCK_MONOTONIC, ts),
      );
      return ts[0] * 1_000_000n + ts[1] / 1000n;
    },
  };
}

/** {@linkcode Libc.processView} */
function processView(
  c: Core,
  pid: number,
  lockOn?: { dev: string; ino: bigint },
): ProcessView | null {
  let status: string;
  try {
    status = decoder.decode(readProc(c, `/proc/${pid}/status`));
  } catch {
    return null;
  }
  const field = (name: string) =>
    status.match(new RegExp(`^${name}:\\s*([^\\n]*)`, "m"))?.[1] ?? "";
  const [uid, euid] = field("Uid").split(/\s+/).map(Number);
  let exe: string | null = null;
  try {
    exe = readlink(c, `/proc/${pid}/exe`)?.replace(/ \(deleted\)$/, "") ??
      null;
  } catch {
    // Another user's process, seen by a non-root caller.
  }
  return {
    exe,
    uid,
    euid,
    ppid: Number(field("PPid")),
    exiting: /^[ZX]/.test(field("State")),
    holdsLock: lockOn === undefined ? null : holdsLock(c, pid, lockOn),
  };
}

/**
 * Whether process `pid` has a descriptor on `file` whose open file
 * description holds an exclusive flock. `null` when its descriptors cannot
 * be read.
 */
function holdsLock(
  c: Core,
  pid: number,
  file: { dev: string; ino: bigint },
): boolean | null {
  const fds = lockingFds(c, pid, file);
  return fds === null ? null : fds.length > 0;
}

/** `O_ACCMODE` of the `flags:` line in fdinfo (octal). */
const ACCESS = ["read", "write", "read-write"] as const;

/** {@linkcode Libc.lockingFds}: fdinfo lists the locks of that description only. */
function lockingFds(
  c: Core,
  pid: number | "self",
  file: { dev: string; ino: bigint },
): { fd: number; access: "read" | "write" | "read-write" }[] | null {
  const fds = fdsOf(c, pid);
  if (fds === null) return null;
  const found: { fd: number; access: "read" | "write" | "read-write" }[] = [];
  for (const n of fds) {
    let st: FileStat;
    try {
      st = statx(c, `/proc/${pid}/fd/${n}`, true);
    } catch {
      continue;
    }
    if (st.dev !== file.dev || st.ino !== file.ino) continue;
    try {
      const info = decoder.decode(readProc(c, `/proc/${pid}/fdinfo/${n}`));
      if (!/^lock:\s+\d+: FLOCK\s+ADVISORY\s+WRITE /m.test(info)) continue;
      const flags = info.match(/^flags:\s+([0-7]+)$/m);
      const access = flags
        ? ACCESS[Number.parseInt(flags[1], 8) & 3]
        : undefined;
      if (access !== undefined) found.push({ fd: n, access });
    } catch {
      // closed meanwhile
    }
  }
  return found;
}

/** {@linkcode Libc.readProcessMemfd} */
function readProcessMemfd(
  c: Core,
  pid: number,
  name: string,
  max: number,
  owners: readonly number[],
): Uint8Array | null {
  const want = `/memfd:${name} (deleted)`;
  for (const n of fdsOf(c, pid) ?? []) {
    try {
      if (readlink(c, `/proc/${pid}/fd/${n}`) !== want) continue;
    } catch {
      continue;
    }
    const data = readMemfd(c, `/proc/${pid}/fd/${n}`, want, max, owners);
    if (data !== undefined) return data;
  }
  return null;
}

/**
 * At most `max` bytes of the memory file a /proc descriptor link names,
 * when it is still the one named `want` and owned by one of `owners`;
 * `undefined` when it is not, or cannot be read.
 */
function readMemfd(
  c: Core,
  link: string,
  want: string,
  max: number,
  owners: readonly number[],
): Uint8Array | null | undefined {
  // O_PATH takes the file without opening it (no device or FIFO is
  // ever opened). The process may have swapped descriptor n since the
  // name was read, so what we hold is judged again: the memfd's name,
  // an owner it may write as, a memory file. Only then is our own
  // handle reopened, which reads exactly that file.
  const handle = openRaw(c, link, O_PATH | O_CLOEXEC);
  if (handle < 0) return undefined;
  const close = c.symbol("close");
  try {
    const st = statx(c, handle);
    if (
      st.type !== "file" || !owners.includes(st.uid) ||
      readlink(c, `/proc/self/fd/${handle}`) !== want
    ) return undefined;
    const fd = openRaw(
      c,
      `/proc/self/fd/${handle}`,
      O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
    );
    if (fd < 0) return undefined;
    try {
      // Only memory files (memfd, shmem) have seals.
      if (c.symbol("fcntl")(fd, F_GET_SEALS, 0) === -1) return undefined;
      return readUpTo(c, fd, max);
    } finally {
      close(fd);
    }
  } catch {
    return undefined;
  } finally {
    close(handle);
  }
}

/** {@linkcode Libc.processAge} */
function processAge(c: Core, pid: number): number | undefined {
  try {
    const stat = decoder.decode(readProc(c, `/proc/${pid}/stat`));
    // starttime is field 22; fields are counted after the ")" that ends comm.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const started = Number(fields[19]) / USER_HZ;
    const up = Number(
      decoder.decode(readProc(c, "/proc/uptime")).split(" ")[0],
    );
    return Math.max(0, Math.round(up - started));
  } catch {
    return undefined;
  }
}
