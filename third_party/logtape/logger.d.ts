import { LogLevel } from "./level.d.ts";
import { LogRecord } from "./record.d.ts";

//#region src/logger.d.ts

/**
 * Symbol to identify lazy values.
 */
declare const lazySymbol: unique symbol;
/**
 * A lazy value that is evaluated at logging time.
 *
 * @typeParam T The type of the value.
 * @since 2.0.0
 */
interface Lazy<T> {
  readonly [lazySymbol]: true;
  readonly getter: () => T;
}
/**
 * Checks if a value is a lazy value.
 *
 * @param value The value to check.
 * @returns `true` if the value is a lazy value, `false` otherwise.
 * @since 2.0.0
 */
declare function isLazy(value: unknown): value is Lazy<unknown>;
/**
 * Creates a lazy value that is evaluated at logging time.
 *
 * This is useful for logging contextual properties that may change over time,
 * such as the current user or request context.
 *
 * @example
 * ```typescript
 * let currentUser: string | null = null;
 * const logger = getLogger("app").with({ user: lazy(() => currentUser) });
 *
 * logger.info("User action");  // logs with user: null
 * currentUser = "alice";
 * logger.info("User action");  // logs with user: "alice"
 * ```
 *
 * @typeParam T The type of the value.
 * @param getter A function that returns the value.
 * @returns A lazy value.
 * @since 2.0.0
 */
declare function lazy<T>(getter: () => T): Lazy<T>;
/**
 * A logger interface.  It provides methods to log messages at different
 * severity levels.
 *
 * ```typescript
 * const logger = getLogger("category");
 * logger.trace `A trace message with ${value}`
 * logger.debug `A debug message with ${value}.`;
 * logger.info `An info message with ${value}.`;
 * logger.warn `A warning message with ${value}.`;
 * logger.error `An error message with ${value}.`;
 * logger.fatal `A fatal error message with ${value}.`;
 * ```
 *
 * Callback-based string-message overloads should be treated as
 * fire-and-forget.  Async callbacks return `Promise<void>`, and when a
 * callback is filtered out because the level is disabled an implementation may
 * still return an already-resolved promise so the async path remains awaitable
 * without invoking the callback.  Call sites should not branch on these
 * return values.
 */
interface Logger {
  /**
   * The category of the logger.  It is an array of strings.
   */
  readonly category: readonly string[];
  /**
   * The logger with the supercategory of the current logger.  If the current
   * logger is the root logger, this is `null`.
   */
  readonly parent: Logger | null;
  /**
   * Get a child logger with the given subcategory.
   *
   * ```typescript
   * const logger = getLogger("category");
   * const subLogger = logger.getChild("sub-category");
   * ```
   *
   * The above code is equivalent to:
   *
   * ```typescript
   * const logger = getLogger("category");
   * const subLogger = getLogger(["category", "sub-category"]);
   * ```
   *
   * @param subcategory The subcategory.
   * @returns The child logger.
   */
  getChild(subcategory: string | readonly [string] | readonly [string, ...string[]]): Logger;
  /**
   * Get a logger with contextual properties.  This is useful for
   * log multiple messages with the shared set of properties.
   *
   * ```typescript
   * const logger = getLogger("category");
   * const ctx = logger.with({ foo: 123, bar: "abc" });
   * ctx.info("A message with {foo} and {bar}.");
   * ctx.warn("Another message with {foo}, {bar}, and {baz}.", { baz: true });
   * ```
   *
   * The above code is equivalent to:
   *
   * ```typescript
   * const logger = getLogger("category");
   * logger.info("A message with {foo} and {bar}.", { foo: 123, bar: "abc" });
   * logger.warn(
   *   "Another message with {foo}, {bar}, and {baz}.",
   *   { foo: 123, bar: "abc", baz: true },
   * );
   * ```
   *
   * @param properties
   * @returns
   * @since 0.5.0
   */
  with(properties: Record<string, unknown>): Logger;
  /**
   * Log a trace message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.trace `A trace message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   * @since 0.12.0
   */
  trace(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a trace message with properties.
   *
   * ```typescript
   * logger.trace('A trace message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.trace(
   *   'A trace message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   * @since 0.12.0
   */
  trace(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a trace message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.trace(
   *   'A trace message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  trace(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a trace values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.trace({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.trace('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.trace('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.12.0
   */
  trace(properties: Record<string, unknown>): void;
  /**
   * Lazily log a trace message.  Use this when the message values are expensive
   * to compute and should only be computed if the message is actually logged.
   *
   * ```typescript
   * logger.trace(l => l`A trace message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   * @since 0.12.0
   */
  trace(callback: LogCallback): void;
  /**
   * Log a debug message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.debug `A debug message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   */
  debug(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a debug message with properties.
   *
   * ```typescript
   * logger.debug('A debug message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.debug(
   *   'A debug message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  debug(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a debug message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.debug(
   *   'A debug message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  debug(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a debug values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.debug({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.debug('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.debug('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.11.0
   */
  debug(properties: Record<string, unknown>): void;
  /**
   * Lazily log a debug message.  Use this when the message values are expensive
   * to compute and should only be computed if the message is actually logged.
   *
   * ```typescript
   * logger.debug(l => l`A debug message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  debug(callback: LogCallback): void;
  /**
   * Log an informational message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.info `An info message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   */
  info(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log an informational message with properties.
   *
   * ```typescript
   * logger.info('An info message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.info(
   *   'An info message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  info(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log an informational message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.info(
   *   'An info message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  info(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log an informational values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.info({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.info('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.info('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.11.0
   */
  info(properties: Record<string, unknown>): void;
  /**
   * Lazily log an informational message.  Use this when the message values are
   * expensive to compute and should only be computed if the message is actually
   * logged.
   *
   * ```typescript
   * logger.info(l => l`An info message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  info(callback: LogCallback): void;
  /**
   * Log a warning.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property.
   *
   * ```typescript
   * logger.warn(new Error("Oops"));
   * ```
   *
   * Note that this uses `{error.message}` as the default message template.
   * If you want to include the stack trace in text output, include `{error}`
   * in the message template instead.
   *
   * @param error The error to log.
   * @since 2.0.0
   */
  warn(error: Error): void;
  /**
   * Log a warning with additional properties.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property while also adding extra properties.
   *
   * ```typescript
   * logger.warn(new Error("Oops"), { requestId });
   * ```
   *
   * @param error The error to log.
   * @param properties Additional properties to log alongside the error.
   * @since 2.1.0
   */
  warn(error: Error, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a warning with additional properties computed asynchronously.
   *
   * @param error The error to log.
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.1.0
   */
  warn(error: Error, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a warning message with an {@link Error}.
   *
   * ```typescript
   * logger.warn("Failed to do something", new Error("Oops"));
   * ```
   *
   * @param message The message.
   * @param error The error to log.
   * @since 2.0.0
   */
  warn(message: string, error: Error): void;
  /**
   * Log a warning message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.warn `A warning message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   */
  warn(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a warning message with properties.
   *
   * ```typescript
   * logger.warn('A warning message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.warn(
   *   'A warning message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  warn(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a warning message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.warn(
   *   'A warning message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  warn(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a warning values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.warn({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.warn('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.warn('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.11.0
   */
  warn(properties: Record<string, unknown>): void;
  /**
   * Lazily log a warning message.  Use this when the message values are
   * expensive to compute and should only be computed if the message is actually
   * logged.
   *
   * ```typescript
   * logger.warn(l => l`A warning message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  warn(callback: LogCallback): void;
  /**
   * Log a warning.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property.
   *
   * ```typescript
   * logger.warning(new Error("Oops"));
   * ```
   *
   * Note that this uses `{error.message}` as the default message template.
   * If you want to include the stack trace in text output, include `{error}`
   * in the message template instead.
   *
   * @param error The error to log.
   * @since 2.0.0
   */
  warning(error: Error): void;
  /**
   * Log a warning with additional properties.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property while also adding extra properties.
   *
   * ```typescript
   * logger.warning(new Error("Oops"), { requestId });
   * ```
   *
   * @param error The error to log.
   * @param properties Additional properties to log alongside the error.
   * @since 2.1.0
   */
  warning(error: Error, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a warning with additional properties computed asynchronously.
   *
   * @param error The error to log.
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.1.0
   */
  warning(error: Error, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a warning message with an {@link Error}.
   *
   * ```typescript
   * logger.warning("Failed to do something", new Error("Oops"));
   * ```
   *
   * @param message The message.
   * @param error The error to log.
   * @since 2.0.0
   */
  warning(message: string, error: Error): void;
  /**
   * Log a warning message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.warning `A warning message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   * @since 0.12.0
   */
  warning(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a warning message with properties.
   *
   * ```typescript
   * logger.warning('A warning message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.warning(
   *   'A warning message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   * @since 0.12.0
   */
  warning(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a warning message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.warning(
   *   'A warning message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  warning(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a warning values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.warning({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.warning('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.warning('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.12.0
   */
  warning(properties: Record<string, unknown>): void;
  /**
   * Lazily log a warning message.  Use this when the message values are
   * expensive to compute and should only be computed if the message is actually
   * logged.
   *
   * ```typescript
   * logger.warning(l => l`A warning message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   * @since 0.12.0
   */
  warning(callback: LogCallback): void;
  /**
   * Log an error.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property.
   *
   * ```typescript
   * logger.error(new Error("Oops"));
   * ```
   *
   * Note that this uses `{error.message}` as the default message template.
   * If you want to include the stack trace in text output, include `{error}`
   * in the message template instead.
   *
   * @param error The error to log.
   * @since 2.0.0
   */
  error(error: Error): void;
  /**
   * Log an error with additional properties.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property while also adding extra properties.
   *
   * ```typescript
   * logger.error(new Error("Oops"), { requestId });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.error(
   *   new Error("Oops"),
   *   () => ({ requestId: expensiveLookup() })
   * );
   * ```
   *
   * @param error The error to log.
   * @param properties Additional properties to log alongside the error.
   * @since 2.1.0
   */
  error(error: Error, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log an error with additional properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.error(
   *   new Error("Oops"),
   *   async () => ({ requestId: await fetchRequestId() })
   * );
   * ```
   *
   * @param error The error to log.
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.1.0
   */
  error(error: Error, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log an error message with an {@link Error}.
   *
   * ```typescript
   * logger.error("Failed to do something", new Error("Oops"));
   * ```
   *
   * @param message The message.
   * @param error The error to log.
   * @since 2.0.0
   */
  error(message: string, error: Error): void;
  /**
   * Log an error message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.error `An error message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   */
  error(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log an error message with properties.
   *
   * ```typescript
   * logger.warn('An error message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.error(
   *   'An error message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  error(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log an error message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.error(
   *   'An error message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  error(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log an error values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.error({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.error('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.error('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.11.0
   */
  error(properties: Record<string, unknown>): void;
  /**
   * Lazily log an error message.  Use this when the message values are
   * expensive to compute and should only be computed if the message is actually
   * logged.
   *
   * ```typescript
   * logger.error(l => l`An error message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  error(callback: LogCallback): void;
  /**
   * Log a fatal error.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property.
   *
   * ```typescript
   * logger.fatal(new Error("Oops"));
   * ```
   *
   * Note that this uses `{error.message}` as the default message template.
   * If you want to include the stack trace in text output, include `{error}`
   * in the message template instead.
   *
   * @param error The error to log.
   * @since 2.0.0
   */
  fatal(error: Error): void;
  /**
   * Log a fatal error with additional properties.
   *
   * This overload is a shorthand for logging an {@link Error} instance as a
   * structured property while also adding extra properties.
   *
   * ```typescript
   * logger.fatal(new Error("Oops"), { requestId });
   * ```
   *
   * @param error The error to log.
   * @param properties Additional properties to log alongside the error.
   * @since 2.1.0
   */
  fatal(error: Error, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a fatal error with additional properties computed asynchronously.
   *
   * @param error The error to log.
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.1.0
   */
  fatal(error: Error, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a fatal error message with an {@link Error}.
   *
   * ```typescript
   * logger.fatal("Failed to do something", new Error("Oops"));
   * ```
   *
   * @param message The message.
   * @param error The error to log.
   * @since 2.0.0
   */
  fatal(message: string, error: Error): void;
  /**
   * Log a fatal error message.  Use this as a template string prefix.
   *
   * ```typescript
   * logger.fatal `A fatal error message with ${value}.`;
   * ```
   *
   * @param message The message template strings array.
   * @param values The message template values.
   */
  fatal(message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a fatal error message with properties.
   *
   * ```typescript
   * logger.warn('A fatal error message with {value}.', { value });
   * ```
   *
   * If the properties are expensive to compute, you can pass a callback that
   * returns the properties:
   *
   * ```typescript
   * logger.fatal(
   *   'A fatal error message with {value}.',
   *   () => ({ value: expensiveComputation() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  fatal(message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a fatal error message with properties computed asynchronously.
   *
   * Use this when the properties require async operations to compute:
   *
   * ```typescript
   * await logger.fatal(
   *   'A fatal error message with {value}.',
   *   async () => ({ value: await fetchValue() })
   * );
   * ```
   *
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  fatal(message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a fatal error values with no message.  This is useful when you
   * want to log properties without a message, e.g., when you want to log
   * the context of a request or an operation.
   *
   * ```typescript
   * logger.fatal({ method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * Note that this is a shorthand for:
   *
   * ```typescript
   * logger.fatal('{*}', { method: 'GET', url: '/api/v1/resource' });
   * ```
   *
   * If the properties are expensive to compute, you cannot use this shorthand
   * and should use the following syntax instead:
   *
   * ```typescript
   * logger.fatal('{*}', () => ({
   *   method: expensiveMethod(),
   *   url: expensiveUrl(),
   * }));
   * ```
   *
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   * @since 0.11.0
   */
  fatal(properties: Record<string, unknown>): void;
  /**
   * Lazily log a fatal error message.  Use this when the message values are
   * expensive to compute and should only be computed if the message is actually
   * logged.
   *
   * ```typescript
   * logger.fatal(l => l`A fatal error message with ${expensiveValue()}.`);
   * ```
   *
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  fatal(callback: LogCallback): void;
  /**
   * Emits a log record with custom fields while using this logger's
   * category.
   *
   * This is a low-level API for integration scenarios where you need full
   * control over the log record, particularly for preserving timestamps
   * from external systems.
   *
   * ```typescript
   * const logger = getLogger(["my-app", "integration"]);
   *
   * // Emit a log with a custom timestamp
   * logger.emit({
   *   timestamp: kafkaLog.originalTimestamp,
   *   level: "info",
   *   message: [kafkaLog.message],
   *   rawMessage: kafkaLog.message,
   *   properties: {
   *     source: "kafka",
   *     partition: kafkaLog.partition,
   *     offset: kafkaLog.offset,
   *   },
   * });
   * ```
   *
   * @param record Log record without category field (category comes from
   *               the logger instance)
   * @since 1.1.0
   */
  emit(record: Omit<LogRecord, "category">): void;
  /**
   * Check if a message of the given severity level would be processed by
   * this logger.
   *
   * This is useful for conditionally executing expensive computations
   * before logging, particularly for async operations where lazy
   * evaluation callbacks cannot be used:
   *
   * ```typescript
   * if (logger.isEnabledFor("debug")) {
   *   const result = await expensiveAsync();
   *   logger.debug("Result: {result}", { result });
   * }
   * ```
   *
   * @param level The log level to check.
   * @returns `true` if a message of the given level would be logged,
   *          `false` otherwise.
   * @since 2.0.0
   */
  isEnabledFor(level: LogLevel): boolean;
}
/**
 * A logging callback function.  It is used to defer the computation of a
 * message template until it is actually logged.
 * @param prefix The message template prefix.
 * @returns The rendered message array.
 */
type LogCallback = (prefix: LogTemplatePrefix) => unknown[];
/**
 * A logging template prefix function.  It is used to log a message in
 * a {@link LogCallback} function.
 * @param message The message template strings array.
 * @param values The message template values.
 * @returns The rendered message array.
 */
type LogTemplatePrefix = (message: TemplateStringsArray, ...values: unknown[]) => unknown[];
/**
 * A function type for logging methods in the {@link Logger} interface.
 * @since 1.0.0
 */
interface LogMethod {
  /**
   * Log a message with the given level using a template string.
   * @param message The message template strings array.
   * @param values The message template values.
   */
  (message: TemplateStringsArray, ...values: readonly unknown[]): void;
  /**
   * Log a message with the given level with properties.
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties The values to replace placeholders with.  For lazy
   *                   evaluation, this can be a callback that returns the
   *                   properties.
   */
  (message: string, properties?: Record<string, unknown> | (() => Record<string, unknown>)): void;
  /**
   * Log a message with the given level with properties computed asynchronously.
   * @param message The message template.  Placeholders to be replaced with
   *                `values` are indicated by keys in curly braces (e.g.,
   *                `{value}`).
   * @param properties An async callback that returns the properties.
   * @returns A promise that resolves when the log is written.
   * @since 2.0.0
   */
  (message: string, properties: () => Promise<Record<string, unknown>>): Promise<void>;
  /**
   * Log a message with the given level with no message.
   * @param properties The values to log.  Note that this does not take
   *                   a callback.
   */
  (properties: Record<string, unknown>): void;
  /**
   * Lazily log a message with the given level.
   * @param callback A callback that returns the message template prefix.
   * @throws {TypeError} If no log record was made inside the callback.
   */
  (callback: LogCallback): void;
}
/**
 * Get a logger with the given category.
 *
 * ```typescript
 * const logger = getLogger(["my-app"]);
 * ```
 *
 * @param category The category of the logger.  It can be a string or an array
 *                 of strings.  If it is a string, it is equivalent to an array
 *                 with a single element.
 * @returns The logger.
 */
declare function getLogger(category?: string | readonly string[]): Logger;
/**
 * Enumerate every logger in the category tree rooted at the given logger,
 * including the given logger itself, in depth-first pre-order.
 *
 * ```typescript
 * const all = getLoggers();          // the whole tree, from the root down
 * const mine = getLoggers("my-app"); // "my-app" and its descendants only
 * ```
 *
 * This only reflects loggers that have actually been *materialized* by a
 * `getLogger()` call somewhere in the running program.  A category that has
 * been configured via `configure()` but never reached by a `getLogger()`
 * call (e.g. inside an unexecuted code path) will not appear.
 *
 * @param logger The logger (or its category, as a string or array of
 *               strings) to start from.  Defaults to the root logger.
 * @returns Every logger in the subtree, starting with the resolved logger
 *          itself, in depth-first pre-order.
 * @since 2.4.0
 */
declare function getLoggers(logger?: Logger | string | readonly string[]): readonly Logger[];
//#endregion
export { Lazy, LogMethod, Logger, getLogger, getLoggers, isLazy, lazy };
