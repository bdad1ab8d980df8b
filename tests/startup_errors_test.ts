/**
 * How a daemon ends when its `main` returns.
 */
import assert from "node:assert/strict";
import {
  alive,
  BEHAVE,
  cli,
  type Scratch,
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
