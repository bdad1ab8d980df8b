/**
 * Telling a service manager how the daemon is doing: systemd's sd_notify
 * protocol (`NOTIFY_SOCKET`, with the watchdog) and the s6 readiness
 * descriptor (`--notify-fd`). One `ctx.ready()` feeds all of them.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { type Libc, SysError } from "../ffi/mod.ts";
import { everyUnreferenced, type Timer } from "./timer.ts";

/**
 * Variables of the service-manager protocols the library consumes, removed
 * from the payload's environment once read. Socket activation's `LISTEN_*`
 * stay for the payload under `run`: `LISTEN_PID` already keeps children from
 * taking the sockets.
 */
export const SERVICE_ENV = [
  "NOTIFY_SOCKET",
  "WATCHDOG_USEC",
  "WATCHDOG_PID",
] as const;

const encoder = new TextEncoder();

/** errno values for the Deno errors a start-up typically fails with. */
const ERRNO_OF: Record<string, number> = {
  AddrInUse: 98,
  AddrNotAvailable: 99,
  PermissionDenied: 13,
  NotFound: 2,
  AlreadyExists: 17,
  ConnectionRefused: 111,
};

/**
 * The service manager, as far as the environment and options reveal one.
 *
 * @example Without a manager every call is a no-op
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { libc } from "../ffi/mod.ts";
 * import { ServiceManager } from "./notify.ts";
 * const m = ServiceManager.fromEnvironment(libc(), () => undefined, undefined, getLogger(["x"]));
 * m.ready(false);
 * m.stopping();
 * console.log(m.watchdogMs); // undefined
 * ```
 */
export class ServiceManager {
  /** Half the watchdog interval, when systemd asked for pings. */
  readonly watchdogMs: number | undefined;
  #libc: Libc;
  #socket: string | undefined;
  #notifyFd: number | undefined;
  #log: Logger;
  #warned = false;
  #watchdog: Timer | undefined;

  private constructor(
    libc: Libc,
    socket: string | undefined,
    notifyFd: number | undefined,
    watchdogMs: number | undefined,
    log: Logger,
  ) {
    this.#libc = libc;
    this.#socket = socket;
    this.#notifyFd = notifyFd;
    this.watchdogMs = watchdogMs;
    this.#log = log;
  }

  /**
   * Read `NOTIFY_SOCKET` and `WATCHDOG_USEC`/`WATCHDOG_PID`.
   *
   * @param libc The OS interface.
   * @param env Environment lookup.
   * @param notifyFd The s6-style readiness descriptor, if one was given (already checked open).
   * @param log Where to say, once, that the manager cannot be reached.
   */
  static fromEnvironment(
    libc: Libc,
    env: (name: string) => string | undefined,
    notifyFd: number | undefined,
    log: Logger,
  ): ServiceManager {
    const socket = env("NOTIFY_SOCKET") || undefined;
    const usec = Number(env("WATCHDOG_USEC"));
    const wpid = env("WATCHDOG_PID");
    const ours = wpid === undefined || Number(wpid) === libc.getpid();
    const watchdogMs = socket !== undefined && ours && usec > 0
      ? Math.max(1, Math.floor(usec / 2000))
      : undefined;
    return new ServiceManager(libc, socket, notifyFd, watchdogMs, log);
  }

  /** Send `KEY=value` lines over `NOTIFY_SOCKET`; failures are reported once, never thrown. */
  notify(fields: Record<string, string | number | bigint>): void {
    if (this.#socket === undefined) return;
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, " ")}`)
      .join("\n");
    try {
      this.#libc.sendDatagram(this.#socket, encoder.encode(text));
    } catch (err) {
      if (this.#warned) return;
      this.#warned = true;
      this.#log.warning(
        "Cannot notify the service manager at {socket}: {error}",
        {
          socket: this.#socket,
          error: (err as Error).message,
        },
      );
    }
  }

  /**
   * The service is ready: `READY=1` (with `MAINPID` when detached, as the
   * manager started another process), and a newline on the notify fd.
   */
  ready(detached: boolean): void {
    this.notify(
      detached ? { READY: 1, MAINPID: this.#libc.getpid() } : { READY: 1 },
    );
    if (this.#notifyFd !== undefined) {
      try {
        this.#libc.write(this.#notifyFd, encoder.encode("\n"));
      } catch {
        // The supervisor went away; nothing else to tell it.
      }
      this.#libc.close(this.#notifyFd);
      this.#notifyFd = undefined;
    }
  }

  /** `STATUS=text`. */
  status(text: string): void {
    this.notify({ STATUS: text });
  }

  /** `RELOADING=1` with the time it began, as systemd's notify-reload wants. */
  reloading(): void {
    this.notify({ RELOADING: 1, MONOTONIC_USEC: this.#libc.monotonicMicros() });
  }

  /** `STOPPING=1`. */
  stopping(): void {
    this.notify({ STOPPING: 1 });
  }

  /** `EXTEND_TIMEOUT_USEC`: ask for more time to start, reload or stop. */
  extendTimeout(seconds: number): void {
    this.notify({ EXTEND_TIMEOUT_USEC: Math.round(seconds * 1e6) });
  }

  /** Start-up failed: `STATUS` with the reason, and `ERRNO` when one is known. */
  failed(err: unknown): void {
    const errno = err instanceof SysError
      ? err.errno
      : ERRNO_OF[(err as Error)?.name ?? ""];
    const text = `Start-up failed: ${(err as Error)?.message ?? String(err)}`;
    this.notify(
      errno === undefined ? { STATUS: text } : { STATUS: text, ERRNO: errno },
    );
  }

  /**
   * Send `WATCHDOG=1` every half interval from the event loop, so a blocked
   * loop stops the pings and systemd restarts the daemon. No timer at all
   * when no watchdog was asked for.
   */
  startWatchdog(): void {
    if (this.watchdogMs === undefined || this.#watchdog !== undefined) return;
    this.notify({ WATCHDOG: 1 });
    this.#watchdog = everyUnreferenced(
      this.watchdogMs,
      () => this.notify({ WATCHDOG: 1 }),
    );
  }
}
