import { LogLevel } from "./level.d.ts";
import { LogRecord } from "./record.d.ts";
import { FilterLike } from "./filter.d.ts";
import { ConsoleFormatter, TextFormatter } from "./formatter.d.ts";

//#region src/sink.d.ts

/**
 * A sink is a function that accepts a log record and prints it somewhere.
 * Thrown exceptions will be suppressed and then logged to the meta logger,
 * a {@link Logger} with the category `["logtape", "meta"]`.  (In that case,
 * the meta log record will not be passed to the sink to avoid infinite
 * recursion.)
 *
 * @param record The log record to sink.
 */
type Sink = (record: LogRecord) => void;
/**
 * An async sink is a function that accepts a log record and asynchronously
 * processes it. This type is used with {@link fromAsyncSink} to create
 * a regular sink that properly handles asynchronous operations.
 *
 * @param record The log record to process asynchronously.
 * @returns A promise that resolves when the record has been processed.
 * @since 1.0.0
 */
type AsyncSink = (record: LogRecord) => Promise<void>;
/**
 * The reason why a sink discarded log records without writing them.
 *
 *  -  `"overflow"`: The sink's limit on pending records was reached.
 *
 * @since 2.4.0
 */
type SinkDropReason = "overflow";
/**
 * Describes log records that a sink discarded without writing them.
 * It intentionally carries no record payloads.
 *
 * @since 2.4.0
 */
interface SinkDropEvent {
  /**
   * The number of discarded records.  Always a positive integer.
   */
  readonly count: number;
  /**
   * The reason why the records were discarded.
   */
  readonly reason: SinkDropReason;
}
/**
 * A failed output operation in a non-blocking console or stream sink.
 * Each event except `"close"` represents one failed record.  Operation names
 * may gain members in future versions.
 * @since 2.4.0
 */
interface SinkErrorEvent {
  /** The original thrown value or rejection reason. */
  readonly error: unknown;
  /** The kind of sink that failed. */
  readonly sink: "console" | "stream";
  /** The failed operation.  Waiting for stream readiness is part of writing. */
  readonly operation: "format" | "encode" | "write" | "close";
}
/**
 * A capability of sinks that can wait for their pending output without being
 * disposed of.  Unlike disposal, draining does not end the sink's lifetime:
 * records logged after a drain are still accepted as usual.
 *
 * See also the `drain()` function, which drains every drainable sink of
 * the active configuration.
 * @since 2.4.0
 */
interface Drainable {
  /**
   * Waits until every record the sink accepted before this call has settled,
   * which means that its sink operation has finished, either successfully or
   * with a failure, or that the record was dropped.  Records accepted after
   * this call are not waited for.
   *
   * Settlement does not mean that the output has been synchronized to disk
   * or durably stored at a remote destination.  A wrapper sink covers only
   * the records it has already passed to the wrapped sink; for example,
   * records that a {@link fingersCrossed} sink holds in its buffer are not
   * released.
   *
   * Draining does not dispose of the sink.  Concurrent calls are allowed,
   * and each call waits only for the records accepted before it.
   *
   * @returns A promise that resolves when the covered records have settled.
   *          Whether it rejects on output failures depends on the sink.
   */
  drain(): Promise<void>;
}
/**
 * Turns a sink into a filtered sink.  The returned sink only logs records that
 * pass the filter.
 *
 * If the given sink is {@link Drainable}, the returned sink forwards
 * {@link Drainable.drain} to it.
 *
 * @example Filter a console sink to only log records with the info level
 * ```typescript
 * const sink = withFilter(getConsoleSink(), "info");
 * ```
 *
 * @param sink A sink to be filtered.
 * @param filter A filter to apply to the sink.  It can be either a filter
 *               function or a {@link LogLevel} string.
 * @returns A sink that only logs records that pass the filter.
 */
declare function withFilter(sink: Sink & Drainable, filter: FilterLike): Sink & Drainable;
declare function withFilter(sink: Sink, filter: FilterLike): Sink;
/**
 * Options for the {@link getStreamSink} function.
 */
interface StreamSinkOptions {
  /**
   * The text formatter to use.  Defaults to {@link defaultTextFormatter}.
   */
  formatter?: TextFormatter;
  /**
   * The text encoder to use.  Defaults to an instance of {@link TextEncoder}.
   */
  encoder?: {
    encode(text: string): Uint8Array;
  };
  /**
   * Whether to close the stream when the sink is disposed.  Set this to
   * `false` for caller-owned streams that need to remain open after disposal.
   * The sink still waits for pending writes and releases its writer lock.
   * To wait for pending writes without disposing the sink at all, use
   * {@link Drainable.drain} instead.
   *
   * @default `true`
   * @since 2.4.0
   */
  closeStream?: boolean;
  /**
   * Enable non-blocking mode with optional buffer configuration.
   * When enabled, log records are buffered and flushed in the background.
   *
   * @example Simple non-blocking mode
   * ```typescript
   * getStreamSink(stream, { nonBlocking: true });
   * ```
   *
   * @example Custom buffer configuration
   * ```typescript
   * getStreamSink(stream, {
   *   nonBlocking: {
   *     bufferSize: 1000,
   *     flushInterval: 50
   *   }
   * });
   * ```
   *
   * @default `false`
   * @since 1.0.0
   */
  nonBlocking?: boolean | {
    /**
     * Maximum number of records to buffer before flushing.
     * @default `100`
     */
    bufferSize?: number;
    /**
     * Interval in milliseconds between automatic flushes.
     * @default `100`
     */
    flushInterval?: number;
    /**
     * Reports overflow counts aggregated over `flushInterval` milliseconds,
     * independently of output progress, and any remaining count on disposal.
     * No record payloads are passed.  Handler failures are suppressed.
     * Calls reaching this sink synchronously from its callback are ignored
     * and are not counted.  Use a separate diagnostic path for delayed logs.
     * Returned promises are not awaited.
     * @since 2.4.0
     */
    onDrop?: (event: SinkDropEvent) => void;
    /**
     * Reports failed background output operations, including formatter errors.
     * Handler failures are suppressed.  Calls reaching this sink synchronously
     * from its callback are ignored; delayed logs need a separate diagnostic
     * path.  Returned promises do not extend output completion.
     * @since 2.4.0
     */
    onError?: (event: SinkErrorEvent) => void;
  };
}
/**
 * A factory that returns a sink that writes to a {@link WritableStream}.
 *
 * Note that the `stream` is of Web Streams API, which is different from
 * Node.js streams.  You can convert a Node.js stream to a Web Streams API
 * stream using [`stream.Writable.toWeb()`] method.
 *
 * [`stream.Writable.toWeb()`]: https://nodejs.org/api/stream.html#streamwritabletowebstreamwritable
 *
 * @example Sink to the standard error in Deno
 * ```typescript
 * const stderrSink = getStreamSink(Deno.stderr.writable);
 * ```
 *
 * @example Sink to the standard error in Node.js
 * ```typescript
 * import stream from "node:stream";
 * const stderrSink = getStreamSink(stream.Writable.toWeb(process.stderr));
 * ```
 *
 * The returned sink is {@link Drainable}: its {@link Drainable.drain} method
 * waits for the records accepted so far to be written (or, in non-blocking
 * mode, to fail or be dropped) without closing the stream or releasing its
 * writer.  In non-blocking mode, draining starts flushing the buffer
 * immediately instead of waiting for the flush interval, and never rejects
 * because of write failures, which that mode suppresses or passes to
 * the `onError` callback instead.  In the default mode, a failed write makes
 * draining reject with the same error that disposal would.
 *
 * @param stream The stream to write to.
 * @param options The options for the sink.
 * @returns A sink that writes to the stream.
 */
declare function getStreamSink(stream: WritableStream, options?: StreamSinkOptions): Sink & AsyncDisposable & Drainable;
type ConsoleMethod = "debug" | "info" | "log" | "warn" | "error";
/**
 * Options for the {@link getConsoleSink} function.
 */
interface ConsoleSinkOptions {
  /**
   * The console formatter or text formatter to use.
   * Defaults to {@link defaultConsoleFormatter}.
   */
  formatter?: ConsoleFormatter | TextFormatter;
  /**
   * The mapping from log levels to console methods.  Defaults to:
   *
   * ```typescript
   * {
   *   trace: "trace",
   *   debug: "debug",
   *   info: "info",
   *   warning: "warn",
   *   error: "error",
   *   fatal: "error",
   * }
   * ```
   * @since 0.9.0
   */
  levelMap?: Record<LogLevel, ConsoleMethod>;
  /**
   * The console to log to.  Defaults to {@link console}.
   */
  console?: Console;
  /**
   * Enable non-blocking mode with optional buffer configuration.
   * When enabled, log records are buffered and flushed in the background.
   *
   * @example Simple non-blocking mode
   * ```typescript
   * getConsoleSink({ nonBlocking: true });
   * ```
   *
   * @example Custom buffer configuration
   * ```typescript
   * getConsoleSink({
   *   nonBlocking: {
   *     bufferSize: 1000,
   *     flushInterval: 50
   *   }
   * });
   * ```
   *
   * @default `false`
   * @since 1.0.0
   */
  nonBlocking?: boolean | {
    /**
     * Maximum number of records to buffer before flushing.
     * @default `100`
     */
    bufferSize?: number;
    /**
     * Interval in milliseconds between automatic flushes.
     * @default `100`
     */
    flushInterval?: number;
    /**
     * Reports overflow counts aggregated over `flushInterval` milliseconds,
     * independently of output progress, and any remaining count on disposal.
     * No record payloads are passed.  Handler failures are suppressed.
     * Calls reaching this sink synchronously from its callback are ignored
     * and are not counted.  Use a separate diagnostic path for delayed logs.
     * Returned promises are not awaited.
     * @since 2.4.0
     */
    onDrop?: (event: SinkDropEvent) => void;
    /**
     * Reports failed background output operations, including formatter errors.
     * Handler failures are suppressed.  Calls reaching this sink synchronously
     * from its callback are ignored; delayed logs need a separate diagnostic
     * path.  Returned promises do not extend output completion.
     * @since 2.4.0
     */
    onError?: (event: SinkErrorEvent) => void;
  };
}
/**
 * A console sink factory that returns a sink that logs to the console.
 *
 * @param options The options for the sink.
 * @returns A sink that logs to the console. If `nonBlocking` is enabled,
 *          returns a sink that also implements {@link Disposable}.
 */
declare function getConsoleSink(options?: ConsoleSinkOptions): Sink | (Sink & Disposable);
/**
 * What {@link fromAsyncSink} does with a new record when its queue is full.
 *
 *  -  `"drop-oldest"`: Discards the record that has been waiting the longest
 *     and accepts the new record.  The record currently being processed is
 *     never discarded.
 *  -  `"drop-newest"`: Discards the new record and leaves the queue as is.
 *
 * @since 2.4.0
 */
type AsyncSinkOverflowPolicy = "drop-oldest" | "drop-newest";
/**
 * Options for the {@link fromAsyncSink} function.
 * @since 2.4.0
 */
interface AsyncSinkOptions {
  /**
   * The maximum number of records waiting for the async sink, not counting
   * the record currently being processed.  When a record arrives while this
   * many records are waiting, the {@link AsyncSinkOptions.overflow} policy
   * decides which record is dropped.  Dropping a record never cancels the
   * record currently being processed.
   *
   * This limits how many records the adapter keeps queued; it is not a bound
   * on total memory use.  With the `"drop-oldest"` policy, the adapter
   * releases a dropped record right away, but the promise bookkeeping for it,
   * including the async context (such as request context) the runtime
   * captured for it, remains until the record being processed at that time
   * settles.  If the async sink can stall for a long time, give it
   * a timeout, or use the `"drop-newest"` policy, which leaves nothing behind
   * for rejected records.
   *
   * Must be a positive integer or `Infinity`.
   * @default `Infinity`
   */
  readonly maxQueueSize?: number;
  /**
   * What to do when a record arrives while the queue is full.  It has no
   * effect unless {@link AsyncSinkOptions.maxQueueSize} is finite.
   * @default `"drop-oldest"`
   */
  readonly overflow?: AsyncSinkOverflowPolicy;
  /**
   * A callback invoked synchronously, inside the logging call, whenever the
   * queue is full and a record is dropped.  It receives the number of
   * dropped records and the reason, but not the records themselves.
   *
   * If the callback logs through a logger that routes back to this sink and
   * that causes further drops, those drops are not reported re-entrantly;
   * their count is added to the next drop notification, or reported when
   * the sink is disposed.
   *
   * Errors thrown by the callback, and rejections of a promise it returns,
   * are reported to the meta logger and never propagate to the logging call.
   */
  readonly onDrop?: (event: SinkDropEvent) => void;
  /**
   * A callback invoked synchronously, inside the logging call that accepted
   * a record, with a promise that settles once that record and every record
   * accepted before it have been processed or dropped.  The promise never
   * rejects; failures of the async sink are reported to the meta logger
   * before it settles.  It does not wait for records accepted later.
   *
   * Since it is called in the execution context of the logging call, it can
   * pass the promise to the lifetime mechanism of the current request, such
   * as `waitUntil()` from `@vercel/functions` or from `cloudflare:workers`,
   * so that the request is kept alive until its log records have been sent.
   * This only requests more time; the platform's limits still apply.
   * The sink does not keep any request context around; it calls this
   * callback for every accepted record and never for dropped new records.
   *
   * Errors thrown by the callback, and rejections of a promise it returns,
   * are reported to the meta logger and never propagate to the logging call.
   * The callback must not log through this sink, as that would call it again
   * recursively.
   */
  readonly waitUntil?: (promise: Promise<void>) => void;
}
/**
 * Converts an async sink into a regular sink with proper async handling.
 * The returned sink chains async operations to ensure proper ordering and
 * implements AsyncDisposable to wait for all pending operations on disposal.
 *
 * Records are passed to the async sink one at a time, in the order they
 * were logged.  By default the number of waiting records is unbounded; use
 * {@link AsyncSinkOptions.maxQueueSize} to limit it.
 *
 * The returned sink is also {@link Drainable}: its {@link Drainable.drain}
 * method waits for the operations of the records accepted before the call
 * without disposing of the sink.  Since failures of the async sink are
 * reported to the meta logger, draining resolves even if some of the covered
 * operations failed.  Records that the meta logger emits while reporting
 * such failures are not covered.
 *
 * @example Create a sink that asynchronously posts to a webhook
 * ```typescript
 * const asyncSink: AsyncSink = async (record) => {
 *   await fetch("https://example.com/logs", {
 *     method: "POST",
 *     body: JSON.stringify(record),
 *   });
 * };
 * const sink = fromAsyncSink(asyncSink);
 * ```
 *
 * @example Bound the queue and keep serverless requests alive
 * ```typescript
 * import { waitUntil } from "@vercel/functions";
 *
 * const sink = fromAsyncSink(asyncSink, {
 *   maxQueueSize: 1000,
 *   overflow: "drop-oldest",
 *   onDrop: ({ count, reason }) => droppedLogs.add(count, { reason }),
 *   waitUntil,
 * });
 * ```
 *
 * @param asyncSink The async sink function to convert.
 * @param options Options for queue limits and lifetime registration.
 *                Available since 2.4.0.
 * @returns A sink that properly handles async operations and disposal.
 * @throws {RangeError} If `maxQueueSize` is not a positive integer or
 *                      `Infinity`.
 * @throws {TypeError} If `overflow` is not a known policy.
 * @since 1.0.0
 */
declare function fromAsyncSink(asyncSink: AsyncSink, options?: AsyncSinkOptions): Sink & AsyncDisposable & Drainable;
/**
 * An action returned by {@link FingersCrossedOptions.bufferAction}.
 *
 * Both actions end the matching buffer lifecycle.  `"flush"` emits the
 * buffered records and the action record, while `"discard"` drops them.
 * @since 2.4.0
 */
type FingersCrossedBufferAction = "flush" | "discard";
/**
 * What {@link fingersCrossed} does after a {@link
 * FingersCrossedOptions.triggerLevel} match flushes buffered records.
 *
 * `"passthrough"` lets subsequent records for the triggered buffers pass
 * through directly, while `"buffer"` returns the flushed buffers to
 * buffering until the next trigger.
 * @since 2.4.0
 */
type FingersCrossedAfterTrigger = "passthrough" | "buffer";
/**
 * Selects buffers controlled by a {@link FingersCrossedSink}.
 * @since 2.4.0
 */
interface FingersCrossedBufferSelector {
  /**
   * Context values to match.  Every key configured by
   * {@link FingersCrossedOptions.isolateByContext} must be present.
   * When omitted, buffers from every context are selected.
   */
  readonly context?: Readonly<Record<string, unknown>>;
  /**
   * Category to match.  When category isolation is enabled, its configured
   * matcher also applies to descendant or ancestor buffers.  When omitted,
   * buffers from every category are selected.
   */
  readonly category?: readonly string[];
}
/**
 * A sink returned by {@link fingersCrossed} with manual buffer controls.
 * @since 2.4.0
 */
interface FingersCrossedSink {
  /**
   * Processes a log record.
   * @param record The log record to process.
   */
  (record: LogRecord): void;
  /**
   * Emits the selected buffered records, then releases their buffered and
   * triggered state.  With no selector, every buffer is flushed.
   *
   * This is unrelated to {@link Drainable.drain}, which waits for output that
   * has already been passed to the wrapped sink and leaves buffers intact.
   *
   * @param selector The buffers to flush.
   */
  flush(selector?: FingersCrossedBufferSelector): void;
  /**
   * Drops the selected buffered records, then releases their buffered and
   * triggered state.  With no selector, every buffer is discarded.
   *
   * @param selector The buffers to discard.
   */
  discard(selector?: FingersCrossedBufferSelector): void;
}
/**
 * Options for the {@link fingersCrossed} function.
 * @since 1.1.0
 */
interface FingersCrossedOptions {
  /**
   * Copies a record synchronously before it is buffered.  The returned record
   * is retained and later delivered to the wrapped sink.  Without this option,
   * the original record is retained without copying nested values.
   *
   * The original record determines category/context isolation, log levels,
   * and {@link bufferAction}.  Trigger records, immediate pass-through records,
   * action records, and records with a zero {@link maxBufferSize} are not
   * snapshotted.  Flushing retained records does not call this hook again.
   *
   * Copy both {@link LogRecord.message} and {@link LogRecord.properties} to
   * capture mutable interpolated values.  Reading a lazy message or its
   * {@link LogRecord.rawMessage} evaluates it at intake.  Preserve the record's
   * metadata, including its timestamp, which controls TTL and flush ordering.
   * Do not mutate the input or log to the same sink from this hook.
   *
   * Errors propagate from direct sink calls before buffer state changes.
   * Logger calls report them through the `["logtape", "meta"]` logger,
   * bypassing this sink.  Invalid non-object or thenable results throw a
   * {@link TypeError}.  The original record is never retained as a fallback.
   *
   * @example Copy jointly to preserve shared message/property references
   * ```typescript
   * fingersCrossed(sink, {
   *   snapshot({ message, properties, ...rest }) {
   *     return { ...rest, ...structuredClone({ message, properties }) };
   *   },
   * });
   * ```
   * @since 2.4.0
   */
  readonly snapshot?: (record: LogRecord) => LogRecord;
  /**
   * Chooses a terminal action for a log record and its matching buffer.
   * Returning `undefined` applies the regular {@link triggerLevel} and
   * {@link bufferLevel} behavior.
   *
   * The callback runs before checking whether the matching buffer has already
   * been triggered.  This lets a final request or job record release both
   * buffered and triggered state.
   *
   * @example Flush failed requests and discard successful requests
   * ```typescript
   * fingersCrossed(sink, {
   *   isolateByContext: { keys: ["requestId"] },
   *   bufferAction(record) {
   *     const status = record.properties.status;
   *     if (typeof status !== "number") return undefined;
   *     return status >= 500 ? "flush" : "discard";
   *   },
   * });
   * ```
   *
   * @since 2.4.0
   */
  readonly bufferAction?: (record: LogRecord) => FingersCrossedBufferAction | undefined;
  /**
   * Minimum log level that triggers buffer flush.
   * When a log record at or above this level is received, all buffered
   * records are flushed to the wrapped sink.
   * @default `"error"`
   */
  readonly triggerLevel?: LogLevel;
  /**
   * What happens after a record at or above {@link triggerLevel} flushes
   * the buffered records.
   *
   * - `"passthrough"`: Subsequent records for the triggered buffers pass
   *   through directly until {@link FingersCrossedSink.flush},
   *   {@link FingersCrossedSink.discard}, {@link bufferAction}, or TTL cleanup
   *   releases them.
   * - `"buffer"`: The flushed buffers return to the regular
   *   {@link bufferLevel} and {@link triggerLevel} processing, so each
   *   trigger emits the records retained in the selected buffers since they
   *   were last flushed, followed by the trigger record.
   *
   * This option does not affect actions returned by {@link bufferAction}.
   *
   * @example Keep the context of every error in a long-running process
   * ```typescript
   * fingersCrossed(sink, {
   *   triggerLevel: "warning",
   *   maxBufferSize: 100,
   *   afterTrigger: "buffer",
   * });
   * ```
   *
   * @default `"passthrough"`
   * @since 2.4.0
   */
  readonly afterTrigger?: FingersCrossedAfterTrigger;
  /**
   * Maximum log level that will be buffered.
   * Log records at or below this level are buffered, while records above
   * this level (but below {@link triggerLevel}) pass through immediately
   * without buffering.
   *
   * When `undefined` (default), all records below {@link triggerLevel} are
   * buffered (equivalent to setting this to the level just below triggerLevel).
   *
   * When `null`, all records below {@link triggerLevel} are buffered
   * (same as `undefined`, but explicit).
   *
   * @example Buffer only trace and debug, pass through info immediately
   * ```typescript
   * fingersCrossed(sink, {
   *   bufferLevel: "debug",     // trace, debug → buffered
   *   triggerLevel: "warning",  // warning+ → trigger flush
   *   // info → passes through immediately (not buffered, not trigger)
   * })
   * ```
   *
   * @default `undefined` (buffer all levels below triggerLevel)
   * @since 2.0.0
   */
  readonly bufferLevel?: LogLevel | null;
  /**
   * Maximum buffer size before oldest records are dropped.
   * When the buffer exceeds this size, the oldest records are removed
   * to prevent unbounded memory growth.
   * @default `1000`
   */
  readonly maxBufferSize?: number;
  /**
   * Category isolation mode or custom matcher function.
   *
   * When `undefined` (default), all log records share a single buffer.
   *
   * When set to a mode string:
   *
   * - `"descendant"`: Flush child category buffers when parent triggers
   * - `"ancestor"`: Flush parent category buffers when child triggers
   * - `"both"`: Flush both parent and child category buffers
   *
   * When set to a function, it receives the trigger category and buffered
   * category and should return true if the buffered category should be flushed.
   *
   * @default `undefined` (no isolation, single global buffer)
   */
  readonly isolateByCategory?: "descendant" | "ancestor" | "both" | ((triggerCategory: readonly string[], bufferedCategory: readonly string[]) => boolean);
  /**
   * Enable context-based buffer isolation.
   * When enabled, buffers are isolated based on specified context keys.
   * This is useful for scenarios like HTTP request tracing where logs
   * should be isolated per request.
   *
   * @example
   * ```typescript
   * fingersCrossed(sink, {
   *   isolateByContext: { keys: ['requestId'] }
   * })
   * ```
   *
   * @example Combined with category isolation
   * ```typescript
   * fingersCrossed(sink, {
   *   isolateByCategory: 'descendant',
   *   isolateByContext: { keys: ['requestId', 'sessionId'] }
   * })
   * ```
   *
   * @example With TTL-based buffer cleanup
   * ```typescript
   * fingersCrossed(sink, {
   *   isolateByContext: {
   *     keys: ['requestId'],
   *     bufferTtlMs: 30000,        // 30 seconds
   *     cleanupIntervalMs: 10000   // cleanup every 10 seconds
   *   }
   * })
   * ```
   *
   * @default `undefined` (no context isolation)
   * @since 1.2.0
   */
  readonly isolateByContext?: {
    /**
     * Context keys to use for isolation.
     * Buffers will be separate for different combinations of these context values.
     */
    readonly keys: readonly string[];
    /**
     * Maximum number of context buffers to maintain simultaneously.
     * When this limit is exceeded, the least recently used (LRU) buffers
     * will be evicted to make room for new ones.
     *
     * This provides memory protection in high-concurrency scenarios where
     * many different context values might be active simultaneously.
     *
     * When set to 0 or undefined, no limit is enforced.
     *
     * @default `undefined` (no limit)
     * @since 1.2.0
     */
    readonly maxContexts?: number;
    /**
     * Time-to-live for context buffers in milliseconds.
     * Buffers that haven't been accessed for this duration will be automatically
     * cleaned up to prevent memory leaks in long-running applications.
     *
     * When set to 0 or undefined, buffers will never expire based on time.
     *
     * @default `undefined` (no TTL)
     * @since 1.2.0
     */
    readonly bufferTtlMs?: number;
    /**
     * Interval in milliseconds for running cleanup operations.
     * The cleanup process removes expired buffers based on {@link bufferTtlMs}.
     *
     * This option is ignored if {@link bufferTtlMs} is not set.
     *
     * @default `30000` (30 seconds)
     * @since 1.2.0
     */
    readonly cleanupIntervalMs?: number;
  };
}
/**
 * Creates a sink that buffers log records until a trigger level is reached.
 * This pattern, known as "fingers crossed" logging, keeps detailed debug logs
 * in memory and only outputs them when an error or other significant event occurs.
 *
 * @example Basic usage with default settings
 * ```typescript
 * const sink = fingersCrossed(getConsoleSink());
 * // Debug and info logs are buffered
 * // When an error occurs, all buffered logs + the error are output
 * ```
 *
 * @example Custom trigger level and buffer size
 * ```typescript
 * const sink = fingersCrossed(getConsoleSink(), {
 *   triggerLevel: "warning",  // Trigger on warning or higher
 *   maxBufferSize: 500        // Keep last 500 records
 * });
 * ```
 *
 * @example Category isolation
 * ```typescript
 * const sink = fingersCrossed(getConsoleSink(), {
 *   isolateByCategory: "descendant"  // Separate buffers per category
 * });
 * // Error in ["app"] triggers flush of ["app"] and ["app", "module"] buffers
 * // But not ["other"] buffer
 * ```
 *
 * If the wrapped sink is {@link Drainable}, the returned sink forwards
 * {@link Drainable.drain} to it.  Draining waits only for the records that
 * have already been passed to the wrapped sink; unlike
 * {@link FingersCrossedSink.flush}, it does not release buffered records that
 * are still waiting for a trigger.
 *
 * @param sink The sink to wrap. Buffered records are sent to this sink when
 *             triggered.
 * @param options Configuration options for the fingers crossed behavior.
 * @returns A sink that buffers records until the trigger level is reached.
 * @since 1.1.0
 */
declare function fingersCrossed(sink: Sink & Drainable & Disposable & AsyncDisposable, options?: FingersCrossedOptions): FingersCrossedSink & Drainable & Disposable & AsyncDisposable;
declare function fingersCrossed(sink: Sink & Drainable & AsyncDisposable, options?: FingersCrossedOptions): FingersCrossedSink & Drainable & AsyncDisposable & Partial<Disposable>;
declare function fingersCrossed(sink: Sink & Drainable & Disposable, options?: FingersCrossedOptions): FingersCrossedSink & Drainable & Disposable;
declare function fingersCrossed(sink: Sink & Drainable, options?: FingersCrossedOptions): FingersCrossedSink & Drainable & Partial<Disposable>;
declare function fingersCrossed(sink: Sink & Disposable & AsyncDisposable, options?: FingersCrossedOptions): FingersCrossedSink & Disposable & AsyncDisposable;
declare function fingersCrossed(sink: Sink & AsyncDisposable, options?: FingersCrossedOptions): FingersCrossedSink & AsyncDisposable & Partial<Disposable>;
declare function fingersCrossed(sink: Sink & Disposable, options?: FingersCrossedOptions): FingersCrossedSink & Disposable;
declare function fingersCrossed(sink: Sink, options?: FingersCrossedOptions): FingersCrossedSink & Partial<Disposable>;
//#endregion
export { AsyncSink, AsyncSinkOptions, AsyncSinkOverflowPolicy, ConsoleSinkOptions, Drainable, FingersCrossedAfterTrigger, FingersCrossedBufferAction, FingersCrossedBufferSelector, FingersCrossedOptions, FingersCrossedSink, Sink, SinkDropEvent, SinkDropReason, SinkErrorEvent, StreamSinkOptions, fingersCrossed, fromAsyncSink, getConsoleSink, getStreamSink, withFilter };
