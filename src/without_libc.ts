/**
 * `run` without libc (FFI not allowed, or no driver for this OS): the
 * daemon does what Deno's own APIs can (umask, working directory, signals,
 * logging to stderr, the payload), and refuses in one line what needs libc.
 *
 * @module
 */
import type { Libc } from "../ffi/mod.ts";
import { DaemonError, Exit } from "./errors.ts";
import type { CoreOptions } from "./options.ts";

/** A libc function reached without libc; {@linkcode LibcMissing.what} names it. */
export class LibcMissing extends DaemonError {
  /**
   * @param what The function or feature that needs libc.
   * @param why Why libc cannot be had (FFI denied, no driver for this OS).
   */
  constructor(readonly what: string, why: Error) {
    super(...missing(what, why), { cause: why });
    this.name = "LibcMissing";
  }
}

/** The message and exit code for `what` without libc. */
function missing(what: string, why: Error): [string, number] {
  if (why instanceof Deno.errors.NotCapable) {
    return [
      `${what} needs FFI to call libc: run it with --allow-ffi (deno run -A, or a binary compiled with it)`,
      Exit.PRIVILEGE,
    ];
  }
  return [
    `${what} needs libc, and ${why.message} yet (Linux on x86_64 and aarch64 is)`,
    Exit.FAILURE,
  ];
}

/**
 * What `run` is asked to do that needs libc, in the order it is refused:
 * changing identity, the pidfile's lock, syslog's socket, readiness on a
 * descriptor or to systemd.
 */
export function needsLibc(
  core: CoreOptions,
  env: (name: string) => string | undefined,
): string | null {
  if (core.user !== undefined) return "run --user";
  if (core.group !== undefined) return "run --group";
  if (core.pidfile !== undefined) return "run --pidfile";
  if (core.logTo === "syslog") return "run --syslog";
  if (core.notifyFd !== undefined) return "run --notify-fd";
  if (env("NOTIFY_SOCKET") !== undefined) {
    return "run under systemd's NOTIFY_SOCKET (sd_notify)";
  }
  return null;
}

/**
 * The `Libc` that `run` gets without libc: umask, chdir and geteuid through
 * Deno; every other function throws {@linkcode LibcMissing}. Refuse what
 * needs libc first ({@linkcode needsLibc}); what remains reaches only the
 * hardening calls, which the daemon reports and skips.
 *
 * @param why Why libc cannot be had.
 */
function libcWithoutFfi(why: Error): Libc {
  const own: Partial<Libc> = {
    umask: (mask) => Deno.umask(mask),
    chdir: (path) => Deno.chdir(path),
    geteuid: () => Deno.uid() ?? 0,
    getpid: () => Deno.pid,
    // Sent only over NOTIFY_SOCKET, which `run` refuses without libc.
    monotonicMicros: () => 0n,
  };
  // Everything else of the seam, by name, without spelling each one out.
  return new Proxy(own, {
    get(target, name) {
      const found = Reflect.get(target, name);
      // Not a promise: `await` looks for `then`.
      if (found !== undefined || typeof name !== "string" || name === "then") {
        return found;
      }
      return () => {
        throw new LibcMissing(name, why);
      };
    },
  }) as Libc;
}

/**
 * Refuse in one line what `run` cannot do without libc, or return the
 * `Libc` it runs with.
 *
 * @throws {DaemonError} Naming the first thing asked for that needs libc.
 */
export function runWithoutLibc(
  core: CoreOptions,
  env: (name: string) => string | undefined,
  why: Error,
): Libc {
  const what = needsLibc(core, env);
  if (what !== null) throw new LibcMissing(what, why);
  return libcWithoutFfi(why);
}
