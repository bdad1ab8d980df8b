/**
 * A periodic job with a clean shutdown: a run in progress when the daemon is
 * asked to stop finishes its current step, says where it stopped, and exits.
 *
 *   deno run -A examples/periodic.ts start --interval 60 --steps 10
 *
 * @module
 */
import { defineDaemon } from "../mod.ts";

export const daemon = defineDaemon({
  name: "denod-periodic",
  version: "0.1.0",
  description: "Runs a job every --interval seconds",
  options: {
    interval: {
      type: "integer",
      description: "Seconds between runs",
      default: 60,
      min: 1,
      max: 86400,
    },
    steps: {
      type: "integer",
      description: "Steps in one run",
      default: 10,
      min: 1,
      max: 1000,
    },
    "step-ms": {
      type: "integer",
      description: "Milliseconds one step takes",
      default: 500,
      min: 1,
      max: 60000,
    },
  },
  async main(ctx) {
    const { interval, steps } = ctx.options;
    const stepMs = ctx.options["step-ms"];
    ctx.ready();
    for (let run = 1; !ctx.signal.aborted; run++) {
      ctx.log.info("Run {run} started", { run });
      let step = 0;
      for (; step < steps && !ctx.signal.aborted; step++) {
        await sleep(stepMs); // one unit of work; never cut in the middle
      }
      if (step < steps) {
        ctx.log.info("Run {run} stopped cleanly after step {step} of {steps}", {
          run,
          step,
          steps,
        });
        return;
      }
      ctx.log.info("Run {run} finished", { run });
      await sleep(interval * 1000, ctx.signal);
    }
  },
});

/** Wait `ms`, or until `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

if (import.meta.main) await daemon.cli();
