/**
 * `upgrade`: a new generation from the program on disk replaces the running
 * daemon without refusing a request, the pidfile's lock held throughout.
 */
import assert from "node:assert/strict";
import {
  alive,
  asRoot,
  cli,
  EXAMPLE,
  nobodyHome,
  readPid,
  type Scratch,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

const FIXTURE = new URL("./fixtures/upgrade.ts", import.meta.url).pathname;

/** A port the kernel says is free now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

/** What the looping clients counted. */
interface Counts {
  ok: number;
  failed: number;
  errors: string[];
}

/**
 * `n` clients, each looping GET requests on a new connection each time
 * (a pooled connection closed by the old generation is the client's to
 * retry, not a refused connection), until `stop()` is called.
 */
function loopClients(
  url: string,
  n: number,
): { stop: () => Promise<Counts> } {
  const counts: Counts = { ok: 0, failed: 0, errors: [] };
  let running = true;
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      try {
        const r = await fetch(url, { client });
        await r.text();
        if (r.ok) counts.ok++;
        else counts.failed++;
      } catch (err) {
        counts.failed++;
        if (counts.errors.length < 5) {
          counts.errors.push(`${err} (${(err as Error).cause})`);
        }
      }
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      client.close();
      return counts;
    },
  };
}

/** Track the pid the pidfile names now (cleanup kills it). */
function trackNow(s: Scratch): number {
  const pid = readPid(s.pidfile);
  assert.ok(pid !== undefined, "no pid in the pidfile");
  return s.track(pid)!;
}

Deno.test({
  name: "`upgrade` twenty times under four looping clients loses no request",
  sanitizeResources: false,
  async fn() {
    await withScratch(async (s) => {
      const port = freePort();
      const first = await started(s, EXAMPLE, ["--port", String(port)]);
      const clients = loopClients(`http://127.0.0.1:${port}/health`, 4);
      const pids = [first];
      const t0 = performance.now();
      try {
        for (let i = 0; i < 20; i++) {
          const r = await cli(EXAMPLE, ["upgrade", ...s.paths]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const pid = trackNow(s);
          assert.match(r.stdout, new RegExp(`upgraded \\(pid ${pid}, `));
          assert.ok(!alive(pids.at(-1)!), "the old generation still runs");
          pids.push(pid);
        }
      } finally {
        const counts = await clients.stop();
        const ms = performance.now() - t0;
        console.log(
          `20 upgrades in ${
            Math.round(ms)
          } ms; requests ok ${counts.ok}, failed ${counts.failed}`,
        );
        assert.equal(counts.failed, 0, counts.errors.join("\n"));
        assert.ok(counts.ok > 40, `only ${counts.ok} requests answered`);
      }
      assert.equal(new Set(pids).size, 21);
      const health = await (await fetch(`http://127.0.0.1:${port}/health`))
        .json();
      assert.equal(health.pid, pids.at(-1));
    });
  },
});
