/**
 * Processes by pidfd, which pid reuse cannot redirect: opening one,
 * signalling through it, waiting for the exit and collecting the status.
 *
 * @module
 */
import type { Libc } from "../types.ts";
import type { Core } from "./_core.ts";
import { waitReadable } from "./_poll.ts";

const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const P_PIDFD = 3;
const WEXITED = 4;
/** `siginfo_t` is 128 bytes; `si_code` at 8, `si_status` at 24 for SIGCHLD. */
const SIGINFO_SIZE = 128;
const CLD_EXITED = 1;
const CLD_DUMPED = 3;

/** Linux signal numbers by name. */
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

/**
 * The number of a signal.
 *
 * @param signal Its name.
 * @returns Its Linux number.
 * @throws {TypeError} For a signal the table does not hold.
 */
function signalNumber(signal: Deno.Signal): number {
  const n = SIGNALS[signal];
  if (n === undefined) throw new TypeError(`Unknown signal ${signal}`);
  return n;
}

/**
 * The name of a signal number.
 *
 * @param n The number.
 * @returns Its name, or the number itself as a string when unnamed.
 */
function signalName(n: number): string {
  return SIGNAL_NAMES.get(n) ?? String(n);
}

/** The functions of {@linkcode Libc} that work through pidfds. */
export type Pidfds = Pick<
  Libc,
  "pidfdOpen" | "pidfdSignal" | "pidfdGetfd" | "pidfdWait" | "reap"
>;

/**
 * The Linux pidfd functions.
 *
 * @param c The shared core.
 * @returns Them, for {@linkcode Libc}.
 */
export function pidfds(c: Core): Pidfds {
  return {
    pidfdOpen(pid) {
      return Number(c.check(
        "pidfd_open",
        `pid ${pid}`,
        () =>
          c.symbol("syscall")(BigInt(SYS_PIDFD_OPEN), BigInt(pid), 0n, 0n, 0n),
      ));
    },
    pidfdSignal(pidfd, signal) {
      const n = BigInt(signalNumber(signal));
      const nr = BigInt(SYS_PIDFD_SEND_SIGNAL);
      c.check(
        "pidfd_send_signal",
        `fd ${pidfd}`,
        () => c.symbol("syscall")(nr, BigInt(pidfd), n, 0n, 0n),
      );
    },
    pidfdGetfd(pidfd, fd) {
      const nr = BigInt(SYS_PIDFD_GETFD);
      return Number(c.check(
        "pidfd_getfd",
        `fd ${fd} of pidfd ${pidfd}`,
        () => c.symbol("syscall")(nr, BigInt(pidfd), BigInt(fd), 0n, 0n),
      ));
    },
    pidfdWait: (pidfd, timeoutMs) => waitReadable(c, pidfd, timeoutMs),
    reap(pidfd) {
      const info = new Uint8Array(SIGINFO_SIZE);
      c.check(
        "waitid",
        `fd ${pidfd}`,
        () => c.symbol("waitid")(P_PIDFD, pidfd, info, WEXITED),
      );
      const v = new DataView(info.buffer);
      const code = v.getInt32(8, true);
      const status = v.getInt32(24, true);
      if (code === CLD_EXITED) return { exited: true, code: status };
      return {
        exited: false,
        signal: signalName(status),
        coreDumped: code === CLD_DUMPED,
      };
    },
  };
}
