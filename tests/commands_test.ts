/**
 * The command table: what each command takes, checked in one place.
 */
import assert from "node:assert/strict";
import { checkOptions, COMMANDS } from "../src/commands.ts";
import { UsageError } from "../src/errors.ts";
import { cli, EXAMPLE } from "./helpers.ts";

Deno.test("checkOptions() refuses an option the command does not take, naming both", () => {
  const refused: Array<[keyof typeof COMMANDS, string, RegExp]> = [
    ["status", "format", /"--format" does not apply to status: .*unit only/],
    ["help", "user", /"--user" does not apply to help$/],
    ["version", "port", /"--port" does not apply to version$/],
    ["run", "restart", /"--restart" does not apply to run: --restart works/],
    ["run", "max-restarts", /"--max-restarts" does not apply to run/],
    ["start", "notify-fd", /"--notify-fd" does not apply to start: .*run only/],
  ];
  for (const [command, option, why] of refused) {
    assert.throws(
      () => checkOptions(command, [option]),
      (err: unknown) => err instanceof UsageError && why.test(err.message),
      `${command} --${option}`,
    );
  }
  // One list of a daemon's options works with every command that controls it.
  for (
    const command of ["start", "stop", "status", "reload", "restart"] as const
  ) {
    checkOptions(command, ["pidfile", "log-file", "user", "port", "restart"]);
  }
  checkOptions("unit", ["format", "restart", "port"]);
  checkOptions("run", ["notify-fd", "user", "port"]);
});

Deno.test("every command says what it needs: help and version need neither libc nor a pidfile, unit no pidfile and can do without libc", () => {
  for (const command of ["help", "version"] as const) {
    assert.equal(COMMANDS[command].libc, false);
    assert.equal(COMMANDS[command].pidfile, false);
    assert.deepEqual(COMMANDS[command].options, []);
  }
  for (const command of ["stop", "status", "reload"] as const) {
    assert.equal(COMMANDS[command].pidfile, true);
  }
  assert.equal(COMMANDS.run.pidfile, false, "only when --pidfile is given");
  assert.equal(COMMANDS.unit.libc, false);
  assert.equal(COMMANDS.unit.pidfile, false);
});

Deno.test("status --format systemd is a usage error, not ignored", async () => {
  const r = await cli(EXAMPLE, ["status", "--format", "systemd"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /"--format" does not apply to status/);
});
