/**
 * The syslog sink against a real rsyslogd on its own socket and output file:
 * tag, pid, facility and severity arrive as sent; an unavailable socket is
 * reported once and nothing is lost.
 */
import assert from "node:assert/strict";
import {
  cli,
  EXAMPLE,
  sh,
  started,
  tool,
  waitFor,
  withScratch,
} from "./helpers.ts";
import { defaultPaths } from "../src/resolve.ts";

const missing = (await sh("command -v rsyslogd")).stdout.trim() === "" &&
  !Deno.env.get("CI");

/** An rsyslogd of the test's own, listening on `dir/log.sock`, writing `dir/out.log`. */
async function rsyslogd(
  dir: string,
): Promise<{ socket: string; out: string; stop: () => Promise<void> }> {
  const socket = `${dir}/log.sock`;
  const out = `${dir}/out.log`;
  const conf = `${dir}/rsyslog.conf`;
  Deno.writeTextFileSync(
    conf,
    `global(workDirectory="${dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="${socket}" CreatePath="on")
template(name="fields" type="string"
  string="%syslogfacility-text% %syslogseverity-text% %syslogtag% %procid% %msg%\\n")
*.* action(type="omfile" file="${out}" template="fields")
`,
  );
  const child = new Deno.Command(tool("rsyslogd"), {
    args: ["-n", "-f", conf, "-i", `${dir}/rsyslogd.pid`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor("rsyslogd's socket", () => {
    try {
      return Deno.statSync(socket).isSocket === true;
    } catch {
      return false;
    }
  });
  return {
    socket,
    out,
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
    },
  };
}

Deno.test({
  name:
    "records reach a real rsyslogd with the daemon's tag, pid, facility and severity",
  ignore: missing,
  fn: () =>
    withScratch(async (s) => {
      const rs = await rsyslogd(s.dir);
      try {
        const pid = await started(s, EXAMPLE, [
          "--port",
          "0",
          "--syslog=local3",
          "--syslog-socket",
          rs.socket,
        ]);
        const read = () => {
          try {
            return Deno.readTextFileSync(rs.out);
          } catch {
            return "";
          }
        };
        await waitFor("the ready record in rsyslog's file", () =>
          read().includes("Ready"));
        const ready = read().split("\n").find((l) =>
          l.includes("Ready")
        )!;
        // facility, severity, tag, the pid rsyslog parsed from the tag, message
        assert.match(
          ready,
          new RegExp(
            `^local3 info denod-example\\[${pid}\\]: ${pid} +Ready \\(pid ${pid}`,
          ),
        );
        if (Deno.uid() === 0) {
          assert.match(
            read(),
            new RegExp(
              `^local3 warning denod-example\\[${pid}\\].*Running as root`,
              "m",
            ),
          );
        }
        assert.doesNotMatch(
          s.log(),
          /Ready/,
          "records went to syslog, not to the file",
        );
        assert.equal((await cli(EXAMPLE, ["stop", ...s.paths])).code, 0);
        await waitFor("the stop record", () =>
          /Stopped \(SIGTERM, exit 0/.test(read()));

        // A --restart supervisor's own records go the same way, under its pid.
        const sup = await cli(EXAMPLE, [
          "start",
          ...s.paths,
          "--port",
          "0",
          "--syslog=local3",
          "--syslog-socket",
          rs.socket,
          "--restart",
          "on-failure",
        ]);
        assert.equal(sup.code, 0, sup.stderr);
        const [, child, supervisor] = sup.stdout.match(
          /started \(pid (\d+), supervised by pid (\d+)\)/,
        )!.map(Number);
        s.track(supervisor);
        s.track(child);
        await waitFor("the supervisor's ready record", () =>
          new RegExp(
            `^local3 info denod-example\\[${supervisor}\\]: ${supervisor} +The daemon is ready \\(pid ${child}\\)`,
            "m",
          ).test(read()));
        assert.doesNotMatch(s.log(), /supervisor/);
        assert.equal((await cli(EXAMPLE, ["stop", ...s.paths])).code, 0);
      } finally {
        await rs.stop();
      }
    }),
});

Deno.test("with syslog unavailable the daemon runs on, says so once, and writes its records to the log file", async () => {
  await withScratch(async (s) => {
    await started(s, EXAMPLE, [
      "--port",
      "0",
      "--syslog",
      "--syslog-socket",
      `${s.dir}/no.sock`,
    ]);
    await waitFor("ready in the log file", () => s.log().includes("Ready"));
    const log = s.log();
    assert.equal(
      (log.match(/syslog is unavailable at .*no\.sock/g) ?? []).length,
      1,
      log,
    );
    assert.match(log, /Listening on/);
    assert.equal((await cli(EXAMPLE, ["stop", ...s.paths])).code, 0);
    assert.equal((s.log().match(/syslog is unavailable/g) ?? []).length, 1);
  });
  // The same for a --restart supervisor's own records.
  await withScratch(async (s) => {
    const r = await cli(EXAMPLE, [
      "start",
      ...s.paths,
      "--port",
      "0",
      "--syslog",
      "--syslog-socket",
      `${s.dir}/no.sock`,
      "--restart",
      "always",
    ]);
    assert.equal(r.code, 0, r.stderr);
    s.track();
    assert.equal((await cli(EXAMPLE, ["stop", ...s.paths])).code, 0);
    const log = s.log();
    assert.equal(
      (log.match(/supervisor: syslog is unavailable at .*no\.sock/g) ?? [])
        .length,
      1,
      log,
    );
    assert.match(log, /supervisor: The daemon is ready \(pid \d+\)/);
    assert.match(log, /supervisor: Supervisor exits \(0\)/);
  });
});

Deno.test("an unknown facility is a usage error", async () => {
  const r = await cli(EXAMPLE, ["start", "--syslog=local9"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invalid value for --syslog: "local9"/);
});

Deno.test({
  name:
    "detached with no destination given: syslog when its socket exists, else the log file; status says which",
  ignore: missing,
  fn: () =>
    withScratch(async (s) => {
      // Without --log-file, the file for stdout/stderr is the default one.
      const { logFile } = defaultPaths("denod-example", {
        euid: Deno.uid() ?? 0,
        cwd: "/",
        env: (n) => Deno.env.get(n),
      });
      const existed = await Deno.stat(logFile).then(() => true, () => false);
      const rs = await rsyslogd(s.dir);
      try {
        const pidfile = ["--pidfile", s.pidfile];
        const r = await cli(EXAMPLE, [
          "start",
          ...pidfile,
          "--port",
          "0",
          "--syslog-socket",
          rs.socket,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const pid = s.track()!;
        await waitFor("records in rsyslog's file", () => {
          try {
            return Deno.readTextFileSync(rs.out).includes("Ready");
          } catch {
            return false;
          }
        });
        assert.match(
          Deno.readTextFileSync(rs.out),
          new RegExp(`^daemon info denod-example\\[${pid}\\]`, "m"),
        );
        const status = await cli(EXAMPLE, ["status", ...pidfile]);
        assert.match(status.stdout, /logs to syslog \(daemon at .*log\.sock\)/);
        assert.equal((await cli(EXAMPLE, ["stop", ...pidfile])).code, 0);

        // No socket there: the file.
        await started(s, EXAMPLE, ["--port", "0"]);
        const fileStatus = await cli(EXAMPLE, [
          "status",
          ...s.paths,
          "--syslog-socket",
          `${s.dir}/none`,
        ]);
        assert.match(
          fileStatus.stdout,
          new RegExp(`logs to ${s.logFile.replaceAll(".", "\\.")}\\)`),
        );
      } finally {
        await rs.stop();
        if (!existed) await Deno.remove(logFile).catch(() => {});
      }
    }),
});
