import { getFilterLevel } from "./filter.js";
import { getCategoryPrefix } from "./context.js";
import { compareLogLevel, isLogLevel } from "./level.js";
import { getCurrentScopedConfig, getScopedLogger } from "./scoped-config.js";
import { LoggerImpl, findLogger, isMetaLoggerCategory } from "./logger.js";
import { getConfiguredLoggerIds, isConfigured } from "./config.js";

//#region src/inspect.ts
/**
* Explains how the configuration in effect in the current execution context
* routes the records of a logger: which configuration applies, the category
* the records are dispatched under, the level gates and sink paths with
* the categories that supply them, the selected filters, and where sink
* inheritance stops.
*
* The inspection has no side effects.  It does not log anything, invoke any
* sink or filter, evaluate lazy properties, create loggers, or dispose
* anything.  Therefore it cannot tell whether a custom filter will accept
* a record; it reports such paths as `"conditional"` instead.
*
* ```typescript
* const report = inspectLogger(["my-app", "db"], { level: "debug" });
* for (const path of report.sinkPaths) {
*   console.log(path.id, path.category, path.status);
* }
* ```
*
* The report reflects the configuration at the time of the call; it is not
* updated afterwards, and it may be inconsistent if the configuration is
* changed concurrently.
*
* @param logger The logger to inspect, or its category as a string or array
*               of strings.  Defaults to the root logger.
* @param options The options.
* @returns The report.
* @throws {TypeError} If the category or the level is invalid.
* @since 2.4.0
*/
function inspectLogger(logger, options = {}) {
	const category = normalizeCategory(logger);
	const level = options.level;
	if (level !== void 0 && !isLogLevel(level)) throw new TypeError(`Invalid log level: ${String(level)}.`);
	const categoryPrefix = [...getCategoryPrefix()];
	const effectiveCategory = isMetaLoggerCategory(category) ? category : [...categoryPrefix, ...category];
	const scopedConfig = getCurrentScopedConfig(LoggerImpl.getLogger().contextLocalStorage);
	const nodes = [];
	for (let length = 0; length <= effectiveCategory.length; length++) {
		const nodeCategory = effectiveCategory.slice(0, length);
		nodes.push(scopedConfig == null ? getGlobalNode(nodeCategory) : getScopedNode(getScopedLogger(scopedConfig, nodeCategory), nodeCategory));
	}
	let filterNode;
	for (let i = nodes.length - 1; i >= 0; i--) if (nodes[i].filters.length > 0) {
		filterNode = nodes[i];
		break;
	}
	const filters = filterNode == null ? [] : filterNode.filters.map((filter, i) => {
		const filterLevel = getFilterLevel(filter);
		return filterLevel === void 0 ? {
			id: filterNode.filterIds[i],
			filter
		} : {
			id: filterNode.filterIds[i],
			filter,
			lowestLevel: filterLevel
		};
	});
	const hasCustomFilters = filters.some((f) => !("lowestLevel" in f));
	const filterLevels = filters.filter((f) => "lowestLevel" in f).map((f) => f.lowestLevel);
	const sinkPaths = collectSinkPaths(nodes, nodes.length - 1, []).map((path) => {
		const lowestLevel = getHighestLevel([...path.gates.map((gate) => gate.lowestLevel), ...filterLevels]);
		return {
			id: path.node.sinkIds[path.index],
			sink: path.node.sinks[path.index],
			category: [...path.node.category],
			gates: path.gates.map((gate) => ({
				category: [...gate.category],
				lowestLevel: gate.lowestLevel
			})),
			lowestLevel,
			status: lowestLevel === null || level !== void 0 && compareLogLevel(level, lowestLevel) < 0 ? "disabled" : hasCustomFilters ? "conditional" : "enabled"
		};
	});
	const inspection = {
		source: scopedConfig != null ? "scoped" : isConfigured() ? "global" : "unconfigured",
		category: [...category],
		categoryPrefix,
		effectiveCategory: [...effectiveCategory],
		loggers: nodes.map((node) => ({
			category: [...node.category],
			configured: node.configured,
			lowestLevel: node.lowestLevel,
			parentSinks: node.parentSinks,
			sinkIds: [...node.sinkIds],
			filterIds: [...node.filterIds]
		})),
		filters: {
			category: filterNode == null ? null : [...filterNode.category],
			filters
		},
		inheritanceBoundary: getInheritanceBoundary(nodes),
		sinkPaths,
		status: sinkPaths.some((path) => path.status === "enabled") ? "enabled" : sinkPaths.some((path) => path.status === "conditional") ? "conditional" : "disabled"
	};
	return level === void 0 ? inspection : {
		...inspection,
		level
	};
}
function normalizeCategory(logger) {
	const category = logger == null ? [] : typeof logger === "string" ? [logger] : Array.isArray(logger) ? logger : logger.category;
	if (!Array.isArray(category) || category.some((part) => typeof part !== "string")) throw new TypeError("The logger must be a Logger, a string, or an array of strings.");
	return [...category];
}
function getGlobalNode(category) {
	const logger = findLogger(category);
	if (logger == null) return getDefaultNode(category);
	const ids = getConfiguredLoggerIds(logger);
	return {
		category,
		configured: ids != null,
		lowestLevel: logger.lowestLevel,
		parentSinks: logger.parentSinks,
		sinks: [...logger.sinks],
		sinkIds: ids?.sinkIds ?? logger.sinks.map(() => void 0),
		filters: [...logger.filters],
		filterIds: ids?.filterIds ?? logger.filters.map(() => void 0)
	};
}
function getScopedNode(logger, category) {
	if (logger == null) return getDefaultNode(category);
	return {
		category,
		configured: true,
		lowestLevel: logger.lowestLevel,
		parentSinks: logger.parentSinks,
		sinks: logger.sinks,
		sinkIds: logger.sinkIds ?? logger.sinks.map(() => void 0),
		filters: logger.filters,
		filterIds: logger.filterIds ?? logger.filters.map(() => void 0)
	};
}
function getDefaultNode(category) {
	return {
		category,
		configured: false,
		lowestLevel: "trace",
		parentSinks: "inherit",
		sinks: [],
		sinkIds: [],
		filters: [],
		filterIds: []
	};
}
function collectSinkPaths(nodes, index, gates) {
	const node = nodes[index];
	const nodeGates = [...gates, node];
	const paths = [];
	if (index > 0 && node.parentSinks === "inherit") paths.push(...collectSinkPaths(nodes, index - 1, nodeGates));
	else if (index > 0 && node.parentSinks === "forward") for (const path of collectForwardedSinkPaths(nodes, index - 1)) paths.push({
		...path,
		gates: nodeGates
	});
	for (let i = 0; i < node.sinks.length; i++) paths.push({
		node,
		index: i,
		gates: nodeGates
	});
	return paths;
}
function collectForwardedSinkPaths(nodes, index) {
	const node = nodes[index];
	const paths = index > 0 && node.parentSinks !== "override" ? collectForwardedSinkPaths(nodes, index - 1) : [];
	for (let i = 0; i < node.sinks.length; i++) paths.push({
		node,
		index: i,
		gates: []
	});
	return paths;
}
function getInheritanceBoundary(nodes) {
	for (let i = nodes.length - 1; i > 0; i--) if (nodes[i].parentSinks === "override") return {
		category: [...nodes[i].category],
		reason: "override"
	};
	return {
		category: [],
		reason: "root"
	};
}
function getHighestLevel(levels) {
	let highest = "trace";
	for (const level of levels) {
		if (level === null) return null;
		if (compareLogLevel(level, highest) > 0) highest = level;
	}
	return highest;
}

//#endregion
export { inspectLogger };
