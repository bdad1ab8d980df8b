/**
 * `upgrade`: a new generation from the program on disk replaces the running
 * daemon without refusing a request, the pidfile's lock held throughout.
 */
import assert from "node:assert/strict";
import { REPLACED_LINGER_MS } from "../src/listen.ts";
import {
  alive,
  asNobodyLine,
  asRoot,
  cli,
  cliRunning,
  EXAMPLE,
  nobodyHome,
  procFds,
  procStat,
  readPid,
  type Scratch,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

const FIXTURE = new URL("./fixtures/upgrade.ts", import.meta.url).pathname;

/**
 * A port free now, below the kernel's ephemeral range: neither another
 * test's `port: 0` nor one of the many outgoing connections the looping
 * clients make can take it before the daemon binds it. Upgrades need a port
 * given (a new generation cannot share a kernel-chosen one).
 */
function freePort(): number {
  const range = Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range");
  const low = Number(range.trim().split(/\s+/)[0]);
  const from = Math.max(1024, low - 10_000);
  for (let tries = 0; tries < 100; tries++) {
    const port = from + Math.floor(Math.random() * (low - from));
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      return port;
    } catch {
      // in use: another
    }
  }
  throw new Error(`No free port between ${from} and ${low}`);
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
          const at = Math.round(performance.now());
          counts.errors.push(`at ${at} ms: ${err} (${(err as Error).cause})`);
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

/** The new generation's pid, as `upgrade` notes it beside the pidfile. */
function upgradeNext(s: Scratch): number | undefined {
  try {
    const noted = Deno.readTextFileSync(
      s.pidfile.replace(/\.pid$/, ".upgrade"),
    );
    return JSON.parse(noted).next;
  } catch {
    return undefined; // not yet, or half written
  }
}

/**
 * Whether process `pid` holds the accepted end of the connection from
 * local port `peer` to `port` (from /proc/net/tcp and its descriptors).
 */
function accepted(pid: number, port: number, peer: number): boolean {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, "0");
  const line = Deno.readTextFileSync(`/proc/${pid}/net/tcp`).split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) =>
      f[1]?.endsWith(`:${hex(port)}`) && f[2]?.endsWith(`:${hex(peer)}`)
    );
  if (line === undefined) return false;
  return [...procFds(pid).values()].includes(`socket:[${line[9]}]`);
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
      // When each upgrade ran, to place a failed request (see below).
      const windows: string[] = [];
      try {
        for (let i = 0; i < 20; i++) {
          const from = Math.round(performance.now());
          const r = await cli(EXAMPLE, ["upgrade", ...s.paths]);
          windows.push(`${from}–${Math.round(performance.now())} ms`);
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
        assert.equal(
          counts.failed,
          0,
          [
            ...counts.errors,
            `upgrades: ${windows.join(", ")}`,
            ...s.log().split("\n").filter((l) =>
              /WRN|ERR|steer|Stopped|Starting/.test(l)
            ),
          ].join("\n"),
        );
        assert.ok(counts.ok > 40, `only ${counts.ok} requests answered`);
      }
      assert.equal(new Set(pids).size, 21);
      const health = await (await fetch(`http://127.0.0.1:${port}/health`))
        .json();
      assert.equal(health.pid, pids.at(-1));
    });
  },
});

/** The fixture's answer: its pid and generation. */
async function answer(port: number): Promise<[number, number]> {
  const text = await (await fetch(`http://127.0.0.1:${port}/`)).text();
  const [pid, generation] = text.trim().split(" ").map(Number);
  return [pid, generation];
}

/** How many generations the fixture's log says started. */
function startsIn(log: string): number {
  return log.match(/Starting upgraded /g)?.length ?? 0;
}

Deno.test("`upgrade` whose new generation fails before ready exits 1 with its error; the old one serves on, pidfile unchanged", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    const old = await started(s, FIXTURE, ["--port", String(port)]);
    const pidfileBefore = Deno.readTextFileSync(s.pidfile);
    const exitPath = s.pidfile.replace(/\.pid$/, ".exit");
    const exitBefore = Deno.readTextFileSync(exitPath);
    const cases: [string[], RegExp][] = [
      [["--fail", "throw"], /The new configuration is broken/],
      [["--fail", "exit"], /exited with status 3 before it was ready/],
      [
        ["--fail", "never-ready", "--ready-timeout", "2"],
        /not ready within 2 s/,
      ],
    ];
    for (const [args, error] of cases) {
      const r = await cli(FIXTURE, ["upgrade", ...s.paths, ...args]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, error);
      assert.equal(Deno.readTextFileSync(s.pidfile), pidfileBefore);
      assert.equal(Deno.readTextFileSync(exitPath), exitBefore);
      assert.deepEqual(await answer(port), [old, 1]);
      const st = await cli(FIXTURE, ["status", ...s.paths]);
      assert.equal(st.code, 0, st.stdout);
      assert.match(st.stdout, new RegExp(`running \\(pid ${old},`));
    }
    // The failed options were not recorded: a plain upgrade works.
    const r = await cli(FIXTURE, ["upgrade", ...s.paths]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const [pid, generation] = await answer(port);
    s.track(pid);
    assert.equal(generation, 2);
    assert.equal(readPid(s.pidfile), pid);
  });
});

Deno.test("`upgrade` keeps the new generation its own child until it is ready, so that no fork of the old daemon can take its pid; killed meanwhile, it fails the upgrade and the old one serves on", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    const old = await started(s, FIXTURE, ["--port", String(port)]);
    const pidfileBefore = Deno.readTextFileSync(s.pidfile);
    const upgrader = cliRunning(s, FIXTURE, [
      "upgrade",
      ...s.paths,
      "--ready-delay",
      "60000",
      "--ready-timeout",
      "120",
    ]);
    let next = 0;
    await waitFor("the new generation's pid beside the pidfile", () => {
      next = upgradeNext(s) ?? 0;
      return next !== 0;
    }, 20_000);
    s.track(next);
    // The leader that spawned it has ended: the kernel reparented it to
    // `upgrade`, not to init, and keeps its pid while `upgrade` runs.
    await waitFor(
      `pid ${next} to be upgrade's child (pid ${upgrader.pid})`,
      () => procStat(next).ppid === upgrader.pid,
      10_000,
    );
    // What the old daemon's user could do to the new generation once it
    // runs as that user.
    Deno.kill(next, "SIGKILL");
    const r = await upgrader.result;
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /was killed by SIGKILL before it was ready/);
    assert.equal(Deno.readTextFileSync(s.pidfile), pidfileBefore);
    assert.deepEqual(await answer(port), [old, 1]);
  });
});

Deno.test("`status` during an upgrade shows both pids, and a `start` racing it starts nothing", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    const old = await started(s, FIXTURE, ["--port", String(port)]);
    const upgrading = cli(FIXTURE, [
      "upgrade",
      ...s.paths,
      "--ready-delay",
      "1500",
    ]);
    let both = "";
    await waitFor("status to show the upgrade", async () => {
      const st = await cli(FIXTURE, ["status", ...s.paths]);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      if (st.stdout.includes("upgrading")) both = st.stdout;
      return both !== "";
    }, 20_000);
    const m = both.match(/upgrading: pid (\d+) → pid (\d+)/);
    assert.ok(m, both);
    assert.equal(Number(m[1]), old);
    const next = s.track(Number(m[2]))!;
    const racing = await cli(FIXTURE, ["start", ...s.paths]);
    assert.equal(racing.code, 0, racing.stdout + racing.stderr);
    assert.match(racing.stdout, /already running/);
    const r = await upgrading;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(readPid(s.pidfile), next);
    assert.equal(startsIn(s.log()), 2, s.log());
    assert.ok(!alive(old));
    // The old generation says how it ended.
    assert.match(
      s.log(),
      new RegExp(`Stopped \\(upgraded: replaced by pid ${next}; SIGTERM`),
    );
    const st = await cli(FIXTURE, ["status", ...s.paths]);
    assert.doesNotMatch(st.stdout, /upgrading/);
    // The exit record says how the old generation ended, and the new one
    // writes its own end there in turn.
    const exitRecord = () =>
      JSON.parse(Deno.readTextFileSync(s.pidfile.replace(/\.pid$/, ".exit")));
    assert.equal(exitRecord().pid, old);
    assert.equal(exitRecord().how, "upgraded");
    assert.match(exitRecord().detail, new RegExp(`replaced by pid ${next}`));
    assert.equal((await cli(FIXTURE, ["stop", ...s.paths])).code, 0);
    assert.equal(exitRecord().pid, next);
    assert.equal(exitRecord().how, "stopped");
  });
});

Deno.test("`start` of a second daemon on a port the daemon holds fails with address already in use", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    await started(s, EXAMPLE, ["--port", String(port)]);
    const other = [
      "--pidfile",
      `${s.dir}/other.pid`,
      "--log-file",
      `${s.dir}/other.log`,
    ];
    const r = await cli(EXAMPLE, ["start", ...other, "--port", String(port)]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`),
    );
    s.track(readPid(`${s.dir}/other.pid`));
    // Nor does a daemon join a port an unrelated program holds.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const busy = (l.addr as Deno.NetAddr).port;
      const r2 = await cli(EXAMPLE, [
        "start",
        ...other,
        "--port",
        String(busy),
      ]);
      assert.equal(r2.code, 1, r2.stdout + r2.stderr);
      assert.match(r2.stderr, /address already in use/);
    } finally {
      l.close();
    }
  });
});

Deno.test("`upgrade` of a daemon under `run` is refused with what to do instead", async () => {
  await withScratch(async (s) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", FIXTURE, "run", "--pidfile", s.pidfile],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    s.track(child.pid);
    try {
      await waitFor("the pidfile", () => readPid(s.pidfile) === child.pid);
      const r = await cli(FIXTURE, ["upgrade", "--pidfile", s.pidfile]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /service manager.*systemctl restart/);
      assert.ok(alive(child.pid));
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  });
});

Deno.test(
  asRoot(
    "`upgrade` takes the real lock from a hostile old generation, or refuses",
  ),
  async () => {
    await withScratch(async (s) => {
      const home = nobodyHome(s);
      const decoy = `${home}/decoy`;
      const port = freePort();
      const user = ["--user", "nobody", "--port", String(port)];
      // The old generation moves its lock to another descriptor and puts a
      // writable, locked file of its own where the lock was.
      const old = await started(s, FIXTURE, [
        ...user,
        "--hostile",
        "swap-lock",
        "--decoy",
        decoy,
      ]);
      await waitFor("the decoy", () => {
        try {
          return Deno.readLinkSync(`/proc/${old}/fd/5`) === decoy;
        } catch {
          return false;
        }
      });
      const r = await cli(FIXTURE, [
        "upgrade",
        ...s.paths,
        "--hostile",
        "none",
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const next = trackNow(s);
      assert.notEqual(next, old);
      // The new generation holds the pidfile itself, read-only.
      assert.equal(Deno.readLinkSync(`/proc/${next}/fd/5`), s.pidfile);
      const info = Deno.readTextFileSync(`/proc/${next}/fdinfo/5`);
      assert.match(info, /^flags:\s+0*[0-7]*0$/m, info);
      assert.match(info, /FLOCK\s+ADVISORY\s+WRITE/);
      // It was handed nothing of the decoy's.
      for (const [fd, target] of procFds(next)) {
        assert.notEqual(target, decoy, `fd ${fd}`);
      }
      assert.ok(!alive(old));

      // One that lets go of the lock has no pidfile to hand on: nothing starts.
      const again = await cli(FIXTURE, [
        "upgrade",
        ...s.paths,
        "--hostile",
        "drop-lock",
      ]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      const dropping = trackNow(s);
      await waitFor("the lock to be dropped", () => {
        try {
          return Deno.readLinkSync(`/proc/${dropping}/fd/5`) !== s.pidfile;
        } catch {
          return true;
        }
      });
      const refused = await cli(FIXTURE, ["upgrade", ...s.paths]);
      assert.equal(refused.code, 7, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /Not running/);
      assert.equal(startsIn(s.log()), 3, s.log());
    });
  },
);

Deno.test({
  name:
    "`upgrade` under `start --restart` replaces the supervisor's daemon without a lost request; its restart count stays",
  sanitizeResources: false,
  async fn() {
    await withScratch(async (s) => {
      const { port, supervisor, first } = await startSupervised(s);
      const clients = loopClients(`http://127.0.0.1:${port}/`, 4);
      let previous = first;
      try {
        for (let i = 0; i < 3; i++) {
          const r = await cli(FIXTURE, ["upgrade", ...s.paths]);
          assert.equal(r.code, 0, r.stdout + r.stderr);
          const m = r.stdout.match(/upgraded \(pid (\d+), generation (\d+)/);
          assert.ok(m, r.stdout);
          s.track(Number(m[1]));
          assert.equal(Number(m[2]), i + 2);
          assert.ok(!alive(previous), "the old generation still runs");
          previous = Number(m[1]);
        }
        const failures: [string, RegExp][] = [
          ["throw", /The new configuration is broken/],
          [
            "exit",
            /^upgraded: The daemon exited with status 3 before it was ready\n$/,
          ],
        ];
        for (const [fail, said] of failures) {
          const failed = await cli(FIXTURE, [
            "upgrade",
            ...s.paths,
            "--fail",
            fail,
          ]);
          assert.equal(failed.code, 1, failed.stdout + failed.stderr);
          assert.match(failed.stderr, said);
        }
      } finally {
        const counts = await clients.stop();
        assert.equal(counts.failed, 0, counts.errors.join("\n"));
        assert.ok(counts.ok > 10, `only ${counts.ok} requests answered`);
      }
      assert.deepEqual(await answer(port), [previous, 4]);
      assert.equal(readPid(s.pidfile), supervisor);
      const st = await cli(FIXTURE, ["status", ...s.paths]);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.match(
        st.stdout,
        new RegExp(
          `running \\(pid ${previous}, .*supervised by pid ${supervisor}, 0 restarts`,
        ),
      );
    });
  },
});

/**
 * `start --restart` of the fixture on a free port.
 *
 * @returns The port, the supervisor's pid and its daemon's, both tracked.
 */
async function startSupervised(
  s: Scratch,
): Promise<{ port: number; supervisor: number; first: number }> {
  const port = freePort();
  const r = await cli(FIXTURE, [
    "start",
    ...s.paths,
    "--port",
    String(port),
    "--restart",
    "on-failure",
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const supervisor = trackNow(s);
  const first = s.track((await answer(port))[0])!;
  return { port, supervisor, first };
}

/**
 * `start --restart` of the fixture, then `upgrade <args>` left running
 * until the supervisor's log names the new generation.
 *
 * @returns The running `upgrade`, and the new generation's pid (tracked).
 */
async function supervisedUpgrade(
  s: Scratch,
  args: string[],
): Promise<{ upgrading: ReturnType<typeof cliRunning>; next: number }> {
  await startSupervised(s);
  const upgrading = cliRunning(s, FIXTURE, ["upgrade", ...s.paths, ...args]);
  let next: string | undefined;
  await waitFor("the new generation", () => {
    next = s.log().match(/Upgrading: started generation \d+ \(pid (\d+)\)/)
      ?.[1];
    return next !== undefined;
  }, 20_000);
  return { upgrading, next: s.track(Number(next))! };
}

Deno.test({
  name:
    "`upgrade` under `start --restart`: a second upgrade while the first one's failed generation is reaped is refused, and the first hears how its generation ended",
  sanitizeResources: false,
  async fn() {
    await withScratch(async (s) => {
      const { upgrading: first, next: failed } = await supervisedUpgrade(s, [
        "--fail",
        "exit-holding-pipe",
      ]);
      // Exited, its readiness pipe still held by its child: being reaped.
      await waitFor("its exit", () => !alive(failed));
      const second = await cli(FIXTURE, ["upgrade", ...s.paths]);
      const r = await first.result;
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /exited with status 3 before it was ready/);
      if (second.code === 0) {
        // It came after the answer: an upgrade of its own, fine too.
        s.track(readPid(s.pidfile));
      } else {
        assert.match(second.stderr, /An upgrade is under way/);
      }
    });
  },
});

Deno.test({
  name:
    "`upgrade` under `start --restart`: a concurrent upgrade refused does not hide the running one's outcome",
  sanitizeResources: false,
  async fn() {
    await withScratch(async (s) => {
      const { upgrading: first } = await supervisedUpgrade(s, [
        "--ready-delay",
        "1500",
      ]);
      const second = await cli(FIXTURE, ["upgrade", ...s.paths]);
      assert.equal(second.code, 1, second.stdout + second.stderr);
      assert.match(second.stderr, /An upgrade is under way/);
      const r = await first.result;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /upgraded \(pid \d+, generation 2/);
    });
  },
});

Deno.test("a replaced generation that runs in slices (a throttled or starved process) still stops within a short stop timeout", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    const old = await started(s, FIXTURE, [
      "--port",
      String(port),
      "--stop-timeout",
      "1",
    ]);
    const upgrading = cliRunning(s, FIXTURE, [
      "upgrade",
      ...s.paths,
      "--stop-timeout",
      "1",
    ]);
    await waitFor(
      "the old generation to be asked to stop",
      () => /Stopping on SIGTERM/.test(s.log()),
      20_000,
      1,
    );
    // 5 ms of every 45: its timers always come late.
    const t0 = performance.now();
    while (alive(old) && performance.now() - t0 < 4000) {
      Deno.kill(old, "SIGSTOP");
      await new Promise((r) => setTimeout(r, 40));
      try {
        Deno.kill(old, "SIGCONT");
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const r = await upgrading.result;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    s.track(readPid(s.pidfile));
    assert.doesNotMatch(s.log(), /Did not stop within/);
    assert.match(s.log(), /Stopped \(upgraded: replaced by pid \d+; SIGTERM/);
  });
});

Deno.test("a new generation killed without a word after an upgrade is dead to status, whatever the old one's record says", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    await started(s, FIXTURE, ["--port", String(port)]);
    const r = await cli(FIXTURE, ["upgrade", ...s.paths]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const next = s.track()!;
    Deno.kill(next, "SIGKILL");
    await waitFor("the new generation gone", () => !alive(next));
    const st = await cli(FIXTURE, ["status", ...s.paths]);
    assert.equal(st.code, 1, st.stdout);
    assert.match(
      st.stdout,
      new RegExp(`remains \\(pid ${next}\\): it ended without saying how`),
    );
  });
});

/** The pids whose descriptors hold a lock on `path` (fdinfo shows it). */
function lockHolders(path: string): number[] {
  const { ino } = Deno.statSync(path);
  const out = new Set<number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    try {
      for (const fd of Deno.readDirSync(`/proc/${e.name}/fd`)) {
        const at = `/proc/${e.name}/fd/${fd.name}`;
        if (Deno.statSync(at).ino !== ino) continue;
        const info = Deno.readTextFileSync(`/proc/${e.name}/fdinfo/${fd.name}`);
        if (/FLOCK\s+ADVISORY\s+WRITE/.test(info)) out.add(Number(e.name));
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return [...out];
}

Deno.test(
  asRoot(
    "`upgrade` beside a pidfile in a sticky directory leaves no second generation behind when another user put an `x.upgrade` there first",
  ),
  async () => {
    await withScratch(async (s) => {
      const port = freePort();
      const old = await started(s, FIXTURE, ["--port", String(port)]);
      const home = nobodyHome(s);
      // A shared directory like /tmp: anyone may create a file in it.
      Deno.chmodSync(s.dir, 0o1777);
      const planted = s.pidfile.replace(/\.pid$/, ".upgrade");
      const lie = JSON.stringify({ pid: old, next: 1 });
      const w = await sh(
        asNobodyLine(
          home,
          `sh -c ${shq(`printf %s ${shq(lie)} > ${planted}`)}`,
        ),
      );
      assert.equal(w.code, 0, w.stderr);
      const r = await cli(FIXTURE, ["upgrade", ...s.paths]);
      // Whatever it answers, one generation holds the pidfile afterwards,
      // and it is the one the pidfile names.
      const holders = lockHolders(s.pidfile);
      holders.forEach((pid) => s.track(pid));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const next = readPid(s.pidfile)!;
      assert.notEqual(next, old);
      await waitFor("the old generation gone", () => !alive(old));
      assert.deepEqual(lockHolders(s.pidfile), [next]);
      assert.deepEqual(await answer(port), [next, 2]);
      const st = await cli(FIXTURE, ["status", ...s.paths]);
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.doesNotMatch(st.stdout, /upgrading/);
      // Another user's file is not root's to remove.
      assert.equal(Deno.statSync(planted).uid, 65534);
    });
  },
);

Deno.test(
  asRoot(
    "`upgrade` replaces an old generation that lies about its generation number",
  ),
  async () => {
    await withScratch(async (s) => {
      nobodyHome(s);
      const port = freePort();
      const old = await started(s, FIXTURE, [
        "--user",
        "nobody",
        "--port",
        String(port),
        "--hostile",
        "generation-zero",
      ]);
      await waitFor("the lie", () => s.log().includes("Published generation"));
      const r = await cli(FIXTURE, [
        "upgrade",
        ...s.paths,
        "--hostile",
        "none",
      ]);
      const next = trackNow(s);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.notEqual(next, old);
      const [pid, generation] = await answer(port);
      assert.equal(pid, next);
      assert.ok(generation > 1, `generation ${generation}`);
      assert.ok(!alive(old));
    });
  },
);

Deno.test(
  asRoot(
    "`upgrade` under `start --restart` is not blocked by an `x.request` another user put beside the pidfile",
  ),
  async () => {
    await withScratch(async (s) => {
      const port = freePort();
      const r0 = await cli(FIXTURE, [
        "start",
        ...s.paths,
        "--port",
        String(port),
        "--restart",
        "always",
      ]);
      assert.equal(r0.code, 0, r0.stdout + r0.stderr);
      trackNow(s);
      const [first] = await answer(port);
      s.track(first);
      const home = nobodyHome(s);
      Deno.chmodSync(s.dir, 0o1777);
      const planted = s.pidfile.replace(/\.pid$/, ".request");
      const w = await sh(asNobodyLine(home, `mkfifo ${shq(planted)}`));
      assert.equal(w.code, 0, w.stderr);
      const r = await cli(FIXTURE, ["upgrade", ...s.paths]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const [next, generation] = await answer(port);
      s.track(next);
      assert.notEqual(next, first);
      assert.equal(generation, 2);
    });
  },
);

Deno.test("a replaced generation that a loaded machine did not run through its linger still answers a request it accepted before", async () => {
  await withScratch(async (s) => {
    const port = freePort();
    const old = await started(s, FIXTURE, ["--port", String(port)]);
    // Accepted by the old generation, its request not sent yet.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const peer = (conn.localAddr as Deno.NetAddr).port;
      await waitFor(
        "the old generation to accept the connection",
        () => accepted(old, port, peer),
      );
      const upgrading = cli(FIXTURE, ["upgrade", ...s.paths]);
      await waitFor(
        "the old generation to be asked to stop",
        () => /Stopping on SIGTERM/.test(s.log()),
        20_000,
        1,
      );
      // Its linger's timer is armed right after that line (were it not yet,
      // the stall below would only delay the linger, and the test pass).
      await new Promise((r) => setTimeout(r, 50));
      // Not run through its linger (a loaded machine), while the request
      // arrives: it wakes with the linger over and the request unread.
      Deno.kill(old, "SIGSTOP");
      try {
        await conn.write(
          new TextEncoder().encode(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
          ),
        );
        await new Promise((r) => setTimeout(r, REPLACED_LINGER_MS + 350));
      } finally {
        Deno.kill(old, "SIGCONT");
      }
      const answer = new TextDecoder().decode(
        await new Response(conn.readable).arrayBuffer(),
      );
      assert.match(
        answer,
        /^HTTP\/1\.1 200/,
        `no answer: ${JSON.stringify(answer)}`,
      );
      assert.match(answer, new RegExp(`\\b${old} 1\\n$`));
      const r = await upgrading;
      assert.equal(r.code, 0, r.stdout + r.stderr);
      s.track(readPid(s.pidfile)!);
    } finally {
      try {
        conn.close();
      } catch {
        // closed by the server
      }
    }
  });
});

Deno.test("`upgrade` runs the program as it is on disk now: a changed script answers in the new generation", async () => {
  await withScratch(async (s) => {
    // A copy of the fixture the test can change, importing the library by
    // absolute path.
    const lib = new URL("../", import.meta.url);
    const copy = `${s.dir}/daemon.ts`;
    const text = Deno.readTextFileSync(FIXTURE)
      .replaceAll('"../../mod.ts"', JSON.stringify(`${lib}mod.ts`))
      .replaceAll('"../../ffi/mod.ts"', JSON.stringify(`${lib}ffi/mod.ts`))
      .replaceAll(
        '"./until_stopped.ts"',
        JSON.stringify(
          new URL("fixtures/until_stopped.ts", import.meta.url).href,
        ),
      );
    Deno.writeTextFileSync(copy, text);
    // Its configuration: the project's, its paths made absolute.
    const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", lib)));
    Deno.writeTextFileSync(
      `${s.dir}/deno.json`,
      JSON.stringify({
        imports: Object.fromEntries(
          Object.entries(config.imports as Record<string, string>).map((
            [k, v],
          ) => [k, new URL(v, lib).href]),
        ),
        unstable: config.unstable,
      }),
    );
    const port = freePort();
    const old = await started(s, copy, ["--port", String(port)]);
    assert.deepEqual(await answer(port), [old, 1]);
    const answers = "`${Deno.pid} ${ctx.generation}\\n`";
    assert.ok(text.includes(answers), "the fixture's answer line");
    Deno.writeTextFileSync(
      copy,
      text.replace(answers, "`${Deno.pid} ${ctx.generation} 2.0\\n`"),
    );
    const r = await cli(copy, ["upgrade", ...s.paths]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const next = s.track()!;
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    assert.equal(body, `${next} 2 2.0\n`, "the new code answers");
    assert.equal((await cli(copy, ["stop", ...s.paths])).code, 0);
  });
});
