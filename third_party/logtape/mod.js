// @ts-self-types="./mod.d.ts"
import { getLevelFilter, getThrottlingFilter, toFilter } from "./filter.js";
import { withCategoryPrefix, withContext } from "./context.js";
import { compareLogLevel, getLogLevels, isLogLevel, parseLogLevel } from "./level.js";
import { getLogger, getLoggers, isLazy, lazy } from "./logger.js";
import { sanitizeControlSequences } from "./sanitize.js";
import { ansiColorFormatter, defaultConsoleFormatter, defaultTextFormatter, getAnsiColorFormatter, getConsoleFormatter, getJsonLinesFormatter, getLogfmtFormatter, getTextFormatter, jsonLinesFormatter, logfmtFormatter } from "./formatter.js";
import { fingersCrossed, fromAsyncSink, getConsoleSink, getStreamSink, withFilter } from "./sink.js";
import { ConfigError, configure, configureSync, dispose, disposeSync, drain, getConfig, reset, resetSync, withConfig, withConfigSync } from "./config.js";
import { inspectLogger } from "./inspect.js";

export { ConfigError, ansiColorFormatter, compareLogLevel, configure, configureSync, defaultConsoleFormatter, defaultTextFormatter, dispose, disposeSync, drain, fingersCrossed, fromAsyncSink, getAnsiColorFormatter, getConfig, getConsoleFormatter, getConsoleSink, getJsonLinesFormatter, getLevelFilter, getLogLevels, getLogfmtFormatter, getLogger, getLoggers, getStreamSink, getTextFormatter, getThrottlingFilter, inspectLogger, isLazy, isLogLevel, jsonLinesFormatter, lazy, logfmtFormatter, parseLogLevel, reset, resetSync, sanitizeControlSequences, toFilter, withCategoryPrefix, withConfig, withConfigSync, withContext, withFilter };