/**
 * `unit` for whoever asks: a systemd user unit for a user's own service
 * manager (the default when not root), and a warning when the system unit's
 * PrivateTmp= would hide the program.
 */
import assert from "node:assert/strict";
import {
  asNobodyLine,
  cli,
  denoLine,
  EXAMPLE,
  nobodyHome,
  sh,
  shq,
  withScratch,
} from "./helpers.ts";
import { hiddenByPrivateTmp } from "../src/unit.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Whether a program is on the PATH (tests that need it are skipped otherwise). */
async function lacks(program: string): Promise<boolean> {
  return (await sh(`command -v ${program}`)).code !== 0;
}

Deno.test({
  name:
    "`unit --user-unit` writes a user unit (no User=, WantedBy=default.target) that `systemd-analyze --user verify` accepts without a word",
  ignore: await lacks("systemd-analyze"),
  fn: () =>
    withScratch(async (s) => {
      const r = await cli(EXAMPLE, [
        "unit",
        "--user-unit",
        "--port",
        "8080",
        "--config",
        "c.json",
        "--restart",
        "always",
      ], { cwd: s.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "", "asked for: no note");
      const lines = r.stdout.split("\n");
      for (
        const line of [
          "Type=notify",
          "Restart=always",
          "NoNewPrivileges=yes",
          "StateDirectory=denod-example",
          "WantedBy=default.target",
        ]
      ) {
        assert.ok(lines.includes(line), `${line}\n${r.stdout}`);
      }
      assert.doesNotMatch(
        r.stdout,
        /^(User|Group|PrivateTmp|ProtectSystem|ProtectHome)=|multi-user/m,
      );
      const exec = r.stdout.match(/^ExecStart=(.*)$/m)![1];
      assert.ok(exec.endsWith(` run --port 8080 --config ${s.dir}/c.json`));
      // The daemon finds its per-user paths itself, as that user.
      assert.doesNotMatch(exec, /user-unit|\/run\/|\/var\/log/);

      const file = `${s.dir}/denod-example.service`;
      Deno.writeTextFileSync(file, r.stdout);
      // The user manager's own directories, which a container lacks.
      const runtime = `${s.dir}/runtime`;
      Deno.mkdirSync(runtime, { mode: 0o700 });
      const verify = await sh(`systemd-analyze --user verify ${shq(file)}`, {
        env: { XDG_RUNTIME_DIR: runtime },
      });
      assert.equal(verify.code, 0, verify.stderr);
      assert.equal(verify.stdout + verify.stderr, "");

      // A user's manager cannot switch users; launchd has no such unit.
      for (
        const [args, why] of [
          [["--user", "daemon"], /A user unit runs as the user/],
          [["--format", "launchd"], /--user-unit makes a systemd unit/],
        ] as const
      ) {
        const bad = await cli(EXAMPLE, ["unit", "--user-unit", ...args]);
        assert.equal(bad.code, 2, bad.stdout);
        assert.equal(bad.stdout, "");
        assert.match(bad.stderr, why);
      }
      const elsewhere = await cli(EXAMPLE, ["status", "--user-unit"]);
      assert.equal(elsewhere.code, 2);
      assert.match(elsewhere.stderr, /--user-unit works with unit only/);
    }),
});

Deno.test("`unit` run by a user other than root writes a user unit and says so on stderr only; with --user, a system unit", () =>
  withScratch(async (s) => {
    // As root, the test becomes nobody; anyone else is a non-root caller already.
    const home = Deno.uid() === 0 ? nobodyHome(s) : undefined;
    const asUser = (args: string[]) => {
      const line = denoLine(EXAMPLE, ["unit", ...args]);
      return sh(home === undefined ? line : asNobodyLine(home, line), {
        cwd: s.dir,
      });
    };
    const r = await asUser([]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\[Unit\]\n/, "stdout is the unit alone");
    assert.ok(r.stdout.split("\n").includes("WantedBy=default.target"));
    assert.doesNotMatch(r.stdout, /^User=/m);
    assert.equal(
      r.stderr,
      "denod-example: a user unit, as you are not root: save it as ~/.config/systemd/user/denod-example.service (for a system unit: --user USER, or run unit as root)\n",
    );

    // The deploy recipe: `myd unit --user myd | sudo tee …` from a normal shell.
    const system = await asUser(["--user", "daemon"]);
    assert.equal(system.code, 0, system.stderr);
    // No note; only the PrivateTmp= warning, when this checkout is under /tmp.
    if (hiddenByPrivateTmp([ROOT, Deno.execPath()]).length === 0) {
      assert.equal(system.stderr, "");
    } else assert.doesNotMatch(system.stderr, /user unit/);
    const lines = system.stdout.split("\n");
    assert.ok(lines.includes("User=daemon"), system.stdout);
    assert.ok(lines.includes("WantedBy=multi-user.target"), system.stdout);
  }));

Deno.test("`unit` warns on stderr when the system unit's PrivateTmp= would hide the program or its files under /tmp", () =>
  withScratch(async (s) => {
    // The template reached through /tmp, as a project made there would be.
    const tree = `${s.dir}/tree`;
    Deno.symlinkSync(ROOT, tree);
    const r = await cli(`${tree}/daemon.ts`, [
      "unit",
      "--user",
      "daemon",
      "--config=/var/tmp/c.json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.split("\n").includes("PrivateTmp=yes"));
    // The runtime too, when this checkout (and its node_modules) is under /tmp.
    const named = [
      ...hiddenByPrivateTmp([Deno.execPath()]),
      `${tree}/daemon.ts`,
      "--config=/var/tmp/c.json",
    ];
    assert.equal(
      r.stderr,
      `denod-example: warning: the unit has PrivateTmp=yes, which hides /tmp from the service, and its command names ${
        named.map((w) => JSON.stringify(w)).join(", ")
      }: install the program (and its files) outside /tmp and /var/tmp\n`,
    );

    // Outside /tmp, or in a user unit (no PrivateTmp=), not a word.
    if (hiddenByPrivateTmp([ROOT, Deno.execPath()]).length === 0) {
      const quiet = await cli(EXAMPLE, ["unit", "--user", "daemon"]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stderr, "");
    }
    const user = await cli(`${tree}/daemon.ts`, ["unit", "--user-unit"]);
    assert.equal(user.code, 0, user.stderr);
    assert.equal(user.stderr, "");
  }));
