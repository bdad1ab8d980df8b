/**
 * A TCP echo service: everything a client sends comes back.
 *
 *   deno run -A examples/echo.ts start --port 7007
 *   printf 'hello\n' | socat - TCP:127.0.0.1:7007
 *
 * @module
 */
import { defineDaemon } from "../mod.ts";

export const daemon = defineDaemon({
  name: "denod-echo",
  version: "0.1.0",
  description: "TCP echo service",
  options: {
    host: {
      type: "string",
      description: "Address to listen on",
      default: "127.0.0.1",
    },
    port: {
      type: "integer",
      description: "TCP port (0 picks one)",
      default: 7007,
      min: 0,
      max: 65535,
    },
  },
  async main(ctx) {
    const listener = Deno.listen({
      hostname: ctx.options.host,
      port: ctx.options.port,
    });
    const { hostname, port } = listener.addr as Deno.NetAddr;
    ctx.log.info("Listening on {hostname}:{port}", { hostname, port });
    ctx.ready();

    const open = new Set<Deno.TcpConn>();
    ctx.signal.addEventListener("abort", () => {
      listener.close();
      for (const conn of open) conn.close();
    });
    const sessions: Promise<void>[] = [];
    try {
      for await (const conn of listener) {
        open.add(conn);
        sessions.push(echo(conn).finally(() => open.delete(conn)));
      }
    } catch (err) {
      if (!ctx.signal.aborted) throw err;
    }
    await Promise.allSettled(sessions);
  },
});

/** Copy a connection's input back to it until either side closes. */
async function echo(conn: Deno.TcpConn): Promise<void> {
  try {
    await conn.readable.pipeTo(conn.writable);
  } catch {
    // The peer went away, or the daemon is stopping.
  }
}

if (import.meta.main) await daemon.cli();
