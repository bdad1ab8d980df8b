/**
 * Processes by pidfd, which pid reuse cannot redirect: opening one,
 * signalling through it, waiting for the exit and collecting the status;
 * and keeping orphaned descendants as children (a subreaper).
 *
 * @module
 */
import type { Libc } from "../types.ts";
import type { Core } from "./_core.ts";
import { waitReadable } from "./_poll.ts";
import { signalName, signalNumber } from "./_signals.ts";

const SYS_PIDFD_SEND_SIGNAL = 424;
const SYS_PIDFD_OPEN = 434;
const SYS_PIDFD_GETFD = 438;
const P_PIDFD = 3;
const WEXITED = 4;
const WNOHANG = 1;
/**
 * `siginfo_t` is 128 bytes; for SIGCHLD `si_code` at 8, `si_pid` at 16
 * (0 when `WNOHANG` found nothing), `si_status` at 24.
 */
const SIGINFO_SIZE = 128;
const CLD_EXITED = 1;
const CLD_DUMPED = 3;
const PR_SET_CHILD_SUBREAPER = 36;
const SIGCHLD = 17;
/** glibc's `struct sigaction` (x86_64 and aarch64): the handler comes first. */
const SIGACTION_SIZE = 152;
const SIG_IGN = 1n;

/** The functions of {@linkcode Libc} that work through pidfds. */
export type Pidfds = Pick<
  Libc,
  | "pidfdOpen"
  | "pidfdSignal"
  | "pidfdGetfd"
  | "pidfdWait"
  | "reap"
  | "becomeSubreaper"
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
        () => c.symbol("waitid")(P_PIDFD, pidfd, info, WEXITED | WNOHANG),
      );
      const v = new DataView(info.buffer);
      if (v.getInt32(16, true) === 0) return null;
      const code = v.getInt32(8, true);
      const status = v.getInt32(24, true);
      if (code === CLD_EXITED) return { exited: true, code: status };
      return {
        exited: false,
        signal: signalName(status),
        coreDumped: code === CLD_DUMPED,
      };
    },
    becomeSubreaper() {
      // An ignored SIGCHLD survives execve (a caller's `signal(SIGCHLD,
      // SIG_IGN)`): the kernel would then reap our children at once and
      // free their pids. Set back to the default; a handler stays.
      const old = new BigUint64Array(SIGACTION_SIZE / 8);
      c.check(
        "sigaction",
        "SIGCHLD",
        () => c.symbol("sigaction")(SIGCHLD, null, old),
      );
      if (old[0] === SIG_IGN) {
        const dfl = new BigUint64Array(SIGACTION_SIZE / 8);
        c.check(
          "sigaction",
          "SIGCHLD",
          () => c.symbol("sigaction")(SIGCHLD, dfl, null),
        );
      }
      c.check(
        "prctl",
        "PR_SET_CHILD_SUBREAPER",
        () => c.symbol("prctl")(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n),
      );
    },
  };
}
