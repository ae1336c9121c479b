// The data plane: served models by name/version, each behind its scheduler, with metrics. Adapters call only this.
import { artifactBytes, readBundle } from "../bundle/bundle.ts";
import {
	encodeColumns,
	encodeRecords,
	formatRowError,
	outputsToRecords,
	type Row,
} from "../codec/table.ts";
import { warmupRows } from "../codec/warmup.ts";
import { loadBundle, type Model } from "../model.ts";
import { Metrics } from "../monitor/metrics.ts";
import {
	invalidInput,
	MlshipError,
	toMlshipError,
} from "../protocol/errors.ts";
import { didYouMean, listNames } from "../protocol/suggest.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Tensor,
} from "../protocol/types.ts";
import {
	assertEntity,
	type ChangeEvent,
	type ModelStore,
	parseRef,
} from "../registry/types.ts";
import { SharedOnnxPool } from "../runtime/onnx/shared-pool.ts";
import { defaultWorkers } from "../runtime/pool.ts";
import type { LoadOptions } from "../runtime/types.ts";
import type { Batching } from "./scheduler.ts";
import type {
	DataPlane,
	FamilyInfo,
	InferOptions,
	ModelInfo,
	ModelState,
	PredictResult,
	RepositoryEntry,
} from "./types.ts";

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
}

/** A hot update applied, or refused (the old version keeps serving). */
export interface ModelEvent {
	type: "updated" | "update_failed";
	model: string;
	from?: string | undefined;
	to?: string | undefined;
	error?: string;
}

interface Served {
	model: Model;
	version: string;
	outputs: string[];
	ok: { inc(): void };
	latency: { observe(v: number): void };
	/** The `version` label of its metrics ("entity" for family members, to keep series bounded). */
	metricVersion: string;
	/** Estimated memory of the loaded instance (see estimateBytes). */
	bytes: number;
}

interface Entry {
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
}

/** A per-entity family: which entities have a model (kept current by the change feed) and the loaded members. */
interface Family {
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

/** How long a member that failed to load answers with that failure before it is tried again. */
const RETRY_FAILED_MS = 5_000;

class ServingDataPlane implements DataPlane {
	readonly #opts: DataPlaneOptions;
	readonly #entries = new Map<string, Entry>();
	readonly #metrics: Metrics;
	#closing = false;
	#storeOpen: Promise<ModelStore> | undefined;
	#storeNow: ModelStore | undefined;
	#unwatch: (() => void) | undefined;
	/** Worker threads shared by every served model that does not size its own pool (started on the first load). */
	#shared: Promise<SharedOnnxPool> | undefined;
	/** Entries with a registry refresh running, and whether another change arrived meanwhile. */
	readonly #refreshing = new Map<Entry, boolean>();

	constructor(opts: DataPlaneOptions) {
		this.#opts = opts;
		this.#metrics = new Metrics(opts.processMetrics ?? true);
		for (const spec of opts.models) {
			if (this.#entries.has(spec.name))
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
			this.#entries.set(spec.name, e);
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
		if (this.#closing) return false;
		// Lazy servers load on demand: ready unless a model is known to be broken.
		if (this.#opts.lazy) {
			for (const e of this.#entries.values())
				if (e.state === "UNAVAILABLE") return false;
			return true;
		}
		for (const e of this.#entries.values())
			if (e.state !== "READY") return false;
		return true;
	}

	#entry(name: string): Entry {
		const e = this.#entries.get(name);
		if (!e)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`unknown model '${name}'${didYouMean(name, this.#entries.keys())} (serving: ${listNames(this.#entries.keys())})`,
			);
		return e;
	}

	/** Every entry: the named models and the loaded (or loading) members of families. */
	*#all(): Generator<Entry> {
		for (const e of this.#entries.values()) {
			yield e;
			if (e.family) yield* e.family.members.values();
		}
	}

	/** The serving instance of an entry, or a typed error saying why there is none. */
	#served(e: Entry, version: string | undefined): Served {
		const s = e.served;
		const name = label(e);
		if (!s || e.state !== "READY")
			throw new MlshipError(
				"MLSHIP_UNAVAILABLE",
				`model '${name}' is not ready (state ${e.state}${e.reason ? `: ${e.reason}` : ""})`,
			);
		if (version !== undefined && version !== s.version)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' has no version '${version}' (serving: ${s.version})`,
			);
		return s;
	}

	/**
	 * Which entry serves a request: the named model; for a per-entity family, the entity's member when the
	 * registry has a model for it, else the family's default (when fallback is on).
	 */
	async #route(name: string, entity: string | undefined): Promise<Entry> {
		const e = this.#entry(name);
		const f = e.family;
		if (!f) {
			if (entity !== undefined)
				throw invalidInput(
					`model '${name}' is not a per-entity family; drop the entity '${entity}' (or serve it with an entity key)`,
				);
			return e;
		}
		if (entity === undefined) {
			if (!f.fallback)
				throw invalidInput(
					`model '${name}' serves one model per ${f.key}: name the entity (header x-mlship-entity, parameter '${f.key}', or a '${f.key}' feature)`,
				);
			return e;
		}
		try {
			assertEntity(entity);
		} catch (err) {
			throw invalidInput(`${f.key}: ${(err as Error).message}`);
		}
		const index = await this.#index(f);
		if (!index.has(entity)) {
			if (!f.fallback)
				throw new MlshipError(
					"MLSHIP_MODEL_NOT_FOUND",
					`model '${name}' has no model for ${f.key} '${entity}' (and no fallback to its default)`,
				);
			return e;
		}
		let m = f.members.get(entity);
		if (!m) {
			m = {
				spec: { name, source: `${f.registryName}#${entity}` },
				state: "UNLOADED",
				reason: "loads on its first request",
				served: undefined,
				loading: undefined,
				lastUsed: 0,
				entity,
			};
			f.members.set(entity, m);
		}
		return m;
	}

	/** The family's entity index, read from the registry on first use (the change feed keeps it current). */
	async #index(f: Family): Promise<Map<string, number>> {
		if (f.index) return f.index;
		f.indexLoad ??= (async () => {
			try {
				const list = await (await this.#store()).entities(f.registryName);
				f.index = new Map(list.map((x) => [x.entity, x.version]));
				return f.index;
			} finally {
				f.indexLoad = undefined;
			}
		})();
		return f.indexLoad;
	}

	/**
	 * The serving instance of an entry for a request: loads a lazy, evicted or family-member model on first use
	 * (concurrent first requests share one load) and marks it recently used.
	 */
	async #use(e: Entry, version: string | undefined): Promise<Served> {
		if (
			!e.served &&
			(this.#opts.lazy || e.entity !== undefined) &&
			!this.#closing
		) {
			if (e.failedAt !== undefined && Date.now() - e.failedAt < RETRY_FAILED_MS)
				throw new MlshipError(
					"MLSHIP_UNAVAILABLE",
					`model '${label(e)}' failed to load: ${e.reason}`,
				);
			await this.#load(e);
		}
		e.lastUsed = performance.now();
		return this.#served(e, version);
	}

	modelMetadata(name: string, version?: string): ModelInfo {
		const e = this.#entry(name);
		const s = this.#served(e, version);
		const info: ModelInfo = {
			name,
			versions: [s.version],
			version: s.version,
			platform: "onnx_onnxv1",
			inputs: s.model.signature.inputs,
			outputs: s.model.signature.outputs,
			features: s.model.features,
			state: e.state,
		};
		if (s.model.manifest.labels) info.labels = s.model.manifest.labels;
		return info;
	}

	modelReady(name: string, version?: string): boolean {
		const e = this.#entry(name);
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
		const family = this.#entries.get(name)?.family;
		let inputs = request.inputs;
		let entity = opts.entity;
		if (family) {
			const picked = entityOfRequest(family.key, request, entity);
			entity = picked.entity;
			inputs = picked.inputs;
		}
		const outputs = request.outputs?.map((o) => o.name) ?? [];
		const { s, outs, e } = await this.#retrying(name, entity, version, (s) =>
			this.#run(s, inputs, outputs.length > 0 ? outputs : s.outputs, opts),
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
			const e = await this.#route(name, entity);
			const s = await this.#use(e, version);
			try {
				return { s, outs: await run(s), e };
			} catch (err) {
				if (
					attempt > 0 ||
					this.#closing ||
					(err as MlshipError).code !== "MLSHIP_CLOSED"
				)
					throw err;
			}
		}
	}

	async predict(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions = {},
	): Promise<PredictResult> {
		const family = this.#entries.get(name)?.family;
		if (family) return this.#predictFamily(name, family, version, input, opts);
		const { s, outs } = await this.#retrying(name, undefined, version, (s) =>
			this.#run(s, encodeTable(s, input), s.outputs, opts),
		);
		return {
			model_name: name,
			model_version: s.version,
			predictions: outputsToRecords(s.model.plan, outs),
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
		const groups = new Map<string | undefined, number[]>();
		for (let i = 0; i < rows.length; i++) {
			const v = (rows[i] as Row)[f.key];
			let entity = opts.entity;
			if (v !== undefined && v !== null) {
				if (typeof v !== "string" && typeof v !== "number")
					throw invalidInput(
						`row ${i + 1}, column '${f.key}': the entity must be a string or number, got ${typeof v}`,
					);
				entity = String(v);
			}
			const g = groups.get(entity);
			if (g) g.push(i);
			else groups.set(entity, [i]);
		}
		const out: Row[] = new Array(rows.length);
		const versions = new Set<string>();
		await Promise.all(
			[...groups].map(async ([entity, idx]) => {
				const part = idx.map((i) => rows[i] as Row);
				const { s, outs, e } = await this.#retrying(
					name,
					entity,
					version,
					(s) => this.#run(s, encodeTable(s, part), s.outputs, opts),
				);
				versions.add(s.version);
				const preds = outputsToRecords(s.model.plan, outs);
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

	async #run(
		s: Served,
		inputs: Tensor[],
		outputs: string[],
		opts: InferOptions,
	): Promise<Tensor[]> {
		const started = performance.now();
		try {
			const outs = await s.model.predictTensors(
				inputs,
				outputs,
				opts.timeoutMs,
			);
			s.ok.inc();
			s.latency.observe((performance.now() - started) / 1000);
			return outs;
		} catch (err) {
			const e = toMlshipError(err);
			const outcome =
				e.status < 500
					? "invalid"
					: e.code === "MLSHIP_OVERLOADED"
						? "overloaded"
						: e.code === "MLSHIP_TIMEOUT"
							? "timeout"
							: e.code === "MLSHIP_CLOSED"
								? "retried"
								: "error";
			this.#metrics.requests.inc({
				model: s.model.name,
				version: s.metricVersion,
				outcome,
			});
			throw e;
		}
	}

	async entities(name: string): Promise<FamilyInfo> {
		const f = this.#entry(name).family;
		if (!f)
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' is not a per-entity family (serve it with an entity key)`,
			);
		const index = await this.#index(f);
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
		for (const e of this.#all()) {
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
		return this.#load(this.#entry(name));
	}

	#load(e: Entry): Promise<void> {
		if (this.#closing)
			return Promise.reject(
				new MlshipError("MLSHIP_UNAVAILABLE", "the server is shutting down"),
			);
		if (e.loading) return e.loading;
		if (!e.served) e.state = "LOADING";
		const p = (async () => {
			try {
				const next = await this.#open(e);
				const old = e.served;
				e.served = next;
				e.state = "READY";
				e.reason = "";
				delete e.failedAt;
				this.#metrics.loaded.set(this.#countLoaded());
				this.#metrics.loads.inc({ model: e.spec.name });
				e.lastUsed = performance.now();
				void this.#evict(e);
				// Emitted at the swap itself: from here on new requests get the new version.
				if (old)
					this.#emit({
						type: "updated",
						model: label(e),
						from: old.version,
						to: next.version,
					});
				if (old) await this.#retire(old);
			} catch (err) {
				const m = toMlshipError(err);
				if (!e.served) {
					e.state = "UNAVAILABLE";
					e.failedAt = Date.now();
				}
				e.reason = m.message;
				throw m;
			} finally {
				e.loading = undefined;
			}
		})();
		e.loading = p;
		return p;
	}

	async #open(e: Entry): Promise<Served> {
		const spec = e.spec;
		const load: LoadOptions = { ...this.#opts.load };
		let version = "1";
		let bundle: Awaited<ReturnType<typeof readBundle>>;
		if (!isRegistryRef(spec.source) || (await exists(spec.source)))
			bundle = await readBundle(spec.source);
		else {
			const store = await this.#store();
			const v = await store.get(spec.source);
			version = String(v.version);
			bundle = await store.openBundle(v);
		}
		// Every model runs on the server's shared worker threads (one per core ÷ intra-op threads), so a hot swap
		// or a lazy load adds sessions, not threads; a bundle that sizes its own pool keeps a dedicated one.
		const ex = bundle.manifest.executor;
		if (ex?.workers === undefined && ex?.intra_op_threads === undefined) {
			this.#shared ??= SharedOnnxPool.start(
				load.workers,
				load.intraOpThreads ?? 1,
			).catch((err: unknown) => {
				this.#shared = undefined; // the next load tries again
				throw err;
			});
			load.shared = await this.#shared;
		}
		// Members of a family share one label value: thousands of entity versions must not become series.
		const metricVersion = e.entity !== undefined ? "entity" : version;
		// Labelled children are looked up once: prom-client hashes label objects on every call otherwise.
		const m = this.#metrics;
		const batchSize = m.batchSize.labels(spec.name, metricVersion);
		const computeTime = m.computeTime.labels(spec.name, metricVersion);
		const queueTime = m.queueTime.labels(spec.name, metricVersion);
		const queueDepth = m.queueDepth.labels(spec.name, metricVersion);
		const model = await loadBundle(bundle, {
			mode: "auto",
			...load,
			name: spec.name,
			version: Number(version),
			batching: this.#opts.batching,
			batchingOverride: this.#opts.batchingOverride,
			observer: {
				batch: (rows, secs) => {
					batchSize.observe(rows);
					computeTime.observe(secs);
				},
				request: (secs) => queueTime.observe(secs),
				depth: (n) => queueDepth.set(n),
			},
		});
		let warmupProblem: string | undefined;
		try {
			warmupProblem = await warmUp(model);
		} catch (err) {
			await model.close();
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`version ${version} of '${label(e)}' failed its warm-up: ${toMlshipError(err).message}`,
				{ cause: err },
			);
		}
		if (warmupProblem !== undefined) {
			m.warmupFailures.inc({ model: spec.name });
			process.emitWarning(
				`mlship: version ${version} of '${label(e)}' serves, but its warm-up on a synthesized row failed: ${warmupProblem}`,
			);
		}
		return {
			model,
			version,
			metricVersion,
			ok: m.requests.labels(spec.name, metricVersion, "ok"),
			latency: m.latency.labels(spec.name, metricVersion),
			outputs: model.signature.outputs.map((o) => o.name),
			bytes: estimateBytes(bundle, load, load.shared?.workers),
		};
	}

	/** The registry, opened once (registry references only). */
	#store(): Promise<ModelStore> {
		const reg = this.#opts.registry;
		if (typeof reg === "object") return Promise.resolve(reg);
		this.#storeOpen ??= import("../registry/open.ts")
			.then((m) => m.openRegistry(reg))
			.then((store) => {
				this.#storeNow = store;
				return store;
			});
		return this.#storeOpen;
	}

	/**
	 * Follows the registry: when a served reference (an alias, or a bare name = newest version) resolves to
	 * another version, that version is loaded, warmed up and swapped in; the old one finishes its in-flight
	 * requests and is unloaded. A version that fails to load or warm up is not swapped in. Families also keep
	 * their entity index current and hot-update loaded members.
	 */
	async follow(): Promise<void> {
		const refs = [...this.#entries.values()].filter((e) =>
			isRegistryRef(e.spec.source),
		);
		if (refs.length === 0 || this.#unwatch) return;
		const store = await this.#store();
		this.#unwatch = store.watch((ev) => {
			for (const e of refs) {
				const f = e.family;
				const registryName = f?.registryName ?? parseRef(e.spec.source).name;
				if (registryName !== ev.name) continue;
				if (f && ev.entity !== undefined) {
					void this.#entityChanged(f, ev.entity, ev.type, ev.version);
					// Only an alias moved onto an entity version can change what the default means.
					if (ev.alias === undefined) continue;
				}
				if (f && ev.type === "deleted" && ev.version === undefined) {
					f.index = undefined;
					for (const m of f.members.values()) void this.#refresh(m);
				}
				void this.#refresh(e);
			}
		});
		await Promise.all(
			refs.map((e) =>
				e.family ? this.#index(e.family).catch(() => {}) : undefined,
			),
		);
	}

	/** Keeps a family's index current for one entity and hot-updates its member when loaded. */
	async #entityChanged(
		f: Family,
		entity: string,
		type: ChangeEvent["type"],
		version: number | undefined,
	): Promise<void> {
		if (f.index) {
			if (type === "registered" && version !== undefined)
				f.index.set(entity, Math.max(version, f.index.get(entity) ?? 0));
			else if (type === "archived" || type === "deleted") {
				try {
					const v = await (await this.#store()).get({
						name: f.registryName,
						entity,
					});
					f.index.set(entity, v.version);
				} catch (err) {
					if (toMlshipError(err).code === "MLSHIP_MODEL_NOT_FOUND")
						f.index.delete(entity);
				}
			}
		}
		const m = f.members.get(entity);
		if (!m) return;
		// A load in progress may be reading the old version: check again once it is done.
		if (m.loading)
			void m.loading.then(
				() => this.#refresh(m),
				() => {},
			);
		else if (m.served) void this.#refresh(m);
		// Not loaded (failed earlier): forget it, so the next request loads the new version at once.
		else f.members.delete(entity);
	}

	async #refresh(e: Entry): Promise<void> {
		if (this.#refreshing.has(e)) {
			this.#refreshing.set(e, true);
			return;
		}
		const name = label(e);
		this.#refreshing.set(e, false);
		try {
			do {
				this.#refreshing.set(e, false);
				if (this.#closing || e.state === "UNLOADED") return;
				const from = e.served?.version;
				let to: string;
				try {
					to = String((await (await this.#store()).get(e.spec.source)).version);
				} catch (err) {
					e.reason = `registry: ${toMlshipError(err).message}; still serving version ${from ?? "none"}`;
					this.#emit({
						type: "update_failed",
						model: name,
						from,
						error: e.reason,
					});
					continue;
				}
				if (to === from) continue;
				try {
					await this.#load(e);
					this.#metrics.updates.inc({ model: e.spec.name, outcome: "ok" });
				} catch (err) {
					this.#metrics.updates.inc({ model: e.spec.name, outcome: "failed" });
					e.reason = `update to version ${to} failed: ${toMlshipError(err).message}; still serving version ${from ?? "none"}`;
					this.#emit({
						type: "update_failed",
						model: name,
						from,
						to,
						error: e.reason,
					});
				}
			} while (this.#refreshing.get(e));
		} finally {
			this.#refreshing.delete(e);
		}
	}

	#emit(ev: ModelEvent): void {
		this.#opts.onEvent?.(ev);
	}

	async #retire(s: Served): Promise<void> {
		await s.model.close();
	}

	#countLoaded(): number {
		let n = 0;
		for (const e of this.#all()) if (e.served) n++;
		return n;
	}

	#loadedBytes(): number {
		let n = 0;
		for (const e of this.#all()) if (e.served) n += e.served.bytes;
		return n;
	}

	/**
	 * Unloads least recently used models while more than maxLoadedModels are loaded or their estimated memory
	 * passes memoryBudget (never `keep`, never one that is loading). Evicted family members are forgotten.
	 */
	async #evict(keep: Entry): Promise<void> {
		const max = this.#opts.maxLoadedModels ?? 0;
		const budget = this.#opts.memoryBudget ?? 0;
		if (max <= 0 && budget <= 0) return;
		const retiring: Promise<void>[] = [];
		let count = this.#countLoaded();
		let bytes = this.#loadedBytes();
		while ((max > 0 && count > max) || (budget > 0 && bytes > budget)) {
			let lru: Entry | undefined;
			for (const e of this.#all())
				if (
					e !== keep &&
					e.served &&
					!e.loading &&
					(!lru || e.lastUsed < lru.lastUsed)
				)
					lru = e;
			if (!lru) break;
			const s = lru.served as Served;
			lru.served = undefined;
			lru.state = "UNLOADED";
			lru.reason = `evicted (least recently used, ${max > 0 && count > max ? "max_loaded_models" : "memory_budget"}); loads again on its next request`;
			count--;
			bytes -= s.bytes;
			if (lru.entity !== undefined)
				this.#entries.get(lru.spec.name)?.family?.members.delete(lru.entity);
			this.#metrics.evictions.inc({ model: lru.spec.name });
			retiring.push(this.#retire(s));
		}
		this.#metrics.loaded.set(count);
		this.#metrics.loadedBytes.set(bytes);
		await Promise.all(retiring);
	}

	async unload(name: string): Promise<void> {
		const e = this.#entry(name);
		const all = [e, ...(e.family?.members.values() ?? [])];
		e.family?.members.clear();
		await Promise.all(
			all.map(async (x) => {
				if (x.loading) await x.loading.catch(() => {});
				const s = x.served;
				x.served = undefined;
				x.state = "UNLOADED";
				x.reason = "unloaded by request";
				if (s) await this.#retire(s);
			}),
		);
		this.#metrics.loaded.set(this.#countLoaded());
	}

	registry(): { available: boolean; reason?: string } | undefined {
		const reg = this.#opts.registry;
		return (typeof reg === "object" ? reg : this.#storeNow)?.health();
	}

	async metrics(): Promise<{ contentType: string; body: string }> {
		const h = this.registry();
		if (h) this.#metrics.registryAvailable.set(h.available ? 1 : 0);
		this.#metrics.loadedBytes.set(this.#loadedBytes());
		return {
			contentType: this.#metrics.registry.contentType,
			body: await this.#metrics.registry.metrics(),
		};
	}

	async close(): Promise<void> {
		this.#closing = true;
		this.#unwatch?.();
		await Promise.all(
			[...this.#all()].map(async (e) => {
				if (e.loading) await e.loading.catch(() => {});
				const s = e.served;
				e.served = undefined;
				e.state = "UNLOADED";
				if (s) await this.#retire(s);
			}),
		);
		if (this.#shared) await (await this.#shared).close();
		if (this.#storeOpen) await (await this.#storeOpen).close();
	}
}

/** How a member or model is named in messages: `name` or `name#entity`. */
function label(e: Entry): string {
	return e.entity !== undefined ? `${e.spec.name}#${e.entity}` : e.spec.name;
}

function newFamily(spec: ModelSpec): Family {
	if (!isRegistryRef(spec.source) || parseRef(spec.source).entity !== undefined)
		throw new MlshipError(
			"MLSHIP_INVALID_ARGUMENT",
			`model '${spec.name}': a per-entity family needs a registry reference as its default (name or name@alias), got '${spec.source}'`,
		);
	return {
		key: spec.entityKey as string,
		registryName: parseRef(spec.source).name,
		fallback: spec.entityFallback ?? true,
		index: undefined,
		indexLoad: undefined,
		members: new Map(),
	};
}

/**
 * The entity of an OIP request to a family: the transport's (header), else `parameters.entity` or
 * `parameters[key]`, else an input tensor named `key` that the model does not read (one value for the whole
 * request; it is removed from the inputs).
 */
function entityOfRequest(
	key: string,
	request: InferenceRequest,
	fromTransport: string | undefined,
): { entity: string | undefined; inputs: Tensor[] } {
	let entity = fromTransport;
	const p = request.parameters;
	for (const k of ["entity", key]) {
		const v = p?.[k];
		if (entity === undefined && v !== undefined && v !== null) {
			if (typeof v !== "string" && typeof v !== "number")
				throw invalidInput(
					`parameters.${k}: the entity must be a string or number`,
				);
			entity = String(v);
		}
	}
	const t = request.inputs.find((x) => x.name === key);
	if (!t) return { entity, inputs: request.inputs };
	const values = Array.from(t.data as ArrayLike<unknown>, (v) =>
		v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v),
	);
	const first = values[0];
	if (first === undefined || values.some((v) => v !== first))
		throw invalidInput(
			`input '${key}': one infer request is served by one entity's model, but it holds ${new Set(values).size} different entities; send one request per entity, or records to the predict route (grouped by '${key}')`,
		);
	if (entity !== undefined && entity !== first)
		throw invalidInput(
			`input '${key}' says entity '${first}' but the request names '${entity}'`,
		);
	return { entity: first, inputs: request.inputs.filter((x) => x !== t) };
}

/** Records or columns encoded by a model's table plan; the first bad row is a 400 naming row and column. */
function encodeTable(
	s: Served,
	input: Row[] | Record<string, unknown[]>,
): Tensor[] {
	if (Array.isArray(input)) {
		if (input.length === 0)
			throw invalidInput("empty input: no rows to predict");
		const r = encodeRecords(s.model.plan, input);
		if (r.errors[0]) throw invalidInput(formatRowError(r.errors[0]));
		return r.tensors;
	}
	if (input === null || typeof input !== "object")
		throw invalidInput("expected records (a list of objects) or columns");
	const r = encodeColumns(s.model.plan, input);
	if (r.rows === 0) throw invalidInput("empty input: no rows to predict");
	if (r.errors[0]) throw invalidInput(formatRowError(r.errors[0]));
	return r.tensors;
}

/** Columns (`{col: [v…]}`) as records. */
function columnsToRows(cols: Record<string, unknown[]>): Row[] {
	if (cols === null || typeof cols !== "object")
		throw invalidInput("expected records (a list of objects) or columns");
	const names = Object.keys(cols);
	const n = Math.max(
		0,
		...names.map((c) =>
			Array.isArray(cols[c]) ? (cols[c] as unknown[]).length : 0,
		),
	);
	const rows: Row[] = [];
	for (let i = 0; i < n; i++) {
		const r: Row = {};
		for (const c of names) r[c] = (cols[c] as unknown[])[i];
		rows.push(r);
	}
	return rows;
}

/**
 * Estimated memory of a loaded model: ~330 KiB of JS state plus, per onnxruntime session (inline and one per
 * worker), ~40 KiB + 5.6 × the artifact's bytes. The per-session part is fitted to RSS growth over 200 loads of
 * each fixture (linear, GBDT, random forest, MLP); the base to bench/lifecycle's RSS growth per model over 1,000
 * loaded family members (459 KiB for the 532-byte iris model), so a budget errs on the safe side.
 */
function estimateBytes(
	bundle: Awaited<ReturnType<typeof readBundle>>,
	load: LoadOptions,
	sharedWorkers: number | undefined,
): number {
	const ex = bundle.manifest.executor ?? {};
	const mode = load.mode ?? ex.mode ?? "auto";
	const workers =
		sharedWorkers ??
		load.workers ??
		ex.workers ??
		defaultWorkers(load.intraOpThreads ?? ex.intra_op_threads ?? 1);
	const sessions =
		(mode !== "pool" ? 1 : 0) + (mode !== "inline" ? workers : 0);
	return (
		330 * 1024 + sessions * (40 * 1024 + 5.6 * artifactBytes(bundle).length)
	);
}

/** A model source that names a registry entry (not a path). */
function isRegistryRef(source: string): boolean {
	if (/^[A-Za-z0-9][A-Za-z0-9._-]*#./.test(source)) return true;
	return (
		!/[\\/]|\.(onnx|ya?ml)$/i.test(source) &&
		/^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._-]+)?$/.test(source)
	);
}

/**
 * Runs a freshly loaded model before it serves, on the rows `warmupRows` gives. Failing on the bundle's own
 * `examples` throws (the version is not swapped in); failing on a synthesized row returns why (a valid model may
 * refuse made-up values: the caller warns, counts it and serves).
 */
async function warmUp(model: Model): Promise<string | undefined> {
	const { rows, synthesized } = warmupRows(model.manifest, model.plan);
	try {
		const { tensors, errors } = encodeRecords(model.plan, rows);
		if (errors[0])
			throw invalidInput(
				`${synthesized ? "" : "bundle example "}${formatRowError(errors[0])}`,
			);
		await model.predictTensors(tensors);
	} catch (err) {
		if (!synthesized) throw err;
		return toMlshipError(err).message;
	}
}

async function exists(p: string): Promise<boolean> {
	const { stat } = await import("node:fs/promises");
	return stat(p).then(
		() => true,
		() => false,
	);
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
