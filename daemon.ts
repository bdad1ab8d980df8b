/**
 * The example daemon: a small HTTP service. Copy this file to write your own.
 *
 *   deno run -A daemon.ts start     # detach; returns once it answers
 *   deno run -A daemon.ts status
 *   deno run -A daemon.ts upgrade   # new generation, then the old one stops
 *   deno run -A daemon.ts stop
 *   deno run -A daemon.ts run       # foreground, logs to stderr
 *
 * @module
 */
import { defineDaemon } from "./mod.ts";

/** The daemon. Its hooks run in this order: prepare → main; reloads run what main registered. */
export const daemon = defineDaemon({
  name: "denod-example",
  version: "0.1.0",
  description: "Example HTTP daemon built with denod",
  // Options of this daemon, on top of denod's own (--pidfile, --log-file, …).
  options: {
    host: {
      type: "string",
      valueName: "HOST",
      description: "Address to listen on",
      default: "127.0.0.1",
    },
    port: {
      type: "integer",
      description: "TCP port (0 picks a free one)",
      default: 8000,
      min: 0,
      max: 65535,
    },
    config: {
      type: "path",
      valueName: "FILE",
      description: "JSON file re-read on reload",
    },
  },

  async main(ctx) {
    const started = Date.now();
    let config = await readConfig(ctx.options.config);
    // SIGHUP and `reload`, after the log file is reopened: re-read the
    // configuration this server answers with. A throw keeps the old one
    // and makes `reload` report the error.
    ctx.onReload(async () => {
      config = await readConfig(ctx.options.config);
      ctx.log.info("Configuration loaded: {config}", { config });
    });

    // ctx.serve is Deno.serve on a port that `upgrade` hands to the next
    // generation without refusing a connection (and that still fails with
    // "address in use" when anyone else holds it).
    const server = ctx.serve({
      hostname: ctx.options.host,
      port: ctx.options.port,
      // signal: ctx.signal by default: the server closes when the daemon is stopped
      onListen: ({ hostname, port }) => {
        ctx.log.info("Listening on http://{hostname}:{port}/", {
          hostname,
          port,
        });
        ctx.status(`Listening on http://${hostname}:${port}/`); // for systemctl status
        ctx.ready(); // only now does `start` return
      },
    }, (req) => {
      const path = new URL(req.url).pathname;
      ctx.log.info("{method} {path}", { method: req.method, path });
      if (path === "/health") {
        return Response.json({
          pid: Deno.pid,
          uptime: (Date.now() - started) / 1000,
          version: ctx.version,
          config,
        });
      }
      return new Response("Not found\n", { status: 404 });
    });
    await server.finished; // resolves after ctx.signal aborts and requests end
  },
});

/** Read the JSON configuration, if a file was given. */
async function readConfig(path: string | undefined): Promise<unknown> {
  if (path === undefined) return null;
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (err) {
    // JSON.parse says where in the text, not in which file.
    throw new Error(
      `Invalid JSON in ${JSON.stringify(path)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

if (import.meta.main) await daemon.cli();
