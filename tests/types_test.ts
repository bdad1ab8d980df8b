/**
 * The public types, pinned: every `@ts-expect-error` line must stay an
 * error, so a loosened type fails `deno check` and this file. The daemons'
 * `main` is never run; only its types matter.
 */
import assert from "node:assert/strict";
import { type DaemonContext, defineDaemon } from "../mod.ts";

/** `true` when `A` and `B` are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;
/** A compile-time assertion: `T` must be `true`. */
function expectType<T extends true>(): T | void {}

Deno.test("`ctx.options` types each option from its spec, `choices` as their union, read-only", () => {
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
