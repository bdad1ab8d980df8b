import { asyncDisposeSymbol, disposeSymbol } from "./disposable.js";
import { toFilter } from "./filter.js";
import { compareLogLevel } from "./level.js";
import { LoggerImpl } from "./logger.js";
import { stringifyKeyWithoutCycles } from "./circular.js";
import { defaultConsoleFormatter, defaultTextFormatter } from "./formatter.js";

//#region src/sink.ts
const immediateSinkSymbol = Symbol.for("LogTape.sinkSnapshotPolicy.immediate");
function markSinkAsImmediate(sink) {
	Object.defineProperty(sink, immediateSinkSymbol, { value: true });
	return sink;
}
function createSinkNotifications(sink, interval, onDrop, onError) {
	let notificationDepth = 0;
	let dropped = 0;
	let timer = null;
	function notify(callback, event) {
		notificationDepth++;
		try {
			const result = callback(event);
			if (result != null) Promise.resolve(result).catch(() => {});
		} catch {} finally {
			notificationDepth--;
		}
	}
	function reportDrops() {
		const count = dropped;
		dropped = 0;
		if (count > 0 && onDrop != null) notify(onDrop, {
			count,
			reason: "overflow"
		});
	}
	return {
		get notifying() {
			return notificationDepth > 0;
		},
		drop() {
			if (onDrop == null) return;
			dropped++;
			if (timer == null) timer = setTimeout(() => {
				timer = null;
				reportDrops();
			}, interval);
		},
		error(error, operation, defer = false) {
			if (onError == null) return;
			const event = {
				error,
				sink,
				operation
			};
			if (defer) queueMicrotask(() => notify(onError, event));
			else notify(onError, event);
		},
		dispose() {
			if (timer != null) {
				clearTimeout(timer);
				timer = null;
			}
			reportDrops();
		}
	};
}
function isDrainable(sink) {
	return typeof sink.drain === "function";
}
function withFilter(sink, filter) {
	const filterFunc = toFilter(filter);
	const filtered = (record) => {
		if (filterFunc(record)) sink(record);
	};
	const disposableSink = sink;
	if (disposeSymbol in disposableSink) filtered[disposeSymbol] = disposableSink[disposeSymbol]?.bind(sink);
	if (asyncDisposeSymbol in disposableSink) filtered[asyncDisposeSymbol] = disposableSink[asyncDisposeSymbol]?.bind(sink);
	if (isDrainable(sink)) filtered.drain = sink.drain.bind(sink);
	return filtered;
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
function getStreamSink(stream, options = {}) {
	const formatter = options.formatter ?? defaultTextFormatter;
	const encoder = options.encoder ?? new TextEncoder();
	const closeStream = options.closeStream ?? true;
	const writer = stream.getWriter();
	if (!options.nonBlocking) {
		let lastPromise = Promise.resolve();
		const sink = (record) => {
			const bytes = encoder.encode(formatter(record));
			lastPromise = lastPromise.then(() => writer.ready).then(() => writer.write(bytes));
		};
		sink[asyncDisposeSymbol] = async () => {
			try {
				await lastPromise;
				if (closeStream) await writer.close();
			} finally {
				writer.releaseLock();
			}
		};
		sink.drain = async () => {
			await lastPromise;
		};
		return markSinkAsImmediate(sink);
	}
	const nonBlockingConfig = options.nonBlocking === true ? {} : options.nonBlocking;
	const bufferSize = nonBlockingConfig.bufferSize ?? 100;
	const flushInterval = nonBlockingConfig.flushInterval ?? 100;
	const notifications = createSinkNotifications("stream", flushInterval, nonBlockingConfig.onDrop, nonBlockingConfig.onError);
	const buffer = [];
	let flushTimer = null;
	let disposed = false;
	let disposePromise = null;
	let activeFlush = null;
	let startingFlush = false;
	let flushOwned = false;
	const maxBufferSize = bufferSize * 2;
	let acceptedSeq = 0;
	let batchNext = 1;
	let batchEnd = 0;
	const drainWaiters = [];
	function getSettledSeq() {
		if (batchNext <= batchEnd) return batchNext - 1;
		if (buffer.length > 0) return acceptedSeq - buffer.length;
		return acceptedSeq;
	}
	function resolveDrainWaiters() {
		if (drainWaiters.length < 1) return;
		const settledSeq = getSettledSeq();
		let count = 0;
		while (count < drainWaiters.length && drainWaiters[count].target <= settledSeq) count++;
		for (const waiter of drainWaiters.splice(0, count)) waiter.resolve();
	}
	async function flush() {
		if (buffer.length === 0) return;
		batchEnd = acceptedSeq;
		batchNext = acceptedSeq - buffer.length + 1;
		const records = buffer.splice(0);
		for (const record of records) {
			let operation = "format";
			try {
				const text = formatter(record);
				operation = "encode";
				const bytes = encoder.encode(text);
				operation = "write";
				await writer.ready;
				await writer.write(bytes);
			} catch (error) {
				notifications.error(error, operation, startingFlush);
			}
			batchNext++;
			resolveDrainWaiters();
		}
	}
	async function runFlushLoop() {
		try {
			for (;;) {
				await flush();
				if (drainWaiters.length < 1 || buffer.length < 1) {
					flushOwned = false;
					activeFlush = null;
					return;
				}
			}
		} finally {
			flushOwned = false;
			activeFlush = null;
		}
	}
	function scheduleFlush() {
		if (flushOwned || disposed) return;
		flushOwned = true;
		startingFlush = true;
		try {
			activeFlush = runFlushLoop();
		} finally {
			startingFlush = false;
		}
	}
	function startFlushTimer() {
		if (flushTimer !== null || disposed) return;
		flushTimer = setInterval(() => {
			scheduleFlush();
		}, flushInterval);
	}
	const nonBlockingSink = (record) => {
		if (disposed || notifications.notifying) return;
		let dropped = false;
		if (buffer.length >= maxBufferSize && buffer.length > 0) {
			buffer.shift();
			notifications.drop();
			dropped = true;
		}
		buffer.push(record);
		acceptedSeq++;
		if (dropped) resolveDrainWaiters();
		if (buffer.length >= bufferSize) scheduleFlush();
		else if (flushTimer === null) startFlushTimer();
	};
	nonBlockingSink[asyncDisposeSymbol] = () => {
		if (disposePromise != null) return disposePromise;
		let complete;
		disposePromise = new Promise((resolve) => {
			complete = resolve;
		});
		disposed = true;
		if (flushTimer !== null) {
			clearInterval(flushTimer);
			flushTimer = null;
		}
		notifications.dispose();
		complete((async () => {
			try {
				await Promise.resolve();
				await activeFlush;
				await flush();
				if (closeStream) try {
					await writer.close();
				} catch (error) {
					notifications.error(error, "close");
				}
			} finally {
				writer.releaseLock();
			}
		})());
		return disposePromise;
	};
	nonBlockingSink.drain = () => {
		const target = acceptedSeq;
		if (getSettledSeq() >= target) return Promise.resolve();
		const promise = new Promise((resolve) => {
			drainWaiters.push({
				target,
				resolve
			});
		});
		scheduleFlush();
		return promise;
	};
	return nonBlockingSink;
}
/**
* A console sink factory that returns a sink that logs to the console.
*
* @param options The options for the sink.
* @returns A sink that logs to the console. If `nonBlocking` is enabled,
*          returns a sink that also implements {@link Disposable}.
*/
function getConsoleSink(options = {}) {
	const formatter = options.formatter ?? defaultConsoleFormatter;
	const levelMap = {
		trace: "debug",
		debug: "debug",
		info: "info",
		warning: "warn",
		error: "error",
		fatal: "error",
		...options.levelMap ?? {}
	};
	const console = options.console ?? globalThis.console;
	const writeToConsole = (record, args) => {
		const method = levelMap[record.level];
		if (method === void 0) throw new TypeError(`Invalid log level: ${record.level}.`);
		if (typeof args === "string") {
			const msg = args.replace(/\r?\n$/, "");
			console[method](msg);
		} else console[method](...args);
	};
	const baseSink = (record) => {
		writeToConsole(record, formatter(record));
	};
	if (!options.nonBlocking) return baseSink;
	const nonBlockingConfig = options.nonBlocking === true ? {} : options.nonBlocking;
	const bufferSize = nonBlockingConfig.bufferSize ?? 100;
	const flushInterval = nonBlockingConfig.flushInterval ?? 100;
	const notifications = createSinkNotifications("console", flushInterval, nonBlockingConfig.onDrop, nonBlockingConfig.onError);
	const buffer = [];
	let flushTimer = null;
	let scheduledFlushTimer = null;
	let disposed = false;
	let flushScheduled = false;
	const maxBufferSize = bufferSize * 2;
	function flush() {
		if (buffer.length === 0) return;
		const records = buffer.splice(0);
		for (const record of records) {
			let operation = "format";
			try {
				const args = formatter(record);
				operation = "write";
				writeToConsole(record, args);
			} catch (error) {
				notifications.error(error, operation);
			}
		}
	}
	function scheduleFlush() {
		if (flushScheduled) return;
		flushScheduled = true;
		scheduledFlushTimer = setTimeout(() => {
			scheduledFlushTimer = null;
			flushScheduled = false;
			flush();
		}, 0);
	}
	function startFlushTimer() {
		if (flushTimer !== null || disposed) return;
		flushTimer = setInterval(() => {
			flush();
		}, flushInterval);
	}
	const nonBlockingSink = (record) => {
		if (disposed || notifications.notifying) return;
		if (buffer.length >= maxBufferSize && buffer.length > 0) {
			buffer.shift();
			notifications.drop();
		}
		buffer.push(record);
		if (buffer.length >= bufferSize) scheduleFlush();
		else if (flushTimer === null) startFlushTimer();
	};
	nonBlockingSink[disposeSymbol] = () => {
		if (disposed) return;
		disposed = true;
		if (flushTimer !== null) {
			clearInterval(flushTimer);
			flushTimer = null;
		}
		if (scheduledFlushTimer !== null) {
			clearTimeout(scheduledFlushTimer);
			scheduledFlushTimer = null;
			flushScheduled = false;
		}
		notifications.dispose();
		flush();
	};
	return nonBlockingSink;
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
function fromAsyncSink(asyncSink, options = {}) {
	const maxQueueSize = options.maxQueueSize ?? Infinity;
	if (maxQueueSize !== Infinity && !(Number.isInteger(maxQueueSize) && maxQueueSize >= 1)) throw new RangeError(`The maxQueueSize option must be a positive integer or Infinity, but got ${maxQueueSize}.`);
	const overflow = options.overflow ?? "drop-oldest";
	if (overflow !== "drop-oldest" && overflow !== "drop-newest") throw new TypeError(`The overflow option must be either "drop-oldest" or "drop-newest", but got ${JSON.stringify(overflow)}.`);
	const { onDrop, waitUntil } = options;
	let lastPromise = Promise.resolve();
	let head = null;
	let tail = null;
	let live = 0;
	let inOnDrop = false;
	let carriedDrops = 0;
	let reportingCallbackError = false;
	function reportToMetaLogger(rawMessage, message, properties) {
		try {
			const metaLogger = LoggerImpl.getLogger(["logtape", "meta"]);
			const errorRecord = {
				category: ["logtape", "meta"],
				level: "error",
				timestamp: Date.now(),
				rawMessage,
				message,
				properties,
				[_asyncSinkError]: true
			};
			metaLogger.emit(errorRecord, new Set([sink]));
		} catch {}
	}
	function reportCallbackError(callback, error) {
		if (reportingCallbackError) return;
		reportingCallbackError = true;
		try {
			reportToMetaLogger("Async sink {callback} callback failed: {error}", [
				"Async sink ",
				callback,
				" callback failed: ",
				error,
				""
			], {
				error,
				callback,
				sink: asyncSink
			});
		} finally {
			reportingCallbackError = false;
		}
	}
	function invokeCallback(callback, invoke, diagnostic) {
		let result;
		try {
			result = invoke();
		} catch (error) {
			reportCallbackError(callback, error);
			return;
		}
		if (result == null) return;
		try {
			const then = result.then;
			if (typeof then !== "function") return;
			then.call(result, void 0, (error) => {
				if (!diagnostic) reportCallbackError(callback, error);
			});
		} catch (error) {
			reportCallbackError(callback, error);
		}
	}
	function isDiagnostic(record) {
		try {
			return _asyncSinkError in record;
		} catch {
			return false;
		}
	}
	function notifyDrop(count, diagnostic) {
		if (onDrop == null) return;
		if (inOnDrop) {
			carriedDrops += count;
			return;
		}
		const total = count + carriedDrops;
		carriedDrops = 0;
		if (total < 1) return;
		inOnDrop = true;
		try {
			invokeCallback("onDrop", () => onDrop({
				count: total,
				reason: "overflow"
			}), diagnostic);
		} finally {
			inOnDrop = false;
		}
	}
	async function run(entry) {
		const record = entry.record;
		if (record === void 0) return;
		let failed = false;
		let error;
		try {
			await asyncSink(record);
		} catch (e) {
			failed = true;
			error = e;
		}
		head = entry.next;
		if (head === null) tail = null;
		entry.next = null;
		entry.record = void 0;
		live--;
		if (!failed) return;
		try {
			if (_asyncSinkError in record) return;
			reportToMetaLogger("Async sink error: {error}", [
				"Async sink error: ",
				error,
				""
			], {
				error,
				sink: asyncSink,
				record
			});
		} catch {}
	}
	const sink = (record) => {
		let dropped = 0;
		if (live > maxQueueSize) {
			if (overflow === "drop-newest") {
				notifyDrop(1, isDiagnostic(record));
				return;
			}
			const evicted = head.next;
			head.next = evicted.next;
			if (tail === evicted) tail = head;
			evicted.next = null;
			evicted.record = void 0;
			live--;
			dropped = 1;
		}
		const entry = {
			record,
			next: null
		};
		if (tail === null) head = entry;
		else tail.next = entry;
		tail = entry;
		live++;
		const promise = lastPromise.then(() => run(entry));
		lastPromise = promise;
		if (dropped < 1 && waitUntil == null) return;
		const diagnostic = isDiagnostic(record);
		if (dropped > 0) notifyDrop(dropped, diagnostic);
		if (waitUntil != null) invokeCallback("waitUntil", () => waitUntil(promise), diagnostic);
	};
	sink[asyncDisposeSymbol] = async () => {
		let notified = false;
		for (;;) {
			const promise = lastPromise;
			await promise;
			if (promise !== lastPromise) continue;
			if (!notified && carriedDrops > 0 && !inOnDrop) {
				notified = true;
				notifyDrop(0, false);
				continue;
			}
			break;
		}
	};
	sink.drain = async () => {
		await lastPromise;
	};
	return sink;
}
const _asyncSinkError = Symbol.for("logtape.asyncSinkError");
function fingersCrossed(sink, options = {}) {
	const triggerLevel = options.triggerLevel ?? "error";
	const afterTrigger = options.afterTrigger === void 0 ? "passthrough" : options.afterTrigger;
	const bufferLevel = options.bufferLevel;
	const maxBufferSize = Math.max(0, options.maxBufferSize ?? 1e3);
	const isolateByCategory = options.isolateByCategory;
	const isolateByContext = options.isolateByContext;
	const bufferTtlMs = isolateByContext?.bufferTtlMs;
	const cleanupIntervalMs = isolateByContext?.cleanupIntervalMs ?? 3e4;
	const maxContexts = isolateByContext?.maxContexts;
	const hasTtl = bufferTtlMs != null && bufferTtlMs > 0;
	const hasLru = maxContexts != null && maxContexts > 0;
	function wrapSink(wrapped, disposeSelf) {
		const disposableSink = sink;
		const disposableWrapped = wrapped;
		const disposeSink = disposableSink[disposeSymbol];
		const asyncDisposeSink = disposableSink[asyncDisposeSymbol];
		if (disposeSelf != null || disposeSink != null) disposableWrapped[disposeSymbol] = () => {
			disposeSelf?.();
			disposeSink?.call(sink);
		};
		if (asyncDisposeSink != null) disposableWrapped[asyncDisposeSymbol] = async () => {
			disposeSelf?.();
			await asyncDisposeSink.call(sink);
		};
		if (isDrainable(sink)) disposableWrapped.drain = sink.drain.bind(sink);
		return disposableWrapped;
	}
	try {
		compareLogLevel("trace", triggerLevel);
	} catch (error) {
		throw new TypeError(`Invalid triggerLevel: ${JSON.stringify(triggerLevel)}. ${error instanceof Error ? error.message : String(error)}`);
	}
	if (bufferLevel != null) {
		try {
			compareLogLevel("trace", bufferLevel);
		} catch (error) {
			throw new TypeError(`Invalid bufferLevel: ${JSON.stringify(bufferLevel)}. ${error instanceof Error ? error.message : String(error)}`);
		}
		if (compareLogLevel(bufferLevel, triggerLevel) >= 0) throw new RangeError(`bufferLevel (${JSON.stringify(bufferLevel)}) must be lower than triggerLevel (${JSON.stringify(triggerLevel)}).`);
	}
	if (afterTrigger !== "passthrough" && afterTrigger !== "buffer") throw new TypeError(`Invalid afterTrigger: ${JSON.stringify(afterTrigger)}. Expected "passthrough", "buffer", or undefined.`);
	const keepTriggered = afterTrigger === "passthrough";
	function snapshotRecord(record) {
		if (maxBufferSize === 0 || options.snapshot == null) return record;
		const snapshot = options.snapshot(record);
		if (snapshot == null || typeof snapshot !== "object") throw new TypeError("snapshot must return a log record object.");
		if ("then" in snapshot && typeof snapshot.then === "function") {
			Promise.resolve(snapshot).catch(() => {});
			throw new TypeError("snapshot must return a log record synchronously.");
		}
		return snapshot;
	}
	function getBufferAction(record) {
		const action = options.bufferAction?.(record);
		if (action !== void 0 && action !== "flush" && action !== "discard") throw new TypeError(`Invalid buffer action: ${JSON.stringify(action)}. Expected "flush", "discard", or undefined.`);
		return action;
	}
	function isDescendant(parent, child) {
		if (parent.length === 0 || child.length === 0) return false;
		if (parent.length > child.length) return false;
		return parent.every((p, i) => p === child[i]);
	}
	function isAncestor(child, parent) {
		if (child.length === 0 || parent.length === 0) return false;
		if (child.length < parent.length) return false;
		return parent.every((p, i) => p === child[i]);
	}
	let shouldFlushBuffer = null;
	if (isolateByCategory) if (typeof isolateByCategory === "function") shouldFlushBuffer = isolateByCategory;
	else switch (isolateByCategory) {
		case "descendant":
			shouldFlushBuffer = (trigger, buffered) => isDescendant(trigger, buffered);
			break;
		case "ancestor":
			shouldFlushBuffer = (trigger, buffered) => isAncestor(trigger, buffered);
			break;
		case "both":
			shouldFlushBuffer = (trigger, buffered) => isDescendant(trigger, buffered) || isAncestor(trigger, buffered);
			break;
	}
	function getCategoryKey(category) {
		return JSON.stringify(category);
	}
	function getContextKey(properties) {
		if (!isolateByContext || isolateByContext.keys.length === 0) return "";
		const contextValues = {};
		for (const key of isolateByContext.keys) if (key in properties) contextValues[key] = properties[key];
		return stringifyKeyWithoutCycles(contextValues) ?? "undefined";
	}
	function getBufferKey(identity) {
		const categoryKey = getCategoryKey(identity.category);
		if (!isolateByContext) return categoryKey;
		return `${categoryKey}:${identity.context}`;
	}
	function getBufferIdentity(record) {
		return {
			category: record.category,
			context: getContextKey(record.properties)
		};
	}
	function cleanupExpiredBuffers(buffers, triggered) {
		if (!hasTtl) return;
		const now = Date.now();
		const expiredKeys = [];
		for (const [key, metadata] of buffers) {
			if (metadata.buffer.length === 0) continue;
			const lastRecordTimestamp = metadata.buffer[metadata.buffer.length - 1].timestamp;
			if (now - lastRecordTimestamp > bufferTtlMs) expiredKeys.push(key);
		}
		for (const key of expiredKeys) {
			buffers.delete(key);
			triggered.delete(key);
		}
		for (const [key, metadata] of triggered) if (now - metadata.triggeredAt > bufferTtlMs) triggered.delete(key);
	}
	function evictLruBuffers(buffers, numToEvict) {
		if (!hasLru) return;
		const toEvict = numToEvict ?? Math.max(0, buffers.size - maxContexts);
		if (toEvict <= 0) return;
		const sortedEntries = Array.from(buffers.entries()).sort(([, a], [, b]) => a.lastAccess - b.lastAccess);
		for (let i = 0; i < toEvict; i++) {
			const [key] = sortedEntries[i];
			buffers.delete(key);
		}
	}
	if (!isolateByCategory && !isolateByContext) {
		const buffer = [];
		let triggered = false;
		const validateGlobalSelector = (selector) => {
			if (selector?.context != null || selector?.category != null) throw new TypeError("A buffer selector cannot be used without buffer isolation.");
		};
		const flush = (selector) => {
			validateGlobalSelector(selector);
			const bufferedRecords = buffer.splice(0);
			triggered = false;
			for (const bufferedRecord of bufferedRecords) sink(bufferedRecord);
		};
		const discard = (selector) => {
			validateGlobalSelector(selector);
			buffer.length = 0;
			triggered = false;
		};
		const fingersCrossedSink = (record) => {
			const action = getBufferAction(record);
			if (action === "flush") {
				flush();
				sink(record);
				return;
			}
			if (action === "discard") {
				discard();
				return;
			}
			if (triggered) {
				sink(record);
				return;
			}
			if (compareLogLevel(record.level, triggerLevel) >= 0) {
				if (keepTriggered) {
					triggered = true;
					for (const bufferedRecord of buffer) sink(bufferedRecord);
					buffer.length = 0;
				} else {
					const bufferedRecords = buffer.splice(0);
					for (const bufferedRecord of bufferedRecords) sink(bufferedRecord);
				}
				sink(record);
			} else if (bufferLevel != null && compareLogLevel(record.level, bufferLevel) > 0) sink(record);
			else {
				buffer.push(snapshotRecord(record));
				while (buffer.length > maxBufferSize) buffer.shift();
			}
		};
		fingersCrossedSink.flush = flush;
		fingersCrossedSink.discard = discard;
		return wrapSink(fingersCrossedSink);
	} else {
		const buffers = /* @__PURE__ */ new Map();
		const triggered = /* @__PURE__ */ new Map();
		let accessCounter = 0;
		const getRecordSelection = (identity) => {
			return {
				category: isolateByCategory ? identity.category : void 0,
				context: isolateByContext ? identity.context : void 0
			};
		};
		const getManualSelection = (selector) => {
			let context;
			if (selector?.context != null) {
				if (!isolateByContext) throw new TypeError("A context selector requires isolateByContext.");
				const missingKeys = isolateByContext.keys.filter((key) => !(key in selector.context));
				if (missingKeys.length > 0) throw new TypeError(`Missing context selector keys: ${missingKeys.join(", ")}.`);
				context = getContextKey(selector.context);
			}
			return {
				category: selector?.category,
				context
			};
		};
		const matchesSelection = (identity, selection) => {
			if (selection.context != null && selection.context !== identity.context) return false;
			if (selection.category == null) return true;
			if (getCategoryKey(selection.category) === getCategoryKey(identity.category)) return true;
			if (!isolateByCategory || shouldFlushBuffer == null) return false;
			try {
				return shouldFlushBuffer(selection.category, identity.category);
			} catch {
				return false;
			}
		};
		const takeBufferedRecords = (selection) => {
			const selectedBuffers = [];
			const records = [];
			for (const [key, metadata] of buffers) {
				if (!matchesSelection(metadata, selection)) continue;
				selectedBuffers.push({
					key,
					identity: metadata
				});
				records.push(...metadata.buffer);
				buffers.delete(key);
			}
			records.sort((a, b) => a.timestamp - b.timestamp);
			return {
				selectedBuffers,
				records
			};
		};
		const releaseTriggeredState = (selection) => {
			for (const [key, metadata] of triggered) if (matchesSelection(metadata, selection)) triggered.delete(key);
		};
		const flushSelection = (selection) => {
			const { records } = takeBufferedRecords(selection);
			releaseTriggeredState(selection);
			for (const record of records) sink(record);
		};
		const discardSelection = (selection) => {
			for (const [key, metadata] of buffers) if (matchesSelection(metadata, selection)) buffers.delete(key);
			releaseTriggeredState(selection);
		};
		let cleanupTimer = null;
		if (hasTtl) cleanupTimer = setInterval(() => {
			cleanupExpiredBuffers(buffers, triggered);
		}, cleanupIntervalMs);
		const fingersCrossedSink = (record) => {
			const identity = getBufferIdentity(record);
			const bufferKey = getBufferKey(identity);
			const selection = getRecordSelection(identity);
			const action = getBufferAction(record);
			if (action === "flush") {
				flushSelection(selection);
				sink(record);
				return;
			}
			if (action === "discard") {
				discardSelection(selection);
				return;
			}
			const triggeredMetadata = triggered.get(bufferKey);
			if (triggeredMetadata != null) {
				triggeredMetadata.triggeredAt = Date.now();
				sink(record);
				return;
			}
			if (compareLogLevel(record.level, triggerLevel) >= 0) {
				const { selectedBuffers, records } = takeBufferedRecords(selection);
				const triggeredAt = Date.now();
				if (keepTriggered) for (const { key, identity: identity$1 } of selectedBuffers) triggered.set(key, {
					category: identity$1.category,
					context: identity$1.context,
					triggeredAt
				});
				for (const bufferedRecord of records) sink(bufferedRecord);
				if (keepTriggered) triggered.set(bufferKey, {
					category: identity.category,
					context: identity.context,
					triggeredAt
				});
				sink(record);
			} else if (bufferLevel != null && compareLogLevel(record.level, bufferLevel) > 0) sink(record);
			else {
				const snapshot = snapshotRecord(record);
				let metadata = buffers.get(bufferKey);
				if (!metadata) {
					if (hasLru && buffers.size >= maxContexts) {
						const numToEvict = buffers.size - maxContexts + 1;
						evictLruBuffers(buffers, numToEvict);
					}
					metadata = {
						buffer: [],
						...identity,
						lastAccess: ++accessCounter
					};
					buffers.set(bufferKey, metadata);
				} else metadata.lastAccess = ++accessCounter;
				metadata.buffer.push(snapshot);
				while (metadata.buffer.length > maxBufferSize) metadata.buffer.shift();
			}
		};
		fingersCrossedSink.flush = (selector) => {
			flushSelection(getManualSelection(selector));
		};
		fingersCrossedSink.discard = (selector) => {
			discardSelection(getManualSelection(selector));
		};
		return wrapSink(fingersCrossedSink, cleanupTimer === null ? void 0 : () => {
			if (cleanupTimer !== null) {
				clearInterval(cleanupTimer);
				cleanupTimer = null;
			}
		});
	}
}

//#endregion
export { fingersCrossed, fromAsyncSink, getConsoleSink, getStreamSink, withFilter };
