/** Each example daemon is started, checked from the outside and stopped. */
import assert from "node:assert/strict";
import { alive, cli, started, waitFor, withScratch } from "./helpers.ts";

const examples = new URL("../examples/", import.meta.url).pathname;

Deno.test("examples/echo.ts echoes what a client sends and stops cleanly with a client connected", async () => {
  await withScratch(async (s) => {
    const entry = `${examples}echo.ts`;
    const pid = await started(s, entry, ["--port", "0"]);
    const port = Number(s.log().match(/Listening on [\d.]+:(\d+)/)![1]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("hello, daemon\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    assert.equal(
      new TextDecoder().decode(buf.subarray(0, n!)),
      "hello, daemon\n",
    );
    const stop = await cli(entry, ["stop", ...s.paths]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(!alive(pid));
    assert.match(s.log(), /Stopped \(SIGTERM, exit 0/);
    conn.close();
  });
});

Deno.test("examples/watch.ts logs a file created in the watched directory; a missing directory fails start", async () => {
  await withScratch(async (s) => {
    const entry = `${examples}watch.ts`;
    const watched = `${s.dir}/in`;
    Deno.mkdirSync(watched);
    await started(s, entry, ["--dir", watched]);
    Deno.writeTextFileSync(`${watched}/new.txt`, "x");
    await waitFor(
      "the create event in the log",
      () => /create .*in\/new\.txt/.test(s.log()),
    );
    assert.equal((await cli(entry, ["stop", ...s.paths])).code, 0);

    const missing = await cli(entry, [
      "start",
      ...s.paths,
      "--dir",
      `${s.dir}/nope`,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Cannot watch ".*nope": no such directory/);
  });
});

Deno.test("examples/periodic.ts stops mid-run cleanly after the current step", async () => {
  await withScratch(async (s) => {
    const entry = `${examples}periodic.ts`;
    const pid = await started(s, entry, [
      "--interval",
      "1",
      "--steps",
      "50",
      "--step-ms",
      "100",
    ]);
    await waitFor("a run in progress", () => s.log().includes("Run 1 started"));
    const t0 = performance.now();
    const stop = await cli(entry, ["stop", ...s.paths]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.ok(
      performance.now() - t0 < 4000,
      "stopped without waiting for the whole run",
    );
    assert.ok(!alive(pid));
    assert.match(s.log(), /Run 1 stopped cleanly after step \d+ of 50/);
    assert.doesNotMatch(s.log(), /Run 1 finished/);
    assert.match(s.log(), /Stopped \(SIGTERM, exit 0/);
  });
});
