/**
 * `run` without FFI (`--deny-ffi`, or no libc driver for the OS) does what
 * Deno's own APIs can and refuses in one line what needs libc.
 */
import assert from "node:assert/strict";
import { EXAMPLE, sh, shq, waitFor, withScratch } from "./helpers.ts";
import { LibcMissing, needsLibc } from "../src/without_libc.ts";
import { Exit } from "../src/errors.ts";
import type { CoreOptions } from "../src/options.ts";

Deno.test("`run` without FFI serves, takes its umask, reloads on SIGHUP, logs to stderr and stops on SIGTERM with exit 0", async () => {
  await withScratch(async (s) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--deny-ffi",
        EXAMPLE,
        "run",
        "--port",
        "0",
        "--umask",
        "077",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    s.track(child.pid);
    let text = "";
    const reading = (async () => {
      for await (
        const chunk of child.stderr.pipeThrough(new TextDecoderStream())
      ) {
        text += chunk;
      }
    })();
    await waitFor("Ready", () => /\] denod-example: Ready/.test(text));
    const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
    assert.match(status, /^Umask:\s+0077$/m);
    const port = Number(text.match(/Listening on http:\/\/[^:]+:(\d+)\//)![1]);
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal((await res.json()).pid, child.pid);
    child.kill("SIGHUP");
    await waitFor("Reloaded", () => /\] denod-example: Reloaded/.test(text));
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, text);
    await reading;
    assert.match(text, /Stopped \(SIGTERM, exit 0/);
    assert.match(
      text,
      /\[WRN\] denod-example: Without FFI, core dumps and no-new-privs are as the service manager set them/,
    );
    assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
  });
});

Deno.test("`run` without FFI refuses in one line what needs libc: --user, --group, --pidfile, --syslog, --notify-fd, systemd's NOTIFY_SOCKET", async () => {
  const cases: [string[], Record<string, string>, string][] = [
    [["--user", "nobody"], {}, "run --user"],
    [["--group", "0"], {}, "run --group"],
    [["--pidfile", "/tmp/denod-never.pid"], {}, "run --pidfile"],
    [["--syslog"], {}, "run --syslog"],
    [["--notify-fd", "3"], {}, "run --notify-fd"],
    [
      [],
      { NOTIFY_SOCKET: "/run/systemd/notify" },
      "run under systemd's NOTIFY_SOCKET (sd_notify)",
    ],
  ];
  for (const [args, env, what] of cases) {
    const line = [Deno.execPath(), "run", "-A", "--deny-ffi", EXAMPLE, "run"]
      .concat(args).map(shq).join(" ");
    const r = await sh(line, { env });
    assert.equal(r.code, 4, `${what}: ${r.stdout}${r.stderr}`);
    assert.equal(
      r.stderr,
      `denod-example: ${what} needs FFI to call libc: run it with --allow-ffi (deno run -A, or a binary compiled with it)\n`,
    );
    assert.equal(r.stdout, "");
  }
});

Deno.test("`needsLibc()` names nothing for a plain run; `LibcMissing` on an OS without a driver is exit 1 and says which OSes are", () => {
  const plain = {
    user: undefined,
    group: undefined,
    pidfile: undefined,
    logTo: "stderr",
    notifyFd: undefined,
  } as unknown as CoreOptions;
  assert.equal(needsLibc(plain, () => undefined), null);
  assert.equal(
    needsLibc({ ...plain, logTo: "syslog" }, () => undefined),
    "run --syslog",
  );
  const err = new LibcMissing(
    "run --user",
    new Error("denod is not supported on darwin"),
  );
  assert.equal(err.exitCode, Exit.FAILURE);
  assert.equal(
    err.message,
    "run --user needs libc, and denod is not supported on darwin yet (Linux on x86_64 and aarch64 is)",
  );
});
