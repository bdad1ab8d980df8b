/**
 * How a daemon ends when its `main` returns, and start-up errors that say
 * what to do: bind failures naming the address, a privileged port (exit 4),
 * the ready timeout, and the progress line on a terminal.
 */
import assert from "node:assert/strict";
import {
  alive,
  BEHAVE,
  cli,
  denoLine,
  type Scratch,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

/** The port the fixture's `serve-unawaited` logged. */
async function servingPort(s: Scratch): Promise<number> {
  let port = 0;
  await waitFor("the serving line", () => {
    port = Number(s.log().match(/Serving on port (\d+)/)?.[1] ?? 0);
    return port > 0;
  });
  return port;
}

Deno.test("a main() that does not await Deno.serve keeps serving until stop", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "serve-unawaited"]);
    const port = await servingPort(s);
    // Long after main returned (it used to end 6 ms after), still serving.
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(alive(pid), s.log());
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), "hi\n");
    const stop = await cli(BEHAVE, ["stop", ...s.paths]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid));
    assert.match(
      s.log(),
      /main\(\) returned: running on while the event loop has work/,
    );
    assert.match(
      s.log(),
      /Stopped \(SIGTERM, exit 0, \d+ ms after the stop request\)/,
    );
    assert.doesNotMatch(s.log(), /nothing was left to run/);
  });
});

Deno.test("a server main() started without ctx.signal is stopped at the stop timeout, with a hint", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, [
      "--behavior",
      "serve-unawaited-deaf",
      "--stop-timeout",
      "1",
    ]);
    await servingPort(s);
    const stop = await cli(BEHAVE, ["stop", ...s.paths]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid));
    assert.match(
      s.log(),
      /Did not stop within 1 s: exiting \(main\(\) had returned: pass ctx\.signal to what it starts/,
    );
  });
});

Deno.test("a daemon whose main() returned with nothing left to run ends, and says so", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "return-after-ready"]);
    await waitFor("the daemon ends", () => !alive(pid));
    assert.match(
      s.log(),
      /Stopped \(main returned and nothing was left to run, exit 0, after [\d.]+ s\)/,
    );
    assert.doesNotMatch(s.log(), /stop request/, "nobody asked it to stop");
    assert.throws(() => Deno.statSync(s.pidfile), "no pidfile left");
  });
  // In the foreground alike.
  const r = await cli(BEHAVE, ["run", "--behavior", "return-after-ready"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /main returned and nothing was left to run, exit 0/);
});

Deno.test("a main() that returns before ctx.ready() may still become ready; with nothing left it fails saying so", async () => {
  await withScratch(async (s) => {
    const pid = await started(s, BEHAVE, ["--behavior", "ready-later"]);
    await waitFor("the daemon ends", () => !alive(pid));
    assert.match(s.log(), /main\(\) returned before ctx\.ready\(\) was called/);
    assert.match(s.log(), /Stopped \(main returned and nothing was left/);
  });
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "return-before-ready",
    ]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /main\(\) returned before it was ready \(ctx\.ready\(\) was not called\), and nothing was left to run/,
    );
  });
});

for (const behavior of ["listen", "serve-unawaited"]) {
  Deno.test(`a bind failure names the address and port (Deno.${behavior === "listen" ? "listen" : "serve"}), in start and in run`, async () => {
    await withScratch(async (s) => {
      const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const port = busy.addr.port;
        const expected = new RegExp(
          `Cannot listen on "127\\.0\\.0\\.1:${port}": Address already in use`,
        );
        const r = await cli(BEHAVE, [
          "start",
          ...s.paths,
          "--behavior",
          behavior,
          "--port",
          String(port),
        ]);
        assert.equal(r.code, 1, r.stdout);
        assert.match(r.stderr, expected);
        assert.equal(r.stderr.split("\n").length, 2, "one line");
        const run = await cli(BEHAVE, [
          "run",
          "--behavior",
          behavior,
          "--port",
          String(port),
        ]);
        assert.equal(run.code, 1);
        assert.match(run.stderr, expected);
      } finally {
        busy.close();
      }
    });
  });
}

/** The kernel's lowest unprivileged port; 0 lets anyone bind anything. */
function unprivilegedStart(): number {
  return Number(
    Deno.readTextFileSync("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
  );
}

Deno.test({
  name:
    "a privileged port refused to a user (or after --user drops privileges) exits 4 with a hint, in start and in run",
  ignore: unprivilegedStart() === 0,
  fn: () =>
    withScratch(async (s) => {
      Deno.chmodSync(s.dir, 0o755);
      // Refused before the address is even looked at: any port below the
      // limit will do, in use or not.
      const port = String(unprivilegedStart() - 1);
      const hint =
        /Cannot listen on "127\.0\.0\.1:\d+": Permission denied.*ports below \d+ need privilege; bind it in prepare\(\).*CAP_NET_BIND_SERVICE/;
      const args = ["--behavior", "listen", "--port", port];
      if (Deno.uid() === 0) args.push("--user", "nobody");
      const r = await cli(BEHAVE, ["start", ...s.paths, ...args]);
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(r.stderr, hint);
      assert.equal(r.stderr.split("\n").length, 2, "one line");
      const run = await cli(BEHAVE, ["run", ...args]);
      assert.equal(run.code, 4, run.stderr);
      assert.match(run.stderr, hint);
    }),
});

Deno.test("the ready timeout says ctx.ready() was not called, how long main ran, and the log's last lines", async () => {
  await withScratch(async (s) => {
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "never-ready",
      "--ready-timeout",
      "1.5",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /not ready within 1\.5 s and was stopped: main\(\) had run for \d+\.\d s without calling ctx\.ready\(\)\. Last lines of .*d\.log:\n/,
    );
    const tail = r.stderr.split("\n").slice(1).filter((l) => l !== "");
    assert.ok(tail.length >= 1 && tail.length <= 5, r.stderr);
    assert.match(tail[tail.length - 1], /^ {2}.*Behavior never-ready$/);
  });
  await withScratch(async (s) => {
    // Under a supervisor, which passes on no more than ready or not.
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "never-ready",
      "--ready-timeout",
      "1.5",
      "--restart",
      "on-failure",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ctx\.ready\(\) was not called\. Last lines of /);
  });
});

Deno.test("the ready timeout shows the log start opened, not a link the daemon put in its place", async () => {
  await withScratch(async (s) => {
    const secret = `${s.dir}/secret`;
    Deno.writeTextFileSync(secret, "TOP SECRET\n");
    Deno.chmodSync(secret, 0o600);
    const r = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "swap-log-never-ready",
      "--secret",
      secret,
      "--ready-timeout",
      "1.5",
      "--stop-timeout",
      "1",
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Swapped the log for a link/);
    assert.doesNotMatch(r.stderr, /TOP SECRET/);
  });
});

Deno.test("start and stop show a progress line on a terminal after 2 s, and none without one", async () => {
  await withScratch(async (s) => {
    const out = `${s.dir}/typescript`;
    const start = denoLine(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "never-ready",
      "--ready-timeout",
      "3.5",
    ]);
    // script gives the command a pty; it records what reached the terminal.
    await sh(`script -qec ${shq(start)} ${shq(out)}`);
    const shown = Deno.readTextFileSync(out);
    assert.match(shown, /\rWaiting for behave to be ready… 2 s/);
    assert.match(shown, /\rWaiting for behave to be ready… 3 s/);
    assert.doesNotMatch(shown, /ready… [01] s/, "nothing before 2 s");
    // Cleared before the final message.
    assert.match(shown, /\r +\rbehave: The daemon was not ready/);

    const plain = await cli(BEHAVE, [
      "start",
      ...s.paths,
      "--behavior",
      "never-ready",
      "--ready-timeout",
      "2.5",
    ]);
    assert.equal(plain.code, 1);
    assert.doesNotMatch(plain.stderr, /Waiting/);
  });
  await withScratch(async (s) => {
    await started(s, BEHAVE, ["--behavior", "slow-stop"]);
    const out = `${s.dir}/typescript`;
    const stop = denoLine(BEHAVE, ["stop", ...s.paths, "--stop-timeout", "3"]);
    await sh(`script -qec ${shq(stop)} ${shq(out)}`);
    const shown = Deno.readTextFileSync(out);
    assert.match(shown, /\rWaiting for behave to stop… 2 s/);
    assert.match(shown, /\r +\rbehave stopped \(pid \d+, killed after/);
  });
});
