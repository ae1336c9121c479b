// The data plane facade: served models by name and version, behind their instances. Adapters call only this.
import { featureSpecs } from "../codec/feature-specs.ts";
import type { Row } from "../codec/table.ts";
import { Metrics } from "../monitor/metrics.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type { InferenceRequest, InferenceResponse } from "../protocol/types.ts";
import { parseRef } from "../registry/types.ts";
import { ModelCache } from "./cache.ts";
import {
	columnsToRows,
	EntityRouter,
	entityOfRequest,
	groupByEntity,
	newFamily,
} from "./entities.ts";
import type { DataPlaneOptions, Entry, Family, Served } from "./entry.ts";
import { RegistryFollower } from "./follower.ts";
import type { ModelLease, ModelProvider } from "./instance.ts";
import type {
	DataPlane,
	ExplainResponse,
	FamilyInfo,
	InferOptions,
	ModelInfo,
	PredictResult,
	RepositoryEntry,
} from "./types.ts";

export type {
	BatchingDefaults,
	DataPlaneOptions,
	ModelEvent,
	ModelSpec,
} from "./entry.ts";

/**
 * Serves models by name: the entity router picks the entry, the model cache loads it (and evicts), the registry
 * follower hot-swaps it, and its model instance validates, batches and runs the request.
 */
class ServingDataPlane implements DataPlane {
	readonly #opts: DataPlaneOptions;
	readonly #metrics: Metrics;
	readonly #cache: ModelCache;
	readonly #router: EntityRouter;
	readonly #follower: RegistryFollower;

	constructor(opts: DataPlaneOptions) {
		this.#opts = opts;
		this.#metrics = new Metrics(opts.processMetrics ?? true);
		this.#cache = new ModelCache(opts, this.#metrics);
		this.#router = new EntityRouter(this.#cache);
		this.#follower = new RegistryFollower(
			this.#cache,
			this.#router,
			this.#metrics,
		);
		for (const spec of opts.models) {
			if (this.#cache.entries.has(spec.name))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`model name '${spec.name}' is given twice`,
				);
			const e: Entry = {
				spec,
				state: "UNLOADED",
				reason: opts.lazy ? "loads on its first request" : "",
				served: undefined,
				loading: undefined,
				lastUsed: 0,
			};
			if (spec.entityKey !== undefined) e.family = newFamily(spec);
			this.#cache.entries.set(spec.name, e);
		}
	}

	metadata() {
		return {
			name: this.#opts.serverName ?? "mlship",
			version: this.#opts.serverVersion ?? "0.1.0",
			// Transport-specific extensions (binary_tensor_data on REST) are added by the transport.
			extensions: ["model_repository"],
		};
	}

	live(): boolean {
		return true;
	}

	ready(): boolean {
		if (this.#cache.closing) return false;
		const entries = this.#cache.entries.values();
		// Lazy servers load on demand: ready unless a model is known to be broken.
		if (this.#opts.lazy) {
			for (const e of entries) if (e.state === "UNAVAILABLE") return false;
			return true;
		}
		// An evicted model reloads on demand (a failed reload makes it UNAVAILABLE, which does unready).
		for (const e of entries)
			if (e.state !== "READY" && !(e.evicted && e.state !== "UNAVAILABLE"))
				return false;
		return true;
	}

	modelMetadata(name: string, version?: string): ModelInfo {
		const e = this.#cache.entry(name);
		const s = this.#cache.served(e, version);
		const info: ModelInfo = {
			name,
			versions: [s.version],
			version: s.version,
			platform: s.model.platform,
			inputs: s.model.signature.inputs,
			outputs: s.model.signature.outputs,
			features: s.model.features,
			featureSpecs: featureSpecs(s.model.manifest, s.model.plan),
			state: e.state,
		};
		if (s.model.manifest.labels) info.labels = s.model.manifest.labels;
		if (s.model.manifest.task) info.task = s.model.manifest.task;
		return info;
	}

	modelReady(name: string, version?: string): boolean {
		const e = this.#cache.entry(name);
		if (version !== undefined && e.served && version !== e.served.version)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' has no version '${version}' (serving: ${e.served.version})`,
			);
		if (e.state !== "READY" || !e.served) return false;
		return version === undefined || version === e.served.version;
	}

	async infer(
		name: string,
		version: string | undefined,
		request: InferenceRequest,
		opts: InferOptions = {},
	): Promise<InferenceResponse> {
		const family = this.#cache.entries.get(name)?.family;
		let inputs = request.inputs;
		let entity = opts.entity;
		if (family) {
			const picked = entityOfRequest(family.key, request, entity);
			entity = picked.entity;
			inputs = picked.inputs;
		}
		const outputs = request.outputs?.map((o) => o.name) ?? [];
		const { s, outs, e } = await this.#retrying(name, entity, version, (s) =>
			s.model.predictTensors(inputs, outputs, opts.timeoutMs),
		);
		const res: InferenceResponse = {
			model_name: name,
			model_version: s.version,
			outputs: outs,
		};
		if (request.id !== undefined) res.id = request.id;
		if (family && entity !== undefined)
			res.parameters = {
				entity,
				entity_fallback: e.entity === undefined,
			};
		return res;
	}

	/**
	 * Routes, loads and runs; a request that met its model in the instant it was swapped out or evicted
	 * (MLSHIP_CLOSED) is routed again once, so swaps and evictions never fail a request.
	 */
	async #retrying<T>(
		name: string,
		entity: string | undefined,
		version: string | undefined,
		run: (s: Served) => Promise<T>,
	): Promise<{ s: Served; outs: T; e: Entry }> {
		for (let attempt = 0; ; attempt++) {
			const e = await this.#router.route(name, entity);
			const s = await this.#cache.use(e, version);
			try {
				return { s, outs: await run(s), e };
			} catch (err) {
				if (
					attempt > 0 ||
					this.#cache.closing ||
					(err as MlshipError).code !== "MLSHIP_CLOSED"
				)
					throw err;
			}
		}
	}

	async explain(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: { top?: number; entity?: string } = {},
	): Promise<ExplainResponse> {
		const { s, outs } = await this.#retrying(name, opts.entity, version, (s) =>
			s.model.explain(input, opts.top !== undefined ? { top: opts.top } : {}),
		);
		return { model_name: name, model_version: s.version, ...outs };
	}

	async predict(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions = {},
	): Promise<PredictResult> {
		const family = this.#cache.entries.get(name)?.family;
		if (family) return this.#predictFamily(name, family, version, input, opts);
		const { s, outs } = await this.#retrying(name, undefined, version, (s) =>
			s.model.predictTensors(
				s.model.encodeTable(input, false),
				undefined,
				opts.timeoutMs,
			),
		);
		return {
			model_name: name,
			model_version: s.version,
			predictions: s.model.decodeRecords(outs),
		};
	}

	/**
	 * Records for a per-entity family: rows are grouped by their entity (the `key` feature, else the request's
	 * entity), each group is scored by its entity's model (or the default), and predictions come back in input
	 * order with `entity` and `model_version` on every row.
	 */
	async #predictFamily(
		name: string,
		f: Family,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions,
	): Promise<PredictResult> {
		const rows = Array.isArray(input) ? input : columnsToRows(input);
		if (rows.length === 0)
			throw invalidInput("empty input: no rows to predict");
		const groups = groupByEntity(rows, f.key, opts.entity);
		const out: Row[] = new Array(rows.length);
		const versions = new Set<string>();
		await Promise.all(
			[...groups].map(async ([entity, idx]) => {
				const part = idx.map((i) => rows[i] as Row);
				const { s, outs, e } = await this.#retrying(
					name,
					entity,
					version,
					(s) =>
						s.model.predictTensors(
							s.model.encodeTable(part, false),
							undefined,
							opts.timeoutMs,
						),
				);
				versions.add(s.version);
				const preds = s.model.decodeRecords(outs);
				const own = e.entity !== undefined;
				for (let j = 0; j < idx.length; j++) {
					const r = preds[j] as Row;
					if (entity !== undefined) r.entity = entity;
					r.entity_fallback = !own;
					r.model_version = s.version;
					out[idx[j] as number] = r;
				}
			}),
		);
		return {
			model_name: name,
			model_version:
				versions.size === 1 ? ([...versions][0] as string) : "mixed",
			predictions: out,
		};
	}

	async entities(name: string): Promise<FamilyInfo> {
		const f = this.#cache.entry(name).family;
		if (!f)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' is not a per-entity family (serve it with an entity key)`,
			);
		const index = await this.#router.index(f);
		return {
			name,
			key: f.key,
			fallback: f.fallback,
			entities: [...index].map(([entity, version]) => ({
				entity,
				version,
				state: f.members.get(entity)?.state ?? "UNLOADED",
			})),
		};
	}

	repositoryIndex(readyOnly = false): RepositoryEntry[] {
		const out: RepositoryEntry[] = [];
		for (const e of this.#cache.all()) {
			if (readyOnly && e.state !== "READY") continue;
			const r: RepositoryEntry = {
				name: e.spec.name,
				version: e.served?.version ?? "",
				state: e.state,
				reason: e.reason,
			};
			if (e.entity !== undefined) r.entity = e.entity;
			out.push(r);
		}
		return out;
	}

	/** Loads a model, or reloads it: the new instance is loaded first, then swapped in, then the old one drains. */
	load(name: string): Promise<void> {
		return this.#cache.load(this.#cache.entry(name));
	}

	unload(name: string): Promise<void> {
		return this.#cache.unload(name);
	}

	/** The current instance of a model, held until released (a swap waits for it); see ModelInstance.lease. */
	async lease(name: string): Promise<ModelLease> {
		return (
			await this.#retrying(name, undefined, undefined, (s) => s.model.lease())
		).outs;
	}

	/** Starts following the registry (hot updates); see RegistryFollower. */
	follow(): Promise<void> {
		return this.#follower.start();
	}

	registry(): { available: boolean; reason?: string } | undefined {
		return this.#cache.storeHealth();
	}

	async metrics(): Promise<{ contentType: string; body: string }> {
		const h = this.registry();
		if (h) this.#metrics.registryAvailable.set(h.available ? 1 : 0);
		this.#metrics.loadedBytes.set(this.#cache.loadedBytes());
		return {
			contentType: this.#metrics.registry.contentType,
			body: await this.#metrics.registry.metrics(),
		};
	}

	async close(): Promise<void> {
		this.#cache.closing = true;
		this.#follower.stop();
		await this.#cache.close();
	}
}

/**
 * Creates a data plane and loads every model. A model that fails to load is reported (state UNAVAILABLE,
 * with its reason) and the others still serve; `ready()` stays false until all are loaded.
 * @example const dp = await createDataPlane({ models: [{ name: "iris", source: "./bundles/iris" }] })
 */
export async function createDataPlane(
	opts: DataPlaneOptions,
): Promise<DataPlane & { loadErrors: MlshipError[] }> {
	const dp = new ServingDataPlane(opts);
	const loadErrors: MlshipError[] = [];
	if (!opts.lazy)
		await Promise.all(
			opts.models.map((m) =>
				dp.load(m.name).catch((e: MlshipError) => loadErrors.push(e)),
			),
		);
	await dp.follow();
	return Object.assign(dp, { loadErrors });
}

export interface FollowOptions
	extends Pick<
		DataPlaneOptions,
		"registry" | "load" | "onEvent" | "observer"
	> {}

/** A registry model kept at the version its reference names (see followRegistryModel). */
export interface FollowedModel extends ModelProvider {
	/** The registered name. */
	readonly name: string;
	close(): Promise<void>;
}

/**
 * Loads a registry reference (`name`, `name@alias`) and follows the registry's change feed like `serve` does:
 * when the reference moves, the new version is loaded, warmed up and swapped in between leases; the old one is
 * unloaded once its last lease is released. For long-running workers (`batch work --follow`, `pg worker`).
 * @example const m = await followRegistryModel("churn@production"); const { model, release } = await m.lease();
 */
export async function followRegistryModel(
	ref: string,
	opts: FollowOptions = {},
): Promise<FollowedModel> {
	const name = parseRef(ref).name;
	const dp = new ServingDataPlane({
		models: [{ name, source: ref }],
		processMetrics: false,
		...opts,
	});
	try {
		await dp.load(name);
		await dp.follow();
	} catch (err) {
		await dp.close();
		throw err;
	}
	return {
		name,
		lease: () => dp.lease(name),
		close: () => dp.close(),
	};
}
