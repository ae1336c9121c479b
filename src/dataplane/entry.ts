// What the data plane's parts share: the options, and an entry per served model (its loaded instance and state).
import type { ModelStore } from "../registry/types.ts";
import type { LoadOptions } from "../runtime/types.ts";
import type {
	InstanceObserver,
	ModelInstance,
	PredictHook,
} from "./instance.ts";
import type { Batching } from "./scheduler.ts";
import type { ModelState } from "./types.ts";

/** A model to serve: `source` is a bundle directory, an .onnx file, or a registry reference (name, name@3, name@alias). */
export interface ModelSpec {
	name: string;
	source: string;
	/**
	 * Serve a per-entity family: each request names an entity (header `x-mlship-entity`, request parameter `entity`
	 * or this key, or a feature/input of this name) and is served by that entity's newest registered version
	 * (`registry-name#entity`). `source` (a registry reference) is the family's default model.
	 */
	entityKey?: string;
	/** A request whose entity has no model (or names none) is served by `source` (default true); else 404. */
	entityFallback?: boolean;
}

/** Batching for every model: `batching` is the default (a bundle's own beats it), `batchingOverride` beats both. */
export type BatchingDefaults = Batching;

export interface DataPlaneOptions {
	models: ModelSpec[];
	/** Registry URI (or open store) for registry references. */
	registry?: string | ModelStore;
	batching?: BatchingDefaults;
	/** Per-server override of every model's batching (beats the bundle). */
	batchingOverride?: BatchingDefaults;
	load?: LoadOptions;
	/** Collect process metrics (CPU, memory, event loop) too. */
	processMetrics?: boolean;
	serverName?: string;
	serverVersion?: string;
	/** Load models on their first request instead of at start. */
	lazy?: boolean;
	/** Most models loaded at once; the least recently used is unloaded to make room (0 = no limit). */
	maxLoadedModels?: number;
	/** Most estimated bytes of loaded models; least recently used are unloaded to stay below (0 = no limit). */
	memoryBudget?: number;
	/** Model lifecycle events (hot updates and their failures), e.g. for logs. */
	onEvent?: (e: ModelEvent) => void;
	/** Also told of every loaded instance's batches and requests (e.g. a worker's own metrics). */
	observer?: InstanceObserver;
	/**
	 * Added to every instance the server loads (after its warm-up, so warm-ups are not seen): called after each
	 * successful prediction with its request id, entity, caller, inputs, outputs and latency (payload logs, feedback).
	 */
	hooks?: PredictHook[];
}

/** A hot update applied, or refused (the old version keeps serving). */
export interface ModelEvent {
	type: "updated" | "update_failed";
	model: string;
	from?: string | undefined;
	to?: string | undefined;
	error?: string;
}

/** A loaded version serving an entry. */
export interface Served {
	model: ModelInstance;
	version: string;
	/** The `version` label of its metrics ("entity" for family members, to keep series bounded). */
	metricVersion: string;
}

export interface Entry {
	spec: ModelSpec;
	state: ModelState;
	reason: string;
	served: Served | undefined;
	loading: Promise<void> | undefined;
	/** performance.now() of the last request, for LRU eviction. */
	lastUsed: number;
	/** The entity, for a member of a per-entity family (spec.source is then `name#entity`). */
	entity?: string;
	/** The family, for the default entry of a per-entity family. */
	family?: Family;
	/** Date.now() of the last failed load, so a broken model is not reloaded on every request. */
	failedAt?: number;
	/** Unloaded by max_loaded_models or memory_budget: loads again on its next request, lazy or not. */
	evicted?: boolean;
}

/** A per-entity family: which entities have a model (kept current by the change feed) and the loaded members. */
export interface Family {
	key: string;
	/** The registry name the entities belong to. */
	registryName: string;
	fallback: boolean;
	/** entity → newest active version; undefined until read from the registry. */
	index: Map<string, number> | undefined;
	indexLoad: Promise<Map<string, number>> | undefined;
	/** Members loaded, loading or recently failed (evicted members are dropped). */
	members: Map<string, Entry>;
}

/** How a member or model is named in messages: `name` or `name#entity`. */
export function label(e: Entry): string {
	return e.entity !== undefined ? `${e.spec.name}#${e.entity}` : e.spec.name;
}

/** A model source that names a registry entry (not a path). */
export function isRegistryRef(source: string): boolean {
	if (/^[A-Za-z0-9][A-Za-z0-9._-]*#./.test(source)) return true;
	return (
		!/[\\/]|\.(onnx|ya?ml)$/i.test(source) &&
		/^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._-]+)?$/.test(source)
	);
}
