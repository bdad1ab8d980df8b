/**
 * The upgrade section of scripts/bench.ts, self-contained: the example
 * daemon on a port the kernel picked, four clients looping requests (a new
 * connection each), then `upgrade` N times and `restart` N times under that
 * load. It reports the median wall time of each command and the requests
 * that failed during each series.
 *
 * Also runnable alone: `deno run -A scripts/_upgradebench.ts [N]`.
 */

/** One series' numbers. */
interface Series {
  /** Median wall time of the command, ms. */
  medianMs: number;
  /** Requests answered and failed while the series ran. */
  ok: number;
  failed: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Four clients looping GETs until `stop()`; counts what they saw. */
function load(url: string): { stop: () => Promise<[number, number]> } {
  let ok = 0;
  let failed = 0;
  let running = true;
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const r = await fetch(url, { client });
        await r.body?.cancel();
        if (r.ok) ok++;
        else failed++;
      } catch {
        failed++;
        // A refused connection fails at once: pace the retries, so that
        // the count measures the time without service, not the loop's speed.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      client.close();
      return [ok, failed];
    },
  };
}

/**
 * Measure `upgrade` and `restart` of the example daemon under load.
 *
 * @param root The repository root (with a trailing slash).
 * @param dir A scratch directory.
 * @param runs How many of each command.
 * @returns The lines to print.
 */
export async function upgradeBench(
  root: string,
  dir: string,
  runs: number,
): Promise<string[]> {
  const deno = Deno.execPath();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const paths = ["--pidfile", `${dir}/u.pid`, "--log-file", `${dir}/u.log`];
  const cmd = async (command: string, extra: string[] = []) => {
    const t0 = performance.now();
    const out = await new Deno.Command(deno, {
      args: ["run", "-A", "daemon.ts", command, ...paths, ...extra],
      cwd: root,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `${command} failed: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return performance.now() - t0;
  };
  const series = async (command: string): Promise<Series> => {
    const clients = load(`http://127.0.0.1:${port}/health`);
    const times: number[] = [];
    let error: unknown;
    try {
      for (let i = 0; i < runs; i++) times.push(await cmd(command));
    } catch (err) {
      error = err;
    }
    // The clients stop either way before an error is passed on.
    const [ok, failed] = await clients.stop();
    if (error !== undefined) throw error;
    return { medianMs: median(times), ok, failed };
  };
  await cmd("start", ["--port", String(port)]);
  try {
    const up = await series("upgrade");
    const re = await series("restart");
    const migrate = (() => {
      try {
        return Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req")
          .trim();
      } catch {
        return "unknown";
      }
    })();
    const row = (what: string, s: Series) =>
      `  ${what.padEnd(10)} ${s.medianMs.toFixed(1).padStart(8)} ms ${
        String(s.failed).padStart(8)
      } of ${s.ok + s.failed}`;
    // (A failing client waits 10 ms before its next try.)
    return [
      `upgrade vs restart, ${runs} each, 4 looping clients (tcp_migrate_req ${migrate})`,
      `  command      median   failed requests`,
      row("upgrade", up),
      row("restart", re),
    ];
  } finally {
    await cmd("stop").catch(() => {});
  }
}

if (import.meta.main) {
  const dir = Deno.makeTempDirSync({ prefix: "denod-bench-" });
  try {
    const lines = await upgradeBench(
      new URL("../", import.meta.url).pathname,
      dir,
      Number(Deno.args[0] ?? 15),
    );
    console.log(lines.join("\n"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
