/**
 * The public types, pinned: every `@ts-expect-error` line must stay an
 * error, so a loosened type fails `deno check` and this file. The daemons'
 * `main` is never run; only its types matter.
 */
import assert from "node:assert/strict";
import type {
  Logger as LogTapeLogger,
  LogLevel as LogTapeLevel,
} from "@logtape/logtape";
import * as denod from "../mod.ts";
import {
  type DaemonContext,
  type DaemonLogger,
  defineDaemon,
  inspectPidfile,
  type LogLevel,
  Pidfile,
  reload,
  type ReloadResult,
  status,
  type StatusCode,
  type StatusResult,
  stop,
  type StopOptions,
  type StopResult,
} from "../mod.ts";

/** `true` when `A` and `B` are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;
/** A compile-time assertion: `T` must be `true`. */
function expectType<T extends true>(): T | void {}

Deno.test("`ctx.options` types each option from its spec, `choices` as their union; options and `ctx.core` are read-only", () => {
  const daemon = defineDaemon({
    name: "types",
    version: "1.0.0",
    options: {
      level: {
        type: "string",
        description: "",
        choices: ["low", "high"],
        default: "low",
      },
      mode: { type: "string", description: "", choices: ["fast", "safe"] },
      host: { type: "string", description: "", default: "localhost" },
      name: { type: "string", description: "" },
      port: { type: "integer", description: "", default: 8000 },
      workers: { type: "integer", description: "" },
      config: { type: "path", description: "" },
      verbose: { type: "boolean", description: "" },
    },
    main(ctx) {
      expectType<Equal<typeof ctx.options.level, "low" | "high">>();
      expectType<Equal<typeof ctx.options.mode, "fast" | "safe" | undefined>>();
      expectType<Equal<typeof ctx.options.host, string>>();
      expectType<Equal<typeof ctx.options.name, string | undefined>>();
      expectType<Equal<typeof ctx.options.port, number>>();
      expectType<Equal<typeof ctx.options.workers, number | undefined>>();
      expectType<Equal<typeof ctx.options.config, string | undefined>>();
      expectType<Equal<typeof ctx.options.verbose, boolean>>();
      // @ts-expect-error a choice is not any string
      expectType<Equal<typeof ctx.options.level, string>>();
      // @ts-expect-error "medium" is not one of the choices
      const medium: typeof ctx.options.level = "medium";
      // @ts-expect-error the options are read-only
      ctx.options.level = "high";
      // @ts-expect-error the options are read-only
      ctx.options.port = 1;
      // @ts-expect-error no such option
      ctx.options.missing;
      // @ts-expect-error the library's options are read-only too
      ctx.core.stopTimeout = 1;
      void medium;
    },
  });
  assert.equal(daemon.definition.name, "types");
});

Deno.test("`ctx.onReload()` takes a handler of no arguments, sync or async", () => {
  const register = (ctx: DaemonContext) => {
    ctx.onReload(() => {});
    ctx.onReload(async () => {});
    // @ts-expect-error a handler receives nothing
    ctx.onReload((reason: string) => void reason);
    // @ts-expect-error a handler is required
    ctx.onReload();
  };
  expectType<Equal<ReturnType<DaemonContext["onReload"]>, void>>();
  assert.equal(typeof register, "function");
});

Deno.test("the control functions take the pidfile and an options object, and return read-only results", () => {
  // Never called: only the types are checked.
  const use = async (path: string) => {
    const stopped = await stop(path, { stopTimeout: 5, readyTimeout: 1 });
    expectType<Equal<typeof stopped, StopResult>>();
    if (stopped.outcome === "not-running") {
      expectType<Equal<typeof stopped.removedStale, boolean>>();
    } else {
      expectType<Equal<typeof stopped.outcome, "terminated" | "killed">>();
      expectType<Equal<typeof stopped.pid, number>>();
    }
    // @ts-expect-error a timeout is an option, not a positional number
    await stop(path, 5);
    // @ts-expect-error the OS interface is not a parameter
    await stop({}, path, 5, 30);
    // @ts-expect-error results are read-only
    stopped.outcome = "killed";

    const st = await status(path, { name: "myd" });
    expectType<Equal<typeof st, StatusResult>>();
    expectType<Equal<typeof st.code, StatusCode>>();
    expectType<Equal<StatusCode, 0 | 1 | 3 | 4>>();
    // @ts-expect-error results are read-only
    st.code = 0;

    const reloaded = await reload(path, { timeout: 5 });
    expectType<Equal<typeof reloaded, ReloadResult>>();
    // @ts-expect-error a timeout is an option, not a positional number
    await reload(path, 5);

    const seen = inspectPidfile(path);
    if (seen.state === "running") expectType<Equal<typeof seen.pid, number>>();
    // @ts-expect-error the file's identity is not part of the public state
    if (seen.state === "running") void seen.file;

    const pidfile = Pidfile.acquire(path);
    expectType<Equal<ReturnType<typeof pidfile.read>, number | undefined>>();
    // @ts-expect-error the OS interface is not a parameter
    Pidfile.acquire({}, path);
    // @ts-expect-error the locked descriptor is not public
    void pidfile.fd;

    const options: StopOptions = { stopTimeout: 1 };
    // @ts-expect-error options are read-only
    options.stopTimeout = 2;
  };
  assert.equal(typeof use, "function");
});

Deno.test("mod.ts publishes neither the FFI seam nor start()", () => {
  const names = Object.keys(denod);
  for (const name of ["libc", "start", "terminate", "runCli"]) {
    assert.ok(!names.includes(name), name);
  }
  // @ts-expect-error the OS interface's type is not published
  type _Libc = denod.Libc;
});

Deno.test("`LogLevel` is LogTape's, and a LogTape logger is a `DaemonLogger`", () => {
  expectType<Equal<LogLevel, LogTapeLevel>>();
  expectType<LogTapeLogger extends DaemonLogger ? true : false>();
  // @ts-expect-error not any string
  expectType<Equal<LogLevel, string>>();
});
