import { asyncDisposeSymbol, disposeSymbol } from "./disposable.js";
import { toFilter } from "./filter.js";
import { compileScopedConfig, disposeScopedConfig, disposeScopedConfigSync, getCurrentScopedConfig, runWithScopedConfig, throwCombinedErrors } from "./scoped-config.js";
import { LoggerImpl } from "./logger.js";
import { getConsoleSink } from "./sink.js";

//#region src/config.ts
/**
* The current configuration, if any.  Otherwise, `null`.
*/
let currentConfig = null;
let activeScopedConfigCount = 0;
const activeScopedConfigs = /* @__PURE__ */ new Set();
let globalConfigMutationInProgress = false;
/**
* Strong references to the loggers.
* This is to prevent the loggers from being garbage collected so that their
* sinks and filters are not removed.
*/
const strongRefs = /* @__PURE__ */ new Set();
/**
* The sinks installed by the current configuration, which {@link drain}
* drains.  Kept separately from {@link currentConfig} because the caller may
* mutate the configuration object after configuring.
*/
const installedSinks = /* @__PURE__ */ new Set();
const inspectionStateSymbol = Symbol.for("logtape.inspectionState");
function getInspectionState() {
	const registry = globalThis;
	const state = registry[inspectionStateSymbol];
	if (state != null && state.loggers instanceof WeakMap) return state;
	const newState = {
		configured: false,
		loggers: /* @__PURE__ */ new WeakMap()
	};
	registry[inspectionStateSymbol] = newState;
	return newState;
}
/**
* Sync filter disposables to dispose when resetting the configuration.
*/
const filterDisposables = /* @__PURE__ */ new Set();
/**
* Sync sink disposables to dispose when resetting the configuration.
*/
const sinkDisposables = /* @__PURE__ */ new Set();
/**
* Async filter disposables to dispose when resetting the configuration.
*/
const asyncFilterDisposables = /* @__PURE__ */ new Set();
/**
* Async sink disposables to dispose when resetting the configuration.
*/
const asyncSinkDisposables = /* @__PURE__ */ new Set();
let unregisterDisposeHook;
/**
* Gets the root logger to toggle source location capture on.  The root logger
* is shared through the global object, so it can be made by an older copy of
* LogTape loaded by another package, which lacks these methods.  Its loggers
* never capture source locations, so the calls are just skipped then.
*/
function getSourceLocationRoot() {
	return LoggerImpl.getLogger();
}
/**
* Check if a config is for the meta logger.
*/
function isLoggerConfigMeta(cfg) {
	const category = Array.isArray(cfg.category) ? cfg.category : [cfg.category];
	return category.length === 0 || category.length === 1 && category[0] === "logtape" || category.length === 2 && category[0] === "logtape" && category[1] === "meta";
}
function registerDisposeHook(allowAsync) {
	unregisterDisposeHook?.();
	unregisterDisposeHook = void 0;
	const handler = allowAsync ? disposeInternal : disposeSyncInternal;
	if (typeof globalThis.EdgeRuntime !== "string" && "process" in globalThis && !("Deno" in globalThis)) {
		const proc = globalThis.process;
		const onMethod = proc?.["on"];
		if (typeof onMethod === "function") {
			onMethod.call(proc, "exit", handler);
			unregisterDisposeHook = () => {
				const offMethod = proc?.["off"] ?? proc?.["removeListener"];
				if (typeof offMethod === "function") offMethod.call(proc, "exit", handler);
			};
			return;
		}
	}
	const addEventListenerMethod = globalThis.addEventListener;
	if (typeof addEventListenerMethod !== "function") return;
	const removeEventListenerMethod = globalThis.removeEventListener;
	if ("Deno" in globalThis) {
		addEventListenerMethod.call(globalThis, "unload", handler);
		if (typeof removeEventListenerMethod === "function") unregisterDisposeHook = () => {
			removeEventListenerMethod.call(globalThis, "unload", handler);
		};
	} else {
		addEventListenerMethod.call(globalThis, "pagehide", handler);
		if (typeof removeEventListenerMethod === "function") unregisterDisposeHook = () => {
			removeEventListenerMethod.call(globalThis, "pagehide", handler);
		};
	}
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
async function configure(config) {
	await runGlobalConfigMutation("configure()", async () => {
		if (currentConfig != null && !config.reset) throw new ConfigError("Already configured; if you want to reset, turn on the reset flag.");
		await disposeInternal();
		resetInternal();
		try {
			configureInternal(config, true);
		} catch (e) {
			if (e instanceof ConfigError) {
				await disposeInternal();
				resetInternal();
			}
			throw e;
		}
	});
}
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
function configureSync(config) {
	runGlobalConfigMutationSync("configureSync()", () => {
		if (currentConfig != null && !config.reset) throw new ConfigError("Already configured; if you want to reset, turn on the reset flag.");
		if (asyncFilterDisposables.size > 0 || asyncSinkDisposables.size > 0) throw new ConfigError("Previously configured async disposables are still active. Use configure() instead or explicitly dispose them using dispose().");
		disposeSyncInternal();
		resetInternal();
		try {
			configureInternal(config, false);
		} catch (e) {
			if (e instanceof ConfigError) {
				disposeSyncInternal();
				resetInternal();
			}
			throw e;
		}
	});
}
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
async function withConfig(config, callback) {
	const contextLocalStorage = getConfiguredContextLocalStorage("withConfig()");
	const scopedConfig = compileScopedConfig(config, true, (message) => new ConfigError(message));
	let result;
	let callbackError;
	let callbackFailed = false;
	activeScopedConfigCount++;
	activeScopedConfigs.add(scopedConfig);
	const capturesSourceLocation = scopedConfig.capturesSourceLocation;
	if (capturesSourceLocation) getSourceLocationRoot().retainScopedSourceLocationCapture?.();
	try {
		result = await runWithScopedConfig(contextLocalStorage, scopedConfig, callback);
	} catch (error) {
		callbackFailed = true;
		callbackError = error;
	}
	try {
		await disposeScopedConfig(scopedConfig, getRetainedDisposables(scopedConfig));
	} catch (disposeError) {
		if (callbackFailed) throwCombinedErrors(callbackError, disposeError);
		throw disposeError;
	} finally {
		activeScopedConfigs.delete(scopedConfig);
		activeScopedConfigCount--;
		if (capturesSourceLocation) getSourceLocationRoot().releaseScopedSourceLocationCapture?.();
	}
	if (callbackFailed) throw callbackError;
	return result;
}
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
function withConfigSync(config, callback) {
	const contextLocalStorage = getConfiguredContextLocalStorage("withConfigSync()");
	const scopedConfig = compileScopedConfig(config, false, (message) => new ConfigError(message));
	let result;
	let callbackError;
	let callbackFailed = false;
	activeScopedConfigCount++;
	activeScopedConfigs.add(scopedConfig);
	const capturesSourceLocation = scopedConfig.capturesSourceLocation;
	if (capturesSourceLocation) getSourceLocationRoot().retainScopedSourceLocationCapture?.();
	try {
		result = runWithScopedConfig(contextLocalStorage, scopedConfig, callback);
		if (isThenable(result)) {
			Promise.resolve(result).catch(() => {});
			callbackFailed = true;
			callbackError = new ConfigError("withConfigSync() callback must not return a promise. Use withConfig() for async callbacks.");
		}
	} catch (error) {
		callbackFailed = true;
		callbackError = error;
	}
	try {
		disposeScopedConfigSync(scopedConfig, getRetainedDisposables(scopedConfig));
	} catch (disposeError) {
		if (callbackFailed) throwCombinedErrors(callbackError, disposeError);
		throw disposeError;
	} finally {
		activeScopedConfigs.delete(scopedConfig);
		activeScopedConfigCount--;
		if (capturesSourceLocation) getSourceLocationRoot().releaseScopedSourceLocationCapture?.();
	}
	if (callbackFailed) throw callbackError;
	return result;
}
function isThenable(value) {
	return value != null && (typeof value === "object" || typeof value === "function") && "then" in value && typeof value.then === "function";
}
function getGlobalDisposables() {
	return new Set([
		...filterDisposables,
		...asyncFilterDisposables,
		...sinkDisposables,
		...asyncSinkDisposables
	]);
}
function getRetainedDisposables(scopedConfig) {
	const disposables = new Set(getGlobalDisposables());
	for (const activeScopedConfig of activeScopedConfigs) {
		if (activeScopedConfig === scopedConfig || activeScopedConfig.disposed) continue;
		addScopedConfigDisposables(disposables, activeScopedConfig);
	}
	return disposables;
}
function addScopedConfigDisposables(disposables, scopedConfig) {
	for (const disposable of scopedConfig.syncFilters) disposables.add(disposable);
	for (const disposable of scopedConfig.asyncFilters) disposables.add(disposable);
	for (const disposable of scopedConfig.syncSinks) disposables.add(disposable);
	for (const disposable of scopedConfig.asyncSinks) disposables.add(disposable);
}
function configureInternal(config, allowAsync) {
	currentConfig = config;
	getInspectionState().configured = true;
	let metaConfigured = false;
	let capturesSourceLocation = false;
	const configuredCategories = /* @__PURE__ */ new Set();
	for (const cfg of config.loggers) {
		if (isLoggerConfigMeta(cfg)) metaConfigured = true;
		const categoryKey = Array.isArray(cfg.category) ? JSON.stringify(cfg.category) : JSON.stringify([cfg.category]);
		if (configuredCategories.has(categoryKey)) throw new ConfigError(`Duplicate logger configuration for category: ${categoryKey}. Each category can only be configured once.`);
		configuredCategories.add(categoryKey);
		const logger = LoggerImpl.getLogger(cfg.category);
		for (const sinkId of cfg.sinks ?? []) {
			const sink = config.sinks[sinkId];
			if (!sink) throw new ConfigError(`Sink not found: ${sinkId}.`);
			logger.sinks.push(sink);
		}
		logger.parentSinks = cfg.parentSinks ?? "inherit";
		if (cfg.lowestLevel !== void 0) logger.lowestLevel = cfg.lowestLevel;
		if (cfg.captureSourceLocation !== void 0) {
			if (typeof cfg.captureSourceLocation !== "boolean") throw new ConfigError("Logger captureSourceLocation must be a boolean.");
			logger.sourceLocationCapture = cfg.captureSourceLocation;
			if (cfg.captureSourceLocation) capturesSourceLocation = true;
		}
		for (const filterId of cfg.filters ?? []) {
			const filter = config.filters?.[filterId];
			if (filter === void 0) throw new ConfigError(`Filter not found: ${filterId}.`);
			logger.filters.push(toFilter(filter));
		}
		getInspectionState().loggers.set(logger, {
			sinks: [...logger.sinks],
			sinkIds: [...cfg.sinks ?? []],
			filters: [...logger.filters],
			filterIds: [...cfg.filters ?? []]
		});
		strongRefs.add(logger);
	}
	LoggerImpl.getLogger().contextLocalStorage = config.contextLocalStorage;
	getSourceLocationRoot().setGlobalSourceLocationCapture?.(capturesSourceLocation);
	for (const sink of Object.values(config.sinks)) {
		installedSinks.add(sink);
		if (asyncDisposeSymbol in sink) if (allowAsync) asyncSinkDisposables.add(sink);
		else throw new ConfigError("Async disposables cannot be used with configureSync().");
		if (disposeSymbol in sink) sinkDisposables.add(sink);
	}
	for (const filter of Object.values(config.filters ?? {})) {
		if (filter == null || typeof filter === "string") continue;
		if (asyncDisposeSymbol in filter) {
			if (allowAsync) asyncFilterDisposables.add(filter);
			else throw new ConfigError("Async disposables cannot be used with configureSync().");
			asyncSinkDisposables.delete(filter);
		}
		if (disposeSymbol in filter) {
			filterDisposables.add(filter);
			sinkDisposables.delete(filter);
		}
	}
	registerDisposeHook(allowAsync);
	const meta = LoggerImpl.getLogger(["logtape", "meta"]);
	if (!metaConfigured) meta.sinks.push(getConsoleSink());
	meta.info("LogTape loggers are configured.  Note that LogTape itself uses the meta logger, which has category {metaLoggerCategory}.  The meta logger is used to log internal diagnostics such as sink exceptions.  It's recommended to configure the meta logger with a separate sink so that you can easily notice if logging itself fails or is misconfigured.  To turn off this message, configure the meta logger with higher log levels than {dismissLevel}.  See also <https://logtape.org/manual/categories#meta-logger>.", {
		metaLoggerCategory: ["logtape", "meta"],
		dismissLevel: "info"
	});
}
/**
* Get the current configuration, if any.  Otherwise, `null`.
* @returns The current configuration, if any.  Otherwise, `null`.
*/
function getConfig() {
	return currentConfig;
}
/**
* Reset the configuration.  Mostly for testing purposes.
*/
async function reset() {
	await runGlobalConfigMutation("reset()", async () => {
		await disposeInternal();
		resetInternal();
	});
}
/**
* Reset the configuration.  Mostly for testing purposes. Will not clear async
* sinks, only use with sync sinks. Use {@link reset} if you have async sinks.
* @since 0.9.0
*/
function resetSync() {
	runGlobalConfigMutationSync("resetSync()", () => {
		disposeSyncInternal();
		resetInternal();
	});
}
function resetInternal() {
	unregisterDisposeHook?.();
	unregisterDisposeHook = void 0;
	const rootLogger = LoggerImpl.getLogger([]);
	rootLogger.resetDescendants();
	getSourceLocationRoot().setGlobalSourceLocationCapture?.(false);
	delete rootLogger.contextLocalStorage;
	strongRefs.clear();
	installedSinks.clear();
	const inspectionState = getInspectionState();
	inspectionState.configured = false;
	inspectionState.loggers = /* @__PURE__ */ new WeakMap();
	currentConfig = null;
}
/**
* Checks whether the process-global configuration is in effect.  Unlike
* {@link getConfig}, it also reflects configuring and resetting through
* another copy of LogTape in the same process.
*/
function isConfigured() {
	return getInspectionState().configured;
}
/**
* Gets the sink and filter identifiers that the process-global configuration
* attached to the given logger.
* @param logger The logger to look up.
* @returns The identifiers, or `undefined` if the logger is not configured.
*/
function getConfiguredLoggerIds(logger) {
	const configured = getInspectionState().loggers.get(logger);
	if (configured == null) return void 0;
	return {
		sinkIds: isSameList(logger.sinks, configured.sinks) ? configured.sinkIds : void 0,
		filterIds: isSameList(logger.filters, configured.filters) ? configured.filterIds : void 0
	};
}
function isSameList(a, b) {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
	return true;
}
/**
* Dispose of the disposables.
*/
async function dispose() {
	await runGlobalConfigMutation("dispose()", disposeInternal);
}
async function disposeInternal() {
	const errors = [];
	try {
		disposeSyncFilters();
	} catch (error) {
		errors.push(error);
	}
	try {
		await disposeAsyncFilters();
	} catch (error) {
		errors.push(error);
	}
	try {
		disposeSyncSinks();
	} catch (error) {
		errors.push(error);
	}
	try {
		await disposeAsyncSinks();
	} catch (error) {
		errors.push(error);
	}
	throwDisposeErrors(errors);
}
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
function drain() {
	if (globalConfigMutationInProgress) return Promise.reject(new ConfigError("drain() cannot be called while LogTape is being reconfigured."));
	const scopedConfig = getCurrentScopedConfig(LoggerImpl.getLogger().contextLocalStorage);
	const sinks = [...scopedConfig?.sinks ?? installedSinks];
	const promises = [];
	for (const sink of sinks) try {
		const method = sink.drain;
		if (typeof method !== "function") continue;
		promises.push(Promise.resolve(method.call(sink)));
	} catch (error) {
		promises.push(Promise.reject(error));
	}
	return settleDrainPromises(promises);
}
async function settleDrainPromises(promises) {
	const results = await Promise.allSettled(promises);
	const errors = results.filter((result) => result.status === "rejected").map((result) => result.reason);
	if (errors.length < 1) return;
	if (errors.length === 1) throw errors[0];
	throw new AggregateError(errors, "Multiple errors occurred while draining LogTape sinks.");
}
/**
* Dispose of the sync disposables. Async disposables will be untouched,
* use {@link dispose} if you have async sinks.
* @since 0.9.0
*/
function disposeSync() {
	runGlobalConfigMutationSync("disposeSync()", disposeSyncInternal);
}
function disposeSyncInternal() {
	const errors = [];
	try {
		disposeSyncFilters();
	} catch (error) {
		errors.push(error);
	}
	try {
		disposeSyncSinks();
	} catch (error) {
		errors.push(error);
	}
	throwDisposeErrors(errors);
}
function getConfiguredContextLocalStorage(functionName) {
	if (globalConfigMutationInProgress) throw new ConfigError(`${functionName} cannot be called while LogTape is being reconfigured.`);
	if (currentConfig == null) throw new ConfigError(`${functionName} requires LogTape to be configured first.`);
	const contextLocalStorage = LoggerImpl.getLogger().contextLocalStorage;
	if (contextLocalStorage == null) throw new ConfigError(`${functionName} requires Config.contextLocalStorage to be configured.`);
	return contextLocalStorage;
}
async function runGlobalConfigMutation(functionName, callback) {
	assertCanMutateGlobalConfig(functionName);
	globalConfigMutationInProgress = true;
	try {
		return await callback();
	} finally {
		globalConfigMutationInProgress = false;
	}
}
function runGlobalConfigMutationSync(functionName, callback) {
	assertCanMutateGlobalConfig(functionName);
	globalConfigMutationInProgress = true;
	try {
		return callback();
	} finally {
		globalConfigMutationInProgress = false;
	}
}
function assertCanMutateGlobalConfig(functionName) {
	if (globalConfigMutationInProgress) throw new ConfigError(`${functionName} cannot be called while LogTape is being reconfigured.`);
	assertNoScopedConfig(functionName);
}
function assertNoScopedConfig(functionName) {
	if (activeScopedConfigCount > 0) throw new ConfigError(`${functionName} cannot be called while a scoped configuration is active. Use nested withConfig() instead.`);
}
function disposeSyncFilters() {
	disposeSyncDisposables(filterDisposables);
}
function disposeSyncSinks() {
	disposeSyncDisposables(sinkDisposables);
}
function disposeSyncDisposables(disposables) {
	const errors = [];
	try {
		for (const disposable of disposables) try {
			disposable[disposeSymbol]();
		} catch (error) {
			errors.push(error);
		} finally {
			disposables.delete(disposable);
		}
	} finally {
		disposables.clear();
	}
	throwDisposeErrors(errors);
}
async function disposeAsyncFilters() {
	await disposeAsyncDisposables(asyncFilterDisposables);
}
async function disposeAsyncSinks() {
	await disposeAsyncDisposables(asyncSinkDisposables);
}
async function disposeAsyncDisposables(disposables) {
	const promises = [];
	try {
		for (const disposable of disposables) try {
			promises.push(Promise.resolve(disposable[asyncDisposeSymbol]()));
		} catch (error) {
			promises.push(Promise.reject(error));
		} finally {
			disposables.delete(disposable);
		}
	} finally {
		disposables.clear();
	}
	await settleDisposePromises(promises);
}
async function settleDisposePromises(promises) {
	const results = await Promise.allSettled(promises);
	throwDisposeErrors(results.filter((result) => result.status === "rejected").map((result) => result.reason));
}
function throwDisposeErrors(errors) {
	if (errors.length < 1) return;
	if (errors.length === 1) throw errors[0];
	throw new AggregateError(errors, "Multiple errors occurred while disposing LogTape resources.");
}
/**
* A configuration error.
*/
var ConfigError = class extends Error {
	/**
	* Constructs a new configuration error.
	* @param message The error message.
	*/
	constructor(message) {
		super(message);
		this.name = "ConfigError";
	}
};

//#endregion
export { ConfigError, configure, configureSync, dispose, disposeSync, drain, getConfig, getConfiguredLoggerIds, isConfigured, reset, resetSync, withConfig, withConfigSync };
