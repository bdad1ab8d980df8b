/**
 * An HTTP server that an upgrade can take over without refusing a
 * connection: every generation binds with `SO_REUSEPORT`, so the new one
 * listens beside the old one until the old one stops. A first generation
 * first binds the address without it (and closes that socket again), so
 * that a port anyone already holds — another daemon, an unrelated program,
 * with or without `SO_REUSEPORT` — still fails with "address in use"; only
 * a generation started by `upgrade` joins the port its predecessor holds.
 * Linux also lets only sockets of the same effective uid share a port.
 *
 * @module
 */
import { DaemonError, Exit } from "./errors.ts";

/** What {@linkcode serveShared} needs to know of the daemon. */
export interface SharedServeContext {
  /** 1 for a daemon started by `start` or `run`; more for one `upgrade` started. */
  generation: number;
  /** Aborted when the daemon is asked to stop: the server closes then. */
  signal: AbortSignal;
  /** Warn about a server that upgrades cannot take over. */
  warn(message: string): void;
}

/** Whether `err` is Deno's refusal of `reusePort` without `--unstable-net`. */
function isUnstableRefusal(err: unknown): boolean {
  return err instanceof Error && /--unstable-net/.test(err.message);
}

/** `"127.0.0.1:8000"`, `"[::1]:8000"`. */
function address(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Bind `hostname:port` alone and close it again: the port is free. For
 * port 0 this picks the port the shared server then binds.
 *
 * @returns The port.
 * @throws {DaemonError} Naming the address when it is in use.
 */
function probe(hostname: string, port: number): number {
  const listener = bound(
    hostname,
    port,
    () => Deno.listen({ hostname, port, transport: "tcp" }),
  );
  const at = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return at;
}

/** `bind()`'s result, or a bind error that names the address. */
function bound<T>(hostname: string, port: number, bind: () => T): T {
  try {
    return bind();
  } catch (err) {
    const why = err instanceof Deno.errors.AddrInUse
      ? "address in use"
      : (err as Error).message;
    if (isUnstableRefusal(err)) throw err;
    throw new DaemonError(
      `Cannot listen on ${address(hostname, port)}: ${why}`,
      err instanceof Deno.errors.PermissionDenied
        ? Exit.PRIVILEGE
        : Exit.FAILURE,
      { cause: err },
    );
  }
}

/**
 * `Deno.serve` on a TCP port that the next generation can share.
 *
 * @param ctx The daemon's generation, stop signal and warning logger.
 * @param options `Deno.serve`'s TCP options; `signal` defaults to the daemon's.
 * @param handler The request handler.
 * @returns The server.
 * @throws {DaemonError} When a first generation finds the address in use.
 */
export function serveShared(
  ctx: SharedServeContext,
  options: Deno.ServeTcpOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  const hostname = options.hostname ?? "0.0.0.0";
  const port = ctx.generation === 1
    ? probe(hostname, options.port ?? 8000)
    : options.port ?? 8000;
  const shared = { signal: ctx.signal, ...options, hostname, port };
  try {
    return bound(
      hostname,
      port,
      () => Deno.serve({ ...shared, reusePort: true }, handler),
    );
  } catch (err) {
    if (!isUnstableRefusal(err)) throw err;
  }
  ctx.warn(
    'Listening without SO_REUSEPORT (run with --unstable-net, or "unstable": ["net"] in deno.json): an upgrade cannot share this port and will fail',
  );
  return bound(hostname, port, () => Deno.serve(shared, handler));
}
