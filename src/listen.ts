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
import { after } from "./timer.ts";

/** What {@linkcode serveShared} needs to know of the daemon. */
export interface SharedServeContext {
  /** 1 for a daemon started by `start` or `run`; more for one `upgrade` started. */
  generation: number;
  /** Aborted when the daemon is asked to stop: the server closes then. */
  signal: AbortSignal;
  /** Warn about a server that upgrades cannot take over. */
  warn(message: string): void;
  /**
   * Have the port's `SO_REUSEPORT` group send every new connection to the
   * newest socket (see {@linkcode NEWEST_SOCKET}); throws when it cannot.
   */
  steer(port: number): void;
  /** Whether the daemon is stopping because a new generation replaced it. */
  replaced(): boolean;
}

/**
 * How long a replaced generation's server keeps its connections open after
 * the stop request. It gets no new connection once the new generation has
 * bound the port, but one it accepted just before may not have sent its
 * request yet, and a server shutting down closes such a connection unanswered
 * ("connection closed before message completed" on the client).
 */
export const REPLACED_LINGER_MS = 250;

/**
 * How many turns of its event loop, {@linkcode TURN_MS} apart, the process
 * then runs before the server closes. A process that a loaded machine did
 * not run through the linger wakes with requests unread on connections it
 * accepted: it reads them in these turns, however late each comes.
 */
const SETTLE_TURNS = 3;
const TURN_MS = 10;

/** Call `fn` once this process has run {@linkcode SETTLE_TURNS} more turns. */
function settled(fn: () => void, turns = SETTLE_TURNS): void {
  after(TURN_MS, () => turns <= 1 ? fn() : settled(fn, turns - 1));
}

/**
 * A signal that follows `signal`, later by {@linkcode REPLACED_LINGER_MS}
 * and a settled moment when the daemon stops because it was replaced.
 */
function lingering(ctx: SharedServeContext, signal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const follow = () => {
    if (!ctx.replaced()) return controller.abort(signal.reason);
    after(
      REPLACED_LINGER_MS,
      () => settled(() => controller.abort(signal.reason)),
    );
  };
  if (signal.aborted) follow();
  else signal.addEventListener("abort", follow, { once: true });
  return controller.signal;
}

/**
 * A classic BPF program for a `SO_REUSEPORT` group: "return 1", the second
 * socket in the order they joined. While an upgrade overlaps two
 * generations, that is the new one, so the old one's accept queue gets
 * nothing new and is empty by the time it closes its listener: without
 * `net.ipv4.tcp_migrate_req` (off by default), Linux resets the connections
 * still queued on a closed listener. With one socket left, index 1 is out
 * of range and the kernel picks by hash among the sockets there are.
 */
export const NEWEST_SOCKET = [
  { code: 0x06, jt: 0, jf: 0, k: 1 }, // BPF_RET | BPF_K
] as const;

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
 * @throws {Deno.errors.AddrInUse} Naming the address when it is in use.
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

/**
 * `bind()`'s result, or its error renamed to say the address: the same
 * error class, so that what maps errors to errno (sd_notify's `ERRNO=`)
 * still knows it.
 */
function bound<T>(hostname: string, port: number, bind: () => T): T {
  try {
    return bind();
  } catch (err) {
    if (!(err instanceof Error) || isUnstableRefusal(err)) throw err;
    const why = err instanceof Deno.errors.AddrInUse
      ? "address already in use"
      : err.message;
    const Kind = err.constructor as new (
      message: string,
      options: ErrorOptions,
    ) => Error;
    throw new Kind(`Cannot listen on ${address(hostname, port)}: ${why}`, {
      cause: err,
    });
  }
}

/**
 * `Deno.serve` on a TCP port that the next generation can share.
 *
 * @param ctx The daemon's generation, stop signal and warning logger.
 * @param options `Deno.serve`'s TCP options; `signal` defaults to the daemon's.
 * @param handler The request handler.
 * @returns The server.
 * @throws {Deno.errors.AddrInUse} When a first generation finds the address in use.
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
  const shared = {
    ...options,
    signal: lingering(ctx, options.signal ?? ctx.signal),
    hostname,
    port,
  };
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    server = bound(
      hostname,
      port,
      () => Deno.serve({ ...shared, reusePort: true }, handler),
    );
  } catch (err) {
    if (!isUnstableRefusal(err)) throw err;
  }
  if (server !== undefined) {
    if (ctx.generation > 1) {
      try {
        ctx.steer(server.addr.port);
      } catch (err) {
        ctx.warn(
          `Cannot steer new connections to this generation (${
            (err as Error).message
          }): the old one may reset a few as it closes`,
        );
      }
    }
    return server;
  }
  ctx.warn(
    'Listening without SO_REUSEPORT (run with --unstable-net, or "unstable": ["net"] in deno.json): an upgrade cannot share this port and will fail',
  );
  return bound(hostname, port, () => Deno.serve(shared, handler));
}
