import { ContextLocalStorage } from "./context.d.ts";
import { LogLevel } from "./level.d.ts";
import { FilterLike } from "./filter.d.ts";
import { Sink } from "./sink.d.ts";
import { ScopedConfigLike } from "./scoped-config.d.ts";

//#region src/config.d.ts

/**
 * A configuration for the loggers.
 */
interface Config<TSinkId extends string, TFilterId extends string> {
  /**
   * The sinks to use.  The keys are the sink identifiers, and the values are
   * {@link Sink}s.
   */
  sinks: Record<TSinkId, Sink>;
  /**
   * The filters to use.  The keys are the filter identifiers, and the values
   * are either {@link Filter}s or {@link LogLevel}s.
   */
  filters?: Record<TFilterId, FilterLike>;
  /**
   * The loggers to configure.
   */
  loggers: LoggerConfig<TSinkId, TFilterId>[];
  /**
   * The context-local storage to use for implicit contexts.
   * @since 0.7.0
   */
  contextLocalStorage?: ContextLocalStorage<Record<string, unknown>>;
  /**
   * Whether to reset the configuration before applying this one.
   */
  reset?: boolean;
}
/**
 * A scoped configuration for the current execution context.
 *
 * Unlike {@link Config}, this type does not include `reset` or
 * `contextLocalStorage`.  Scoped configuration changes only the logging policy
 * for a callback; the context-local storage must already be initialized by the
 * process-global configuration.
 *
 * @since 2.3.0
 */
type ScopedConfig<TSinkId extends string, TFilterId extends string> = ScopedConfigLike<TSinkId, TFilterId>;
type SyncCallbackResult<TResult> = TResult extends PromiseLike<unknown> ? never : TResult;
/**
 * A logger configuration.
 */
interface LoggerConfig<TSinkId extends string, TFilterId extends string> {
  /**
   * The category of the logger.  If a string, it is equivalent to an array
   * with one element.
   */
  category: string | string[];
  /**
   * The sink identifiers to use.
   */
  sinks?: TSinkId[];
  /**
   * How to combine the logger's sinks with its ancestors' sinks.
   *
   * If `inherit`, the sinks that the parent would use for a record's level
   * are used along with the specified sinks.  The parent's `lowestLevel`
   * continues to apply to the inherited sinks.
   *
   * If `override`, only the specified sinks are used.
   *
   * If `forward`, every ancestor's configured sinks are used along with the
   * specified sinks, ignoring each ancestor's `lowestLevel` (including
   * `null`); only this logger's own `lowestLevel` applies.  An ancestor
   * configured with `parentSinks: "override"` forms a boundary: its own
   * sinks are still inherited, but nothing beyond it.  Repeated references
   * to the same sink are not deduplicated.  Available since 2.4.0.
   *
   * The default is `inherit`.
   * @default "inherit"
   * @since 0.6.0
   */
  parentSinks?: "inherit" | "override" | "forward";
  /**
   * The filter identifiers to use.  If no filters are specified, the logger
   * uses the filters from the nearest ancestor that has them.  Specifying one
   * or more filters replaces the inherited filters instead of combining with
   * them.
   */
  filters?: TFilterId[];
  /**
   * The lowest log level to accept.  If `null`, the logger will reject all
   * records.
   * @since 0.8.0
   */
  lowestLevel?: LogLevel | null;
  /**
   * Whether to capture where in the source code each logging method of this
   * logger and its descendants is called, and put it in the
   * `LogRecord.sourceLocation` field of the log records.  Formatters
   * show it only if asked to, e.g., with the
   * `TextFormatterOptions.sourceLocation` option.
   *
   * Capturing builds a stack trace for every logging call that is not
   * filtered out by its level, so this is meant for development rather than
   * production.  The location comes from the runtime's stack trace and is
   * absent if it cannot be determined.
   *
   * If omitted, the setting is inherited from the parent category.  The meta
   * logger never captures source locations.
   * @default `false` for the root logger
   * @since 2.4.0
   */
  captureSourceLocation?: boolean;
}
/**
 * Configure the loggers with the specified configuration.
 *
 * Note that if the given sinks or filters are disposable, they will be
 * disposed when the configuration is reset, or when the process exits.
 *
 * @example
 * ```typescript
 * await configure({
 *   sinks: {
 *     console: getConsoleSink(),
 *   },
 *   filters: {
 *     slow: (log) =>
 *       "duration" in log.properties &&
 *       log.properties.duration as number > 1000,
 *   },
 *   loggers: [
 *     {
 *       category: "my-app",
 *       sinks: ["console"],
 *       lowestLevel: "info",
 *     },
 *     {
 *       category: ["my-app", "sql"],
 *       filters: ["slow"],
 *       lowestLevel: "debug",
 *     },
 *     {
 *       category: "logtape",
 *       sinks: ["console"],
 *       lowestLevel: "error",
 *     },
 *   ],
 * });
 * ```
 *
 * @param config The configuration.
 */
declare function configure<TSinkId extends string, TFilterId extends string>(config: Config<TSinkId, TFilterId>): Promise<void>;
/**
 * Configure sync loggers with the specified configuration.
 *
 * Note that if the given sinks or filters are disposable, they will be
 * disposed when the configuration is reset, or when the process exits.
 *
 * Also note that passing async sinks or filters will throw. If
 * necessary use {@link resetSync} or {@link disposeSync}.
 *
 * @example
 * ```typescript
 * configureSync({
 *   sinks: {
 *     console: getConsoleSink(),
 *   },
 *   loggers: [
 *     {
 *       category: "my-app",
 *       sinks: ["console"],
 *       lowestLevel: "info",
 *     },
 *     {
 *       category: "logtape",
 *       sinks: ["console"],
 *       lowestLevel: "error",
 *     },
 *   ],
 * });
 * ```
 *
 * @param config The configuration.
 * @since 0.9.0
 */
declare function configureSync<TSinkId extends string, TFilterId extends string>(config: Config<TSinkId, TFilterId>): void;
/**
 * Runs a callback with a LogTape configuration scoped to the current execution
 * context.
 *
 * The process-global configuration must already provide
 * `contextLocalStorage`.  The scoped configuration fully overrides global
 * logger routing while the callback and its async work run.
 *
 * @param config The scoped configuration.
 * @param callback The callback to run.
 * @returns The callback's resolved return value.
 * @since 2.3.0
 */
declare function withConfig<TSinkId extends string, TFilterId extends string, TResult>(config: ScopedConfig<TSinkId, TFilterId>, callback: () => TResult): Promise<Awaited<TResult>>;
/**
 * Runs a synchronous callback with a LogTape configuration scoped to the
 * current execution context.
 *
 * The scoped configuration must not contain async disposable sinks or filters.
 *
 * @param config The scoped configuration.
 * @param callback The callback to run.
 * @returns The callback's return value.
 * @since 2.3.0
 */
declare function withConfigSync<TSinkId extends string, TFilterId extends string, TResult>(config: ScopedConfig<TSinkId, TFilterId>, callback: () => SyncCallbackResult<TResult>): SyncCallbackResult<TResult>;
/**
 * Get the current configuration, if any.  Otherwise, `null`.
 * @returns The current configuration, if any.  Otherwise, `null`.
 */
declare function getConfig(): Config<string, string> | null;
/**
 * Reset the configuration.  Mostly for testing purposes.
 */
declare function reset(): Promise<void>;
/**
 * Reset the configuration.  Mostly for testing purposes. Will not clear async
 * sinks, only use with sync sinks. Use {@link reset} if you have async sinks.
 * @since 0.9.0
 */
declare function resetSync(): void;
/**
 * Dispose of the disposables.
 */
declare function dispose(): Promise<void>;
/**
 * Waits for the pending output of every {@link Drainable} sink in the active
 * configuration without disposing of the sinks, so that they keep accepting
 * records afterwards.  Sinks that are not drainable are skipped.
 *
 * The active configuration is the innermost scoped configuration when called
 * within a {@link withConfig} or {@link withConfigSync} callback, and
 * otherwise the configuration set by {@link configure} or
 * {@link configureSync}.  A sink registered under multiple identifiers is
 * drained once.  Each sink's {@link Drainable.drain} method is called before
 * this function returns, so records logged after this call are not waited
 * for.
 *
 * Unlike `FingersCrossedSink.flush()`, draining does not release records
 * that a fingers crossed sink buffers until a trigger.
 *
 * @example Wait for logs after responding in Cloudflare Workers
 * ```typescript
 * export default {
 *   async fetch(request, env, ctx) {
 *     // ...
 *     ctx.waitUntil(drain());
 *     return new Response("...");
 *   },
 * };
 * ```
 *
 * @returns A promise that resolves when every drained sink has settled its
 *          pending output.  If a sink fails to drain, the promise rejects with
 *          its error after the other sinks have settled, or with an
 *          {@link AggregateError} if multiple sinks fail.  It also rejects with
 *          a {@link ConfigError} if LogTape is being reconfigured.
 * @since 2.4.0
 */
declare function drain(): Promise<void>;
/**
 * Dispose of the sync disposables. Async disposables will be untouched,
 * use {@link dispose} if you have async sinks.
 * @since 0.9.0
 */
declare function disposeSync(): void;
/**
 * A configuration error.
 */
declare class ConfigError extends Error {
  /**
   * Constructs a new configuration error.
   * @param message The error message.
   */
  constructor(message: string);
}
//#endregion
export { Config, ConfigError, LoggerConfig, ScopedConfig, configure, configureSync, dispose, disposeSync, drain, getConfig, reset, resetSync, withConfig, withConfigSync };
