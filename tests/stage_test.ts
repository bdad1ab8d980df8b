/**
 * One configuration path: every stage runs with what `start` resolved,
 * nothing is parsed or probed again after it.
 */
import assert from "node:assert/strict";
import {
  asNobodyLine,
  asRoot,
  BEHAVE,
  denoLine,
  nobodyHome,
  readPid,
  sh,
  withScratch,
} from "./helpers.ts";

Deno.test(
  asRoot(
    "a daemon started with --clear-env keeps the default paths start resolved from the caller's HOME, which it no longer sees",
  ),
  () =>
    withScratch(async (s) => {
      const home = nobodyHome(s);
      const line = (command: string) =>
        asNobodyLine(home, denoLine(BEHAVE, [command, "--clear-env"]));
      const start = await sh(line("start"));
      assert.equal(start.code, 0, start.stdout + start.stderr);
      const dir = `${home}/.local/state/behave`;
      s.track(readPid(`${dir}/behave.pid`));
      const st = await sh(line("status"));
      assert.equal(st.code, 0, st.stdout + st.stderr);
      assert.ok(
        st.stdout.includes(`logs to ${dir}/behave.log`),
        `status: ${st.stdout}`,
      );
      assert.equal((await sh(line("reload"))).code, 0);
      assert.match(Deno.readTextFileSync(`${dir}/behave.log`), /Reloaded/);
      assert.equal((await sh(line("stop"))).code, 0);
    }),
);
