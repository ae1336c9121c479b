// The data plane facade: served models by name and version, behind their instances. Adapters call only this.
import type { MetricObjectWithValues, MetricValue } from "prom-client";
import { featureSpecs } from "../codec/feature-specs.ts";
import type { Row } from "../codec/table.ts";
import { type ArmChooser, uniformChooser } from "../experiments/policy.ts";
import { BanditChooser } from "../feedback/bandit.ts";
import {
	type FeedbackItem,
	FeedbackJoin,
	type FeedbackOutcome,
	type TruthListener,
} from "../feedback/join.ts";
import { registerFeedbackMetrics } from "../feedback/metrics.ts";
import type { VersionQuality } from "../feedback/quality.ts";
import { Metrics } from "../monitor/metrics.ts";
import { invalidInput, MlshipError } from "../protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Tensor,
} from "../protocol/types.ts";
import {
	type ModelStore,
	parseRef,
	ROLLOUT_LATENCY_BUCKETS_MS,
	type VersionTotals,
} from "../registry/types.ts";
import { RolloutAgent } from "../rollout/agent.ts";
import { ModelCache } from "./cache.ts";
import {
	columnsToRows,
	EntityRouter,
	entityOfRequest,
	groupByEntity,
	newFamily,
} from "./entities.ts";
import {
	type DataPlaneOptions,
	type Entry,
	type Family,
	isRegistryRef,
	type ModelSpec,
	type RouteState,
	type Served,
} from "./entry.ts";
import {
	type ExplainOptions,
	type ExplainResult,
	explainRequest,
	explanationTensor,
} from "./explain.ts";
import { RegistryFollower } from "./follower.ts";
import type { CallContext, ModelLease, ModelProvider } from "./instance.ts";
import {
	chooseVersion,
	keyText,
	requestKey,
	Shadows,
	summarize,
	tensorKey,
} from "./routing.ts";
import type {
	DataPlane,
	ExperimentInfo,
	ExplainResponse,
	FamilyInfo,
	InferOptions,
	ModelInfo,
	PredictResult,
	RepositoryEntry,
	ServedTotals,
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
	/** The feedback join (answers kept by request id), when feedback is on. */
	readonly feedbackJoin: FeedbackJoin | undefined;
	readonly #chooser: ArmChooser;
	#rollouts: RolloutAgent | undefined;
	readonly #shadows: Shadows;

	constructor(opts: DataPlaneOptions) {
		if (opts.feedback !== undefined) {
			this.feedbackJoin =
				opts.feedback instanceof FeedbackJoin
					? opts.feedback
					: new FeedbackJoin(opts.feedback);
			opts = {
				...opts,
				hooks: [...(opts.hooks ?? []), this.feedbackJoin.hook],
			};
		}
		this.#opts = opts;
		this.#metrics = new Metrics(opts.processMetrics ?? true);
		if (this.feedbackJoin)
			registerFeedbackMetrics(this.#metrics.registry, this.feedbackJoin);
		this.#shadows = new Shadows(this.#metrics, opts.shadowMaxInFlight);
		this.#cache = new ModelCache(opts, this.#metrics);
		this.#chooser = opts.armChooser ?? this.#bandits(opts);
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
			this.addModel(spec);
		}
	}

	addModel(spec: ModelSpec): void {
		if (this.#cache.entries.has(spec.name))
			throw new MlshipError(
				"MLSHIP_ALREADY_EXISTS",
				`model '${spec.name}' is already served`,
			);
		const e: Entry = {
			spec,
			state: "UNLOADED",
			reason: this.#opts.lazy ? "loads on its first request" : "",
			served: undefined,
			loading: undefined,
			lastUsed: 0,
		};
		if (spec.entityKey !== undefined) e.family = newFamily(spec);
		this.#cache.entries.set(spec.name, e);
	}

	removeModel(name: string): boolean {
		const e = this.#cache.entries.get(name);
		if (!e || e.served || e.loading) return false;
		return this.#cache.entries.delete(name);
	}

	/**
	 * With feedback on: bandit policies learn from rewards shared through the registry (a BanditChooser fed by the
	 * feedback join); without: arms are picked uniformly.
	 */
	#bandits(opts: DataPlaneOptions): ArmChooser {
		const join = this.feedbackJoin;
		if (!join) return uniformChooser;
		const cache = this.#cache;
		const chooser = new BanditChooser(
			{
				addArmStats: async (d) => (await cache.store()).addArmStats(d),
				armStats: async (n, a) => (await cache.store()).armStats(n, a),
			},
			opts.bandits,
		);
		join.onReward((model, version, reward) => {
			const route = cache.entries.get(model)?.route?.route;
			const bandit = route?.policy.bandit;
			const v = Number(version);
			if (route && bandit?.arms.includes(v))
				chooser.reward(route.name, route.alias, v, reward, bandit.algorithm);
		});
		return chooser;
	}

	/** The rollout agent, when this server takes part in rollouts (started by createDataPlane). */
	rolloutAgent(): RolloutAgent | undefined {
		if (!this.#opts.rollouts) return undefined;
		this.#rollouts ??= new RolloutAgent({
			...this.#opts.rollouts,
			store: () => this.#cache.store(),
			totals: () => this.#versionTotals(),
		});
		return this.#rollouts;
	}

	/**
	 * This server's cumulative totals per registry name and version (registry models only), for rollout checks:
	 * see requestTotals.
	 */
	async #versionTotals(): Promise<
		{ name: string; version: number; totals: VersionTotals }[]
	> {
		const names = new Map<string, string>();
		for (const e of this.#cache.entries.values())
			if (!e.family && isRegistryRef(e.spec.source))
				names.set(e.spec.name, parseRef(e.spec.source).name);
		if (names.size === 0) return [];
		const out: { name: string; version: number; totals: VersionTotals }[] = [];
		for (const t of await this.requestTotals()) {
			const name = names.get(t.model);
			if (name !== undefined)
				out.push({ name, version: t.version, totals: t.totals });
		}
		return out;
	}

	/**
	 * This server's cumulative totals per served model name and version since it started, from its request metrics:
	 * requests (ok, error, timeout), errors (error, timeout: the server's fault, not the client's), and the latency
	 * histogram of answers (ROLLOUT_LATENCY_BUCKETS_MS, then +Inf; not cumulative). Per-entity family members are
	 * left out (their metrics share one label); a bundle directory is version 1.
	 */
	async requestTotals(): Promise<ServedTotals[]> {
		const by = new Map<
			string,
			{
				model: string;
				version: number;
				totals: VersionTotals;
				cumulative: number[];
			}
		>();
		const of = (labels: Record<string, unknown>) => {
			const model = String(labels.model);
			const version = String(labels.version);
			if (!/^[1-9][0-9]*$/.test(version)) return undefined;
			const key = `${model}\u0000${version}`;
			let t = by.get(key);
			if (!t) {
				t = {
					model,
					version: Number(version),
					totals: { requests: 0, errors: 0, buckets: [] },
					cumulative: new Array(ROLLOUT_LATENCY_BUCKETS_MS.length + 1).fill(0),
				};
				by.set(key, t);
			}
			return t;
		};
		for (const v of (await this.#metrics.requests.get()).values) {
			const t = of(v.labels);
			const outcome = v.labels.outcome;
			if (
				!t ||
				!(outcome === "ok" || outcome === "error" || outcome === "timeout")
			)
				continue;
			t.totals.requests += v.value;
			if (outcome !== "ok") t.totals.errors += v.value;
		}
		for (const v of (await this.#metrics.latency.get()).values) {
			if (!v.metricName?.endsWith("_bucket")) continue;
			const t = of(v.labels);
			if (!t) continue;
			const le = (v.labels as Record<string, unknown>).le;
			const i =
				le === "+Inf"
					? ROLLOUT_LATENCY_BUCKETS_MS.length
					: ROLLOUT_LATENCY_BUCKETS_MS.findIndex(
							(b) => Math.abs(b - Number(le) * 1000) < 1e-9,
						);
			if (i >= 0) t.cumulative[i] = v.value;
		}
		return [...by.values()].map(({ model, version, totals, cumulative }) => ({
			model,
			version,
			totals: {
				...totals,
				buckets: cumulative.map(
					(c, i) => c - (i > 0 ? (cumulative[i - 1] as number) : 0),
				),
			},
		}));
	}

	/** Calls `fn` for every truth joined to an answer (per row; nothing without feedback). Returns its removal. */
	onTruth(fn: TruthListener): () => void {
		return this.feedbackJoin?.onTruth(fn) ?? (() => {});
	}

	/** Bandit arm totals as this server sees them (merged from the registry plus its unflushed rewards). */
	banditStats(
		name: string,
		alias: string,
	): { version: number; pulls: number; rewardSum: number }[] {
		const c = this.#chooser;
		return c instanceof BanditChooser ? c.stats(name, alias) : [];
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
			versions: e.route ? [...e.route.arms.keys()] : [s.version],
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
		const serving = e.route
			? [...e.route.arms.keys()]
			: e.served
				? [e.served.version]
				: [];
		if (version !== undefined && e.served && !serving.includes(version))
			throw new MlshipError(
				"MLSHIP_MODEL_NOT_FOUND",
				`model '${name}' has no version '${version}' (serving: ${serving.join(", ")})`,
			);
		if (e.state !== "READY" || !e.served) return false;
		return version === undefined || serving.includes(version);
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
		const explain = explainRequest(request.parameters);
		let explained: ExplainResult | undefined;
		const context = callContext(opts, entity);
		const started = performance.now();
		const { s, outs, e } = await this.#retrying(
			name,
			entity,
			version,
			explain
				? async (s) => {
						const outs = await s.model.predictTensors(
							inputs,
							outputs,
							opts.timeoutMs,
							context,
						);
						// The same version explains what it predicted.
						explained = await s.model.explainShaped(inputs, explain.top);
						return outs;
					}
				: // No async wrapper (and its promise) per request when there is nothing to explain.
					(s) =>
						s.model.predictTensors(inputs, outputs, opts.timeoutMs, context),
			(r) => {
				const sticky = r.route.policy.sticky;
				return sticky?.from === "feature"
					? tensorKey(request, sticky.key)
					: requestKey(r.route.policy, opts, request.parameters);
			},
		);
		this.#mirror(name, e, s, { inputs, outs }, started, context, outputs);
		const res: InferenceResponse = {
			model_name: name,
			model_version: s.version,
			outputs: explained ? [...outs, explanationTensor(explained)] : outs,
		};
		const id = opts.requestId ?? request.id;
		if (id !== undefined) res.id = id;
		if (family && entity !== undefined)
			res.parameters = {
				entity,
				entity_fallback: e.entity === undefined,
			};
		if (explained)
			res.parameters = {
				...res.parameters,
				explain_method: explained.method,
				explain_space: explained.space,
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
		routeKey?: (r: RouteState) => string | undefined,
	): Promise<{ s: Served; outs: T; e: Entry }> {
		for (let attempt = 0; ; attempt++) {
			// Without awaits when the model is loaded and needs no registry lookup (the hot path).
			const e =
				this.#router.routeNow(name, entity) ??
				(await this.#router.route(name, entity));
			let s =
				this.#cache.useNow(e, version) ?? (await this.#cache.use(e, version));
			// A traffic policy picks the version, unless the client named one.
			const r = e.route;
			if (r !== undefined && version === undefined)
				s = r.arms.get(chooseVersion(r, routeKey?.(r), this.#chooser)) ?? s;
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
		opts: ExplainOptions & { entity?: string } = {},
	): Promise<ExplainResponse> {
		const { entity, ...how } = opts;
		const { s, outs } = await this.#retrying(name, entity, version, (s) =>
			s.model.explain(input, how),
		);
		return { model_name: name, model_version: s.version, ...outs };
	}

	async predict(
		name: string,
		version: string | undefined,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions = {},
	): Promise<PredictResult> {
		const entry = this.#cache.entries.get(name);
		if (entry?.family)
			return this.#predictFamily(name, entry.family, version, input, opts);
		const sticky = entry?.route?.route.policy.sticky;
		if (sticky?.from === "feature" && version === undefined) {
			const before = entry?.route;
			try {
				return await this.#predictPerRow(name, sticky.key, input, opts);
			} catch (err) {
				// The policy changed between picking the rows' versions and scoring them: route the request again.
				if (this.#cache.entries.get(name)?.route === before) throw err;
				return this.predict(name, version, input, opts);
			}
		}
		const context = callContext(opts, undefined);
		const started = performance.now();
		const { s, outs, e } = await this.#retrying(
			name,
			undefined,
			version,
			(s) => scoreTable(s, input, opts.timeoutMs, context),
			(r) => requestKey(r.route.policy, opts, opts.parameters),
		);
		const predictions = s.model.decodeRecords(outs.outs);
		if (e.route) {
			for (const row of predictions) row.model_version = s.version;
			this.#mirror(name, e, s, outs, started, context);
		}
		const res: PredictResult = {
			model_name: name,
			model_version: s.version,
			predictions,
		};
		if (opts.requestId !== undefined) res.id = opts.requestId;
		return res;
	}

	/**
	 * Records under a policy with a sticky feature: each row's key picks its version, rows are scored in one call
	 * per version, and come back in input order, each with the `model_version` that scored it.
	 */
	async #predictPerRow(
		name: string,
		key: string,
		input: Row[] | Record<string, unknown[]>,
		opts: InferOptions,
	): Promise<PredictResult> {
		const rows = Array.isArray(input) ? input : columnsToRows(input);
		if (rows.length === 0)
			throw invalidInput("empty input: no rows to predict");
		const e = this.#cache.entry(name);
		const r = e.route as RouteState;
		const groups = new Map<string, number[]>();
		for (let i = 0; i < rows.length; i++) {
			const v = chooseVersion(r, keyText(rows[i]?.[key]), this.#chooser);
			const g = groups.get(v);
			if (g) g.push(i);
			else groups.set(v, [i]);
		}
		const context = callContext(opts, undefined);
		const out: Row[] = new Array(rows.length);
		await Promise.all(
			[...groups].map(async ([v, idx]) => {
				const part = idx.map((i) => rows[i] as Row);
				const started = performance.now();
				const { s, outs, e } = await this.#retrying(name, undefined, v, (s) =>
					scoreTable(s, part, opts.timeoutMs, context),
				);
				const preds = s.model.decodeRecords(outs.outs);
				for (let j = 0; j < idx.length; j++) {
					const row = preds[j] as Row;
					row.model_version = s.version;
					out[idx[j] as number] = row;
				}
				this.#mirror(name, e, s, outs, started, context);
			}),
		);
		const res: PredictResult = {
			model_name: name,
			model_version:
				groups.size === 1 ? ([...groups.keys()][0] as string) : "mixed",
			predictions: out,
		};
		if (opts.requestId !== undefined) res.id = opts.requestId;
		return res;
	}

	/** Hands an answered request to its route's shadows, if any (not when a shadow itself answered it). */
	#mirror(
		name: string,
		e: Entry,
		s: Served,
		call: { inputs: Tensor[]; outs: Tensor[] },
		started: number,
		context: CallContext | undefined,
		outputs?: readonly string[],
	): void {
		const r = e.route;
		if (r === undefined || r.shadows.length === 0) return;
		for (const sh of r.shadows) if (sh.served === s) return;
		this.#shadows.mirror(
			name,
			r,
			call.inputs,
			outputs,
			call.outs,
			(performance.now() - started) / 1000,
			context,
		);
	}

	experiment(name: string): ExperimentInfo {
		const e = this.#cache.entry(name);
		const info: ExperimentInfo = {
			name,
			versions: e.route
				? [...e.route.arms.keys()]
				: e.served
					? [e.served.version]
					: [],
			shadows: this.#shadows.list(name).map(summarize),
		};
		if (e.route) info.route = e.route.route;
		return info;
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
							callContext(opts, entity),
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
		const res: PredictResult = {
			model_name: name,
			model_version:
				versions.size === 1 ? ([...versions][0] as string) : "mixed",
			predictions: out,
		};
		if (opts.requestId !== undefined) res.id = opts.requestId;
		return res;
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

	registryStore(): Promise<ModelStore> | undefined {
		if (
			this.#opts.registry === undefined &&
			this.#cache.storeHealth() === undefined
		)
			return undefined;
		return this.#cache.store();
	}

	feedback(name: string, items: readonly FeedbackItem[]): FeedbackOutcome {
		this.#cache.entry(name);
		if (!this.feedbackJoin)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				"this server keeps no request ids, so it cannot join feedback: start it with feedback on (serve --feedback-max-ids > 0)",
			);
		return this.feedbackJoin.apply(name, items);
	}

	quality(name: string): VersionQuality[] {
		this.#cache.entry(name);
		return this.feedbackJoin?.quality.list(name) ?? [];
	}

	async metrics(): Promise<{ contentType: string; body: string }> {
		this.#refreshMetrics();
		return {
			contentType: this.#metrics.registry.contentType,
			body: await this.#metrics.registry.metrics(),
		};
	}

	async metricsJson(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
		this.#refreshMetrics();
		return this.#metrics.registry.getMetricsAsJSON();
	}

	/** Gauges read when metrics are asked for. */
	#refreshMetrics(): void {
		const h = this.registry();
		if (h) this.#metrics.registryAvailable.set(h.available ? 1 : 0);
		this.#metrics.loadedBytes.set(this.#cache.loadedBytes());
		this.#shadows.collect();
	}

	async close(): Promise<void> {
		this.#cache.closing = true;
		this.#follower.stop();
		await this.#rollouts?.close();
		// Bandit rewards are flushed to the registry before it is closed (a restart loses nothing).
		await this.#chooser.close?.();
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
	dp.rolloutAgent()?.start();
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

/** Records or columns scored by one served version, with the tensors they were encoded to (for shadows). */
async function scoreTable(
	s: Served,
	input: Row[] | Record<string, unknown[]>,
	timeoutMs: number | undefined,
	context: CallContext | undefined,
): Promise<{ inputs: Tensor[]; outs: Tensor[] }> {
	const inputs = s.model.encodeTable(input, false);
	return {
		inputs,
		outs: await s.model.predictTensors(inputs, undefined, timeoutMs, context),
	};
}

/** What predict hooks learn of a call from its options. */
function callContext(
	opts: InferOptions,
	entity: string | undefined,
): CallContext | undefined {
	if (
		opts.requestId === undefined &&
		opts.caller === undefined &&
		entity === undefined &&
		opts.trace === undefined
	)
		return undefined;
	return {
		requestId: opts.requestId,
		caller: opts.caller,
		entity,
		trace: opts.trace,
	};
}
