/**
 * The supervisor's parts that need no process: its log lines against
 * LogTape's, as the daemon's logging configures it.
 */
import assert from "node:assert/strict";
import { getLogger, resetSync } from "@logtape/logtape";
import { DroppedRecords } from "../src/dropped.ts";
import { setupLogging } from "../src/log.ts";
import { type Entry, formatLine, type Level } from "../src/_supervisor_log.ts";

/**
 * What the daemon's own logging (src/log.ts) writes for `entry` logged by
 * its child logger `supervisor`: its stderr writes, captured.
 */
function daemonLine(
  format: "text" | "json",
  name: string,
  entry: Entry,
): string {
  const decoder = new TextDecoder();
  let written = "";
  const writeSync = Deno.stderr.writeSync;
  Deno.stderr.writeSync = (data: Uint8Array) => {
    written += decoder.decode(data);
    return data.length;
  };
  try {
    setupLogging({
      name,
      level: "debug",
      format,
      journald: false,
      color: false,
      dropped: new DroppedRecords(),
    });
    getLogger([name]).getChild("supervisor").emit({
      ...entry,
      rawMessage: entry.message[0],
      properties: {},
    });
  } finally {
    Deno.stderr.writeSync = writeSync;
    resetSync();
  }
  return written;
}

Deno.test("`formatLine()` writes what LogTape's text and JSON formatters write for the daemon's `supervisor` logger", () => {
  const levels: Level[] = ["info", "warning", "error"];
  const messages = [
    "Supervising app (pid 12, restart on-failure, first delay 1 s ×1.5 up to 15 s)",
    'Lost the pidfile: "/run/a b.pid" was removed or replaced',
    "The supervisor failed: Error: boom\n    at f (file:///x.ts:1:1)",
    "Braces {stay} as they are, and a backslash \\ too",
    "",
  ];
  const timestamps = [
    0,
    1_700_000_000_123,
    Date.UTC(2031, 11, 31, 23, 59, 59, 9),
  ];
  let compared = 0;
  for (const format of ["text", "json"] as const) {
    for (const name of ["app", "denod-example"]) {
      for (const level of levels) {
        for (const message of messages) {
          for (const timestamp of timestamps) {
            const entry: Entry = { level, message: [message], timestamp };
            assert.equal(
              formatLine(format, name, entry),
              daemonLine(format, name, entry),
              JSON.stringify({ format, name, entry }),
            );
            compared++;
          }
        }
      }
    }
  }
  assert.equal(compared, 2 * 2 * 3 * 5 * 3);
});
