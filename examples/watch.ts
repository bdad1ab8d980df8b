/**
 * A file-watching job: logs every change under a directory.
 *
 *   deno run -A examples/watch.ts start --dir /srv/incoming
 *
 * @module
 */
import { defineDaemon } from "../mod.ts";

export const daemon = defineDaemon({
  name: "denod-watch",
  version: "0.1.0",
  description: "Logs changes under a directory",
  options: {
    dir: { type: "path", description: "Directory to watch", default: "." },
  },
  async main(ctx) {
    const dir = ctx.options.dir;
    // Checked before ready(), so that `start` reports it in the terminal.
    if (!(await Deno.stat(dir).catch(() => null))?.isDirectory) {
      throw new Error(`Cannot watch ${JSON.stringify(dir)}: no such directory`);
    }
    const watcher = Deno.watchFs(dir, { recursive: true });
    ctx.signal.addEventListener("abort", () => watcher.close());
    ctx.log.info("Watching {dir}", { dir });
    ctx.ready();
    for await (const event of watcher) {
      ctx.log.info("{kind} {paths}", {
        kind: event.kind,
        paths: event.paths.join(" "),
      });
    }
  },
});

if (import.meta.main) await daemon.cli();
