/**
 * How records are written: journald priority prefixes under `run` when
 * JOURNAL_STREAM names stderr, JSON lines with --log-format json, and colour
 * only on a terminal without NO_COLOR.
 */
import assert from "node:assert/strict";
import {
  BEHAVE,
  denoLine,
  EXAMPLE,
  sh,
  shq,
  started,
  waitFor,
  withScratch,
} from "./helpers.ts";

/** The start of an ANSI colour sequence. */
const ESC = "\u001b[";

/** Run the example in the foreground with stderr appended to `file`, until it is ready; then stop it. */
async function runOnce(
  file: string,
  env: string,
  extra: string[] = [],
): Promise<string> {
  const line = `${env} exec ${
    denoLine(EXAMPLE, ["run", "--port", "0", ...extra])
  } 2>>${shq(file)}`;
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", line],
    stdin: "null",
    stdout: "null",
  }).spawn();
  try {
    await waitFor("ready", () => Deno.readTextFileSync(file).includes("Ready"));
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
  }
  return Deno.readTextFileSync(file);
}

Deno.test("under run, lines carry sd-daemon priorities only when JOURNAL_STREAM names stderr", async () => {
  await withScratch(async (s) => {
    const file = `${s.dir}/stderr`;
    Deno.writeTextFileSync(file, "");
    const st = Deno.statSync(file);
    const text = await runOnce(file, `JOURNAL_STREAM=${st.dev}:${st.ino}`);
    const lines = text.trimEnd().split("\n");
    assert.ok(lines.every((l) => /^<\d>/.test(l)), text);
    assert.ok(lines.some((l) => l.startsWith("<6>") && l.includes("Ready")));
    if (Deno.uid() === 0) {
      assert.ok(
        lines.some((l) => l.startsWith("<4>") && l.includes("Running as root")),
      );
    }

    const other = `${s.dir}/stderr2`;
    Deno.writeTextFileSync(other, "");
    const plain = await runOnce(other, `JOURNAL_STREAM=${st.dev}:${st.ino}`); // names another file
    assert.doesNotMatch(plain, /^<\d>/m);
  });
});

Deno.test("--log-format json writes one JSON object per line to the log file", async () => {
  await withScratch(async (s) => {
    await started(s, EXAMPLE, ["--port", "0", "--log-format", "json"]);
    await waitFor("ready", () => s.log().includes("Ready"));
    const records = s.log().trimEnd().split("\n").map((l) => JSON.parse(l));
    const ready = records.find((r) => String(r.message).startsWith("Ready"));
    assert.ok(ready, JSON.stringify(records));
    assert.equal(ready.level, "INFO");
    assert.ok(
      typeof ready["@timestamp"] === "string" ||
        typeof ready.timestamp === "string",
    );
    assert.equal(
      typeof ready.properties?.pid,
      "number",
      "structured properties kept",
    );
  });
});

Deno.test("colour only on a terminal, never with NO_COLOR", async () => {
  await withScratch(async (s) => {
    const run = async (env: string) => {
      const out = `${s.dir}/tty-${crypto.randomUUID()}`;
      // script gives the daemon a terminal on stderr; its output is recorded.
      // The fixture exits by itself right after it is ready.
      const inner = `${env} ${
        denoLine(BEHAVE, ["run", "--behavior", "exit-after-ready"])
      }`;
      await sh(`script -qec ${shq(inner)} ${shq(out)}`);
      const text = Deno.readTextFileSync(out);
      assert.match(text, /Ready/);
      return text;
    };
    assert.ok(
      (await run("env -u NO_COLOR")).includes(ESC),
      "ANSI colour on a terminal",
    );
    assert.ok(!(await run("NO_COLOR=1")).includes(ESC));
    assert.ok(!s.log().includes(ESC));
  });
});
