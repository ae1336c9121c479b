// The data plane: served models by name/version, each behind its scheduler, with metrics. Adapters call only this.
import { readBundle } from "../bundle/bundle.ts";
import {
	encodeColumns,
	encodeRecords,
	formatRowError,
	outputsToRecords,
	type Row,
} from "../codec/table.ts";
import { loadBundle, type Model } from "../model.ts";
import { Metrics } from "../monitor/metrics.ts";
import {
	invalidInput,
	MlshipError,
	toMlshipError,
} from "../protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Tensor,
} from "../protocol/types.ts";
import { type ModelStore, parseRef } from "../registry/types.ts";
import type { LoadOptions } from "../runtime/types.ts";
import type { Batching } from "./scheduler.ts";
import type {
	DataPlane,
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
}

interface Entry {
	spec: ModelSpec;
	state: ModelState;
	reason: string;
	served: Served | undefined;
	loading: Promise<void> | undefined;
	/** performance.now() of the last request, for LRU eviction. */
	lastUsed: number;
}

class ServingDataPlane implements DataPlane {
	readonly #opts: DataPlaneOptions;
	readonly #entries = new Map<string, Entry>();
	readonly #metrics: Metrics;
	#closing = false;
	#storeOpen: Promise<ModelStore> | undefined;
	#storeNow: ModelStore | undefined;
	#unwatch: (() => void) | undefined;
	/** Names with a registry refresh running, and whether another change arrived meanwhile. */
	readonly #refreshing = new Map<string, boolean>();

	constructor(opts: DataPlaneOptions) {
		this.#opts = opts;
		this.#metrics = new Metrics(opts.processMetrics ?? true);
		for (const spec of opts.models) {
			if (this.#entries.has(spec.name))
				throw new MlshipError(
					"MLSHIP_INVALID_ARGUMENT",
					`model name '${spec.name}' is given twice`,
				);
			this.#entries.set(spec.name, {
				spec,
				state: "UNLOADED",
				reason: opts.lazy ? "loads on its first request" : "",
				served: undefined,
				loading: undefined,
				lastUsed: 0,
			});
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
				`unknown model '${name}'`,
			);
		return e;
	}

	/** The serving instance for name/version, or a typed error saying why there is none. */
	#served(name: string, version: string | undefined): Served {
		const e = this.#entry(name);
		const s = e.served;
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
	 * The serving instance for a request: loads a lazy or evicted model on first use (concurrent first
	 * requests share one load) and marks it recently used.
	 */
	async #ready(name: string, version: string | undefined): Promise<Served> {
		const e = this.#entry(name);
		if (!e.served && this.#opts.lazy && !this.#closing) await this.load(name);
		e.lastUsed = performance.now();
		return this.#served(name, version);
	}

	modelMetadata(name: string, version?: string): ModelInfo {
		const s = this.#served(name, version);
		const e = this.#entry(name);
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
		const s = await this.#ready(name, version);
		const outputs = request.outputs?.map((o) => o.name) ?? [];
		const outs = await this.#run(
			s,
			request.inputs,
			outputs.length > 0 ? outputs : s.outputs,
			opts,
		);
		const res: InferenceResponse = {
			model_name: name,
			model_version: s.version,
			outputs: outs,
		};
		if (request.id !== undefined) res.id = request.id;
		return res;
	}

	async predict(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions = {},
	): Promise<PredictResult> {
		const s = await this.#ready(name, version);
		let tensors: Tensor[];
		if (Array.isArray(input)) {
			if (input.length === 0)
				throw invalidInput("empty input: no rows to predict");
			const r = encodeRecords(s.model.plan, input);
			if (r.errors[0]) throw invalidInput(formatRowError(r.errors[0]));
			tensors = r.tensors;
		} else {
			if (input === null || typeof input !== "object")
				throw invalidInput("expected records (a list of objects) or columns");
			const r = encodeColumns(s.model.plan, input);
			if (r.rows === 0) throw invalidInput("empty input: no rows to predict");
			if (r.errors[0]) throw invalidInput(formatRowError(r.errors[0]));
			tensors = r.tensors;
		}
		const outs = await this.#run(s, tensors, s.outputs, opts);
		return {
			model_name: name,
			model_version: s.version,
			predictions: outputsToRecords(s.model.plan, outs),
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
							: "error";
			this.#metrics.requests.inc({
				model: s.model.name,
				version: s.version,
				outcome,
			});
			throw e;
		}
	}

	repositoryIndex(readyOnly = false): RepositoryEntry[] {
		const out: RepositoryEntry[] = [];
		for (const [name, e] of this.#entries) {
			if (readyOnly && e.state !== "READY") continue;
			out.push({
				name,
				version: e.served?.version ?? "",
				state: e.state,
				reason: e.reason,
			});
		}
		return out;
	}

	/** Loads a model, or reloads it: the new instance is loaded first, then swapped in, then the old one drains. */
	load(name: string): Promise<void> {
		const e = this.#entry(name);
		if (this.#closing)
			return Promise.reject(
				new MlshipError("MLSHIP_UNAVAILABLE", "the server is shutting down"),
			);
		if (e.loading) return e.loading;
		if (!e.served) e.state = "LOADING";
		const p = (async () => {
			try {
				const next = await this.#open(e.spec);
				const old = e.served;
				e.served = next;
				e.state = "READY";
				e.reason = "";
				this.#metrics.loaded.set(this.#countLoaded());
				this.#metrics.loads.inc({ model: name });
				e.lastUsed = performance.now();
				void this.#evict(e);
				// Emitted at the swap itself: from here on new requests get the new version.
				if (old)
					this.#emit({
						type: "updated",
						model: name,
						from: old.version,
						to: next.version,
					});
				if (old) await this.#retire(old);
			} catch (err) {
				const m = toMlshipError(err);
				if (!e.served) e.state = "UNAVAILABLE";
				e.reason = m.message;
				throw m;
			} finally {
				e.loading = undefined;
			}
		})();
		e.loading = p;
		return p;
	}

	async #open(spec: ModelSpec): Promise<Served> {
		const load = this.#opts.load ?? {};
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
		// Labelled children are looked up once: prom-client hashes label objects on every call otherwise.
		const m = this.#metrics;
		const batchSize = m.batchSize.labels(spec.name, version);
		const computeTime = m.computeTime.labels(spec.name, version);
		const queueTime = m.queueTime.labels(spec.name, version);
		const queueDepth = m.queueDepth.labels(spec.name, version);
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
		try {
			await warmUp(model);
		} catch (err) {
			await model.close();
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`version ${version} of '${spec.name}' failed its warm-up: ${toMlshipError(err).message}`,
				{ cause: err },
			);
		}
		return {
			model,
			version,
			ok: m.requests.labels(spec.name, version, "ok"),
			latency: m.latency.labels(spec.name, version),
			outputs: model.signature.outputs.map((o) => o.name),
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
	 * requests and is unloaded. A version that fails to load or warm up is not swapped in.
	 */
	async follow(): Promise<void> {
		const refs = [...this.#entries.values()].filter((e) =>
			isRegistryRef(e.spec.source),
		);
		if (refs.length === 0 || this.#unwatch) return;
		const store = await this.#store();
		this.#unwatch = store.watch((ev) => {
			for (const e of refs)
				if (parseRef(e.spec.source).name === ev.name) void this.#refresh(e);
		});
	}

	async #refresh(e: Entry): Promise<void> {
		const name = e.spec.name;
		if (this.#refreshing.has(name)) {
			this.#refreshing.set(name, true);
			return;
		}
		this.#refreshing.set(name, false);
		try {
			do {
				this.#refreshing.set(name, false);
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
					await this.load(name);
					this.#metrics.updates.inc({ model: name, outcome: "ok" });
				} catch (err) {
					this.#metrics.updates.inc({ model: name, outcome: "failed" });
					e.reason = `update to version ${to} failed: ${toMlshipError(err).message}; still serving version ${from ?? "none"}`;
					this.#emit({
						type: "update_failed",
						model: name,
						from,
						to,
						error: e.reason,
					});
				}
			} while (this.#refreshing.get(name));
		} finally {
			this.#refreshing.delete(name);
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
		for (const e of this.#entries.values()) if (e.served) n++;
		return n;
	}

	/** Unloads least recently used models while more than maxLoadedModels are loaded (never `keep`). */
	async #evict(keep: Entry): Promise<void> {
		const max = this.#opts.maxLoadedModels ?? 0;
		if (max <= 0) return;
		const retiring: Promise<void>[] = [];
		while (this.#countLoaded() > max) {
			let lru: Entry | undefined;
			for (const e of this.#entries.values())
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
			lru.reason =
				"evicted (least recently used); loads again on its next request";
			this.#metrics.evictions.inc({ model: lru.spec.name });
			retiring.push(this.#retire(s));
		}
		this.#metrics.loaded.set(this.#countLoaded());
		await Promise.all(retiring);
	}

	async unload(name: string): Promise<void> {
		const e = this.#entry(name);
		if (e.loading) await e.loading.catch(() => {});
		const s = e.served;
		e.served = undefined;
		e.state = "UNLOADED";
		e.reason = "unloaded by request";
		this.#metrics.loaded.set(this.#countLoaded());
		if (s) await this.#retire(s);
	}

	registry(): { available: boolean; reason?: string } | undefined {
		const reg = this.#opts.registry;
		return (typeof reg === "object" ? reg : this.#storeNow)?.health();
	}

	async metrics(): Promise<{ contentType: string; body: string }> {
		const h = this.registry();
		if (h) this.#metrics.registryAvailable.set(h.available ? 1 : 0);
		return {
			contentType: this.#metrics.registry.contentType,
			body: await this.#metrics.registry.metrics(),
		};
	}

	async close(): Promise<void> {
		this.#closing = true;
		this.#unwatch?.();
		await Promise.all(
			[...this.#entries.values()].map(async (e) => {
				if (e.loading) await e.loading.catch(() => {});
				const s = e.served;
				e.served = undefined;
				e.state = "UNLOADED";
				if (s) await this.#retire(s);
			}),
		);
		if (this.#storeOpen) await (await this.#storeOpen).close();
	}
}

/** A model source that names a registry entry (not a path). */
function isRegistryRef(source: string): boolean {
	return (
		!/[\\/]|\.(onnx|ya?ml)$/i.test(source) &&
		/^[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._-]+)?$/.test(source)
	);
}

/**
 * Runs one synthesized row through a freshly loaded model before it serves: the first category of
 * categorical features, else the feature's minimum (or 0). A model that cannot answer it is not swapped in.
 */
async function warmUp(model: Model): Promise<void> {
	const row: Row = {};
	for (const f of model.plan.features) {
		const first = f.categories ? [...f.categories][0] : undefined;
		row[f.name] = first ?? (Number.isFinite(f.min) ? f.min : 0);
	}
	const { tensors, errors } = encodeRecords(model.plan, [row]);
	if (errors[0]) throw invalidInput(formatRowError(errors[0]));
	await model.predictTensors(tensors);
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
