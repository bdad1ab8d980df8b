/**
 * The supervisor's parts that need no process: what it does when a daemon
 * exits, and its log lines against LogTape's, as the daemon's logging
 * configures it.
 */
import assert from "node:assert/strict";
import { getLogger, resetSync } from "@logtape/logtape";
import { DroppedRecords } from "../src/dropped.ts";
import { setupLogging } from "../src/log.ts";
import { type Entry, formatLine, type Level } from "../src/_supervisor_log.ts";
import {
  type Counters,
  nextStep,
  type RestartPolicy,
  type RunExit,
  type RunPhase,
  type Step,
} from "../src/supervise.ts";

const onFailure: RestartPolicy = {
  restart: "on-failure",
  delay: 1,
  maxRestarts: 3,
  reset: 30,
};
const always: RestartPolicy = { ...onFailure, restart: "always" };
const crashed: RunExit = { status: "status 1", clean: false, upMs: 500 };
const exited0: RunExit = { status: "status 0", clean: true, upMs: 500 };
const killed: RunExit = { status: "signal SIGSEGV", clean: false, upMs: 500 };
const first: Counters = { restarts: 0, inARow: 0 };
const later: Counters = { restarts: 4, inARow: 1 };

Deno.test("`nextStep()` exits, restarts or gives up by the phase a run ended in, its exit, the policy and the counts", () => {
  const cases: [string, RunPhase, RunExit, RestartPolicy, Counters, Step][] = [
    ["a stop was asked for", "stopping", crashed, always, later, {
      do: "exit",
      code: 0,
      because: "stopped",
    }],
    ["a stop during the first start", "stopping", crashed, always, first, {
      do: "exit",
      code: 0,
      because: "stopped",
    }],
    [
      "the first daemon ended before it was ready",
      "starting",
      exited0,
      always,
      first,
      {
        do: "exit",
        code: 1,
        because: "never ready",
      },
    ],
    [
      "the first daemon could not be spawned",
      "spawning",
      crashed,
      always,
      first,
      {
        do: "exit",
        code: 1,
        because: "never ready",
      },
    ],
    ["on-failure, exit 0 after ready", "up", exited0, onFailure, later, {
      do: "exit",
      code: 0,
      because: "done",
    }],
    ["always, exit 0 after ready", "up", exited0, always, later, {
      do: "restart",
      delay: 1.5,
      inARow: 2,
    }],
    [
      "on-failure, the first daemon crashed once ready",
      "up",
      crashed,
      onFailure,
      first,
      {
        do: "restart",
        delay: 1,
        inARow: 1,
      },
    ],
    ["on-failure, killed by a signal", "up", killed, onFailure, later, {
      do: "restart",
      delay: 1.5,
      inARow: 2,
    }],
    [
      "on-failure, exit 0 before ready (not ready in time)",
      "starting",
      exited0,
      onFailure,
      later,
      {
        do: "restart",
        delay: 1.5,
        inARow: 2,
      },
    ],
    ["a restart could not be spawned", "spawning", crashed, onFailure, later, {
      do: "restart",
      delay: 1.5,
      inARow: 2,
    }],
    [
      "the delay grows ×1.5",
      "up",
      crashed,
      always,
      { restarts: 9, inARow: 2 },
      {
        do: "restart",
        delay: 2.25,
        inARow: 3,
      },
    ],
    [
      "--max-restarts reached",
      "up",
      killed,
      always,
      { restarts: 9, inARow: 3 },
      {
        do: "give-up",
        why:
          "gave up after 3 restarts in a row (--max-restarts 3); the last ended with signal SIGSEGV",
      },
    ],
    [
      "--max-restarts reached by one just short of --restart-reset",
      "up",
      {
        ...crashed,
        upMs: 29_999,
      },
      always,
      { restarts: 9, inARow: 3 },
      {
        do: "give-up",
        why:
          "gave up after 3 restarts in a row (--max-restarts 3); the last ended with status 1",
      },
    ],
    ["--max-restarts 0", "up", crashed, { ...always, maxRestarts: 0 }, first, {
      do: "give-up",
      why:
        "gave up after 0 restarts in a row (--max-restarts 0); the last ended with status 1",
    }],
    [
      "up for --restart-reset: the count starts afresh",
      "up",
      {
        ...crashed,
        upMs: 30_000,
      },
      always,
      { restarts: 9, inARow: 3 },
      {
        do: "restart",
        delay: 1,
        inARow: 1,
      },
    ],
    [
      "never ready, yet up for --restart-reset",
      "starting",
      {
        ...crashed,
        upMs: 45_000,
      },
      onFailure,
      { restarts: 9, inARow: 3 },
      {
        do: "restart",
        delay: 1,
        inARow: 1,
      },
    ],
  ];
  for (const [what, phase, exit, policy, counters, step] of cases) {
    assert.deepEqual(nextStep(phase, exit, policy, counters), step, what);
  }
});

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
