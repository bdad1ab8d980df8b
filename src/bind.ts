/**
 * Bind errors that say where: the payload calls `Deno.serve`, `Deno.listen`
 * and `Deno.listenTls` itself, and Deno's errors ("Address already in use
 * (os error 98)") do not name the address. The daemon wraps the three so
 * that a failed bind names `host:port` (or the socket path), keeping the
 * error's class, so that a payload's `instanceof Deno.errors.AddrInUse`
 * still holds; and a privileged port refused to a user becomes exit 4 with
 * a hint.
 *
 * @module
 */
import { DaemonError, Exit } from "./errors.ts";

/** Where a failed bind was aimed, kept beside the error it annotated. */
const FAILED = new WeakMap<Error, { address: string; port?: number }>();

/** Deno's default listening address of `Deno.serve` and `Deno.listen`. */
const DEFAULT_HOST = "0.0.0.0";

/** The address an options object of the three asks for. */
function addressOf(
  options: unknown,
  defaultPort: number | undefined,
): { address: string; port?: number } | undefined {
  if (options === null || typeof options !== "object") {
    return defaultPort === undefined
      ? undefined
      : { address: `${DEFAULT_HOST}:${defaultPort}`, port: defaultPort };
  }
  const o = options as {
    path?: unknown;
    hostname?: unknown;
    port?: unknown;
    transport?: unknown;
  };
  if (typeof o.path === "string") return { address: o.path };
  const host = typeof o.hostname === "string" ? o.hostname : DEFAULT_HOST;
  const port = typeof o.port === "number" ? o.port : defaultPort;
  if (port === undefined) return undefined;
  // An IPv6 address is bracketed, as in a URL.
  const shown = host.includes(":") ? `[${host}]` : host;
  return { address: `${shown}:${port}`, port };
}

/** Call `fn`, naming the address in the bind error it throws. */
function naming<T>(
  where: { address: string; port?: number } | undefined,
  fn: () => T,
): T {
  try {
    return fn();
  } catch (err) {
    if (
      where !== undefined && err instanceof Error && !FAILED.has(err) &&
      (err instanceof Deno.errors.AddrInUse ||
        err instanceof Deno.errors.AddrNotAvailable ||
        err instanceof Deno.errors.PermissionDenied)
    ) {
      err.message = `Cannot listen on ${
        JSON.stringify(where.address)
      }: ${err.message}`;
      FAILED.set(err, where);
    }
    throw err;
  }
}

/**
 * Replace `Deno.serve`, `Deno.listen` and `Deno.listenTls` with versions
 * whose bind errors name the address. Arguments, results and every other
 * error pass through unchanged. Called once, in the daemon, before the
 * payload's hooks run.
 */
export function nameBindErrors(): void {
  const deno = Deno as unknown as Record<string, unknown>;
  // `Deno.serve` is a getter that loads Deno's HTTP server on first read
  // (4 ms measured on Deno 2.9): read it only when the payload serves.
  const serveProperty = Object.getOwnPropertyDescriptor(Deno, "serve");
  const serve = () =>
    (serveProperty?.get?.call(Deno) ?? serveProperty?.value) as (
      ...a: unknown[]
    ) => unknown;
  const { listen, listenTls } = Deno;
  deno.serve = function (this: unknown, ...args: unknown[]) {
    // `Deno.serve(handler)` and `Deno.serve(options, handler)` alike; port
    // 8000 is Deno's default (its docs).
    const options = typeof args[0] === "function" ? undefined : args[0];
    return naming(
      addressOf(options ?? {}, 8000),
      () => serve().apply(this, args),
    );
  };
  deno.listen = function (this: unknown, ...args: unknown[]) {
    return naming(
      addressOf(args[0], undefined),
      () => (listen as (...a: unknown[]) => unknown).apply(this, args),
    );
  };
  deno.listenTls = function (this: unknown, ...args: unknown[]) {
    return naming(
      addressOf(args[0], undefined),
      () => (listenTls as (...a: unknown[]) => unknown).apply(this, args),
    );
  };
}

/** The lowest port an unprivileged process may bind, from the kernel. */
function unprivilegedPortStart(): number {
  try {
    const text = Deno.readTextFileSync(
      "/proc/sys/net/ipv4/ip_unprivileged_port_start",
    );
    const n = Number(text.trim());
    return Number.isInteger(n) ? n : 1024;
  } catch {
    return 1024; // The traditional limit, where the setting does not exist.
  }
}

/**
 * A start-up error as the daemon reports it: a port refused for want of
 * privilege becomes exit 4 with what to do about it; anything else is
 * returned as it is.
 *
 * @param err What the payload threw.
 * @returns The error to report, and its exit code.
 */
export function startupFailure(
  err: unknown,
): { error: unknown; code: number } {
  const where = err instanceof Error ? FAILED.get(err) : undefined;
  if (
    where?.port === undefined ||
    !(err instanceof Deno.errors.PermissionDenied)
  ) {
    return { error: err, code: Exit.FAILURE };
  }
  const start = unprivilegedPortStart();
  if (where.port >= start) return { error: err, code: Exit.FAILURE };
  return {
    error: new DaemonError(
      `${err.message}: ports below ${start} need privilege; bind it in prepare() (which runs before --user drops privileges), use a port of ${start} or above, or grant CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE)`,
      Exit.PRIVILEGE,
      { cause: err },
    ),
    code: Exit.PRIVILEGE,
  };
}
