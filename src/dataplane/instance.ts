// The per-version model instance: the one way to run a model (validation, table↔tensor encoding, scheduler, executor, metrics and hooks).

import type { Manifest } from "../bundle/manifest.ts";
import type { Bundle } from "../bundle/types.ts";
import {
	type Columns,
	checkCategories,
	encodeColumns,
	encodeRecords,
	formatRowError,
	outputsToColumns,
	outputsToRecords,
	planTable,
	type Row,
	type RowError,
	selectRows,
	type TablePlan,
} from "../codec/table.ts";
import { validateInputs } from "../codec/tensor.ts";
import { warmupRows } from "../codec/warmup.ts";
import type { VersionQuality } from "../feedback/quality.ts";
import type { FeedbackItem, FeedbackOutcome } from "../feedback/types.ts";
import type { Profile } from "../monitor/profile/format.ts";
import { parseProfile } from "../monitor/profile/format.ts";
import {
	invalidInput,
	MlshipError,
	toMlshipError,
} from "../protocol/errors.ts";
import type { TraceSpan } from "../protocol/trace.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Signature,
	Tensor,
} from "../protocol/types.ts";
import { runtime } from "../runtime/registry.ts";
import type {
	Explanation,
	LoadedModel,
	LoadOptions,
	SharedBytes,
} from "../runtime/types.ts";
import {
	type ExplainOptions,
	type ExplainResult,
	shapeExplanation,
	topK,
} from "./explain.ts";
import { backgroundRow, kernelShap } from "./kernel.ts";
import {
	type Batching,
	type BatchTiming,
	Scheduler,
	type SchedulerObserver,
	type SchedulerSettings,
	schedulerSettings,
} from "./scheduler.ts";

/** How a request ended, as the `outcome` label of request metrics. */
export type Outcome =
	| "ok"
	| "invalid"
	| "overloaded"
	| "timeout"
	| "retried"
	| "error";

/** Metrics of one instance: the scheduler's (batches, queue) and, per request, its outcome and latency. */
export interface InstanceObserver extends SchedulerObserver {
	/** A request finished (`seconds` from its call to its answer). */
	done?(outcome: Outcome, seconds: number): void;
}

/** Who and what a call belongs to, as the transport knows it; hooks (payload logs, feedback) see it. */
export interface CallContext {
	/** The request id: the client's (OIP `id`, header `x-request-id`), else one the transport generated. */
	readonly requestId?: string | undefined;
	/** The entity of a per-entity family member's call. */
	readonly entity?: string | undefined;
	/** Who called: the id of the caller's API token, when the server checks tokens. */
	readonly caller?: string | undefined;
	/** A shadow copy of a request another version answered (its answer is compared, never returned). */
	readonly shadow?: boolean | undefined;
	/** The request's span when tracing is on: the call records its queue and compute spans under it. */
	readonly trace?: TraceSpan | undefined;
}

/** A successful prediction, as a hook sees it (payload logs, explanations). Read it; do not keep or change it. */
export interface PredictCall extends CallContext {
	readonly model: string;
	readonly version: number | undefined;
	readonly inputs: readonly Tensor[];
	readonly outputs: readonly Tensor[];
	/** From the call to its answer (queue wait + compute), in seconds. */
	readonly seconds: number;
	/** How the model's table columns map onto its tensors (to read inputs and outputs as columns). */
	readonly plan: TablePlan;
	/** The bundle's reference profile (drift), when it has one. */
	readonly reference: Profile | undefined;
	/** The bundle's task (classification, regression, other), when it says. */
	readonly task?: string | undefined;
}

/** Called after every successful prediction of an instance; it must not throw and must not block. */
export type PredictHook = (call: PredictCall) => void;

/** Options of an embedded prediction. */
export interface PredictOptions {
	/** The request id, so `feedback({ id, ... })` can refer to this prediction later (an OIP request's `id` works too). */
	id?: string;
}

/** Where an instance's feedback goes: a feedback join that keeps its answers by request id (see loadModel `feedback`). */
export interface FeedbackTarget {
	readonly hook: PredictHook;
	apply(model: string, items: readonly FeedbackItem[]): FeedbackOutcome;
	readonly quality: { list(model?: string): VersionQuality[] };
}

/** An instance held for one unit of work (a claimed chunk): it is not unloaded until released. */
export interface ModelLease {
	readonly model: ModelInstance;
	release(): void;
}

/**
 * Where long-running work gets its model, one lease per unit of work: a fixed instance (a ModelInstance
 * itself), or one that follows a registry alias and hot-swaps between leases (followModel).
 */
export interface ModelProvider {
	lease(): Promise<ModelLease>;
}

function isTensorArray(x: readonly unknown[]): x is Tensor[] {
	const f = x[0] as Partial<Tensor> | undefined;
	return (
		f !== undefined &&
		typeof f === "object" &&
		f !== null &&
		"datatype" in f &&
		"shape" in f &&
		"data" in f
	);
}

/** The outcome label of a failed request. */
export function outcomeOf(e: MlshipError): Outcome {
	if (e.status < 500) return "invalid";
	if (e.code === "MLSHIP_OVERLOADED") return "overloaded";
	if (e.code === "MLSHIP_TIMEOUT") return "timeout";
	if (e.code === "MLSHIP_CLOSED") return "retried";
	return "error";
}

/**
 * One loaded version of a model, behind its scheduler. Every entry point runs models through one of these:
 * serve, stream and SQL through the data plane or SqlModels, batch, pg and embedded users through loadModel.
 * Close it when done: it holds native sessions and worker threads.
 */
export class ModelInstance implements ModelProvider {
	/** Name from the registry or the manifest. */
	readonly name: string;
	/** Registry version, when loaded from a registry. */
	readonly version: number | undefined;
	readonly manifest: Manifest;
	readonly plan: TablePlan;
	/** OIP platform of its runtime, e.g. "onnx_onnxv1". */
	readonly platform: string;
	/** The bundle's reference profile (`profile` in mlship.yaml), read and checked at load. */
	readonly reference: Profile | undefined;
	readonly #loaded: LoadedModel;
	readonly #scheduler: Scheduler;
	readonly #outputs: string[];
	readonly #observer: InstanceObserver | undefined;
	/** Whether any BYTES feature lists its categories (checked on the tensor path too). */
	readonly #categorical: boolean;
	/** Undefined until a hook is added, so an instance without hooks pays one check per request. */
	#hooks: PredictHook[] | undefined;
	#feedback: FeedbackTarget | undefined;
	#leases = 0;
	#closing = false;
	/** Settles once the last lease is released (made by the first close() that finds leases). */
	#unleasedP: Promise<void> | undefined;
	#unleased: (() => void) | undefined;

	constructor(
		name: string,
		version: number | undefined,
		manifest: Manifest,
		loaded: LoadedModel,
		platform: string,
		scheduler: SchedulerSettings,
		observer?: InstanceObserver,
		reference?: Profile,
	) {
		this.name = name;
		this.reference = reference;
		this.version = version;
		this.manifest = manifest;
		this.platform = platform;
		this.plan = planTable(manifest);
		this.#loaded = loaded;
		this.#observer = observer?.done ? observer : undefined;
		this.#outputs = loaded.signature.outputs.map((o) => o.name);
		this.#categorical = this.plan.features.some(
			(f) => f.categories !== undefined && f.kind === "bytes",
		);
		this.#scheduler = new Scheduler(
			scheduler,
			(inputs, outputs, busy) => loaded.predict(inputs, outputs, busy),
			observer,
		);
	}

	/** Inputs and outputs: names, OIP datatypes, shapes (-1 = any). */
	get signature(): Signature {
		return this.#loaded.signature;
	}

	/** Table column names the model reads from records or columns. */
	get features(): string[] {
		return this.plan.features.map((f) => f.name);
	}

	/** Estimated memory of the loaded model, in bytes. */
	get bytes(): number {
		return this.#loaded.bytes;
	}

	/** The part of `bytes` shared with other loaded models (same artifact), counted once among them. */
	get shared(): SharedBytes | undefined {
		return this.#loaded.shared;
	}

	/**
	 * Adds a hook called after every successful prediction (payload logging, explanations); returns its removal.
	 * @example const off = m.addHook((call) => log.push(call.outputs)); ... off();
	 */
	addHook(hook: PredictHook): () => void {
		this.#hooks = [...(this.#hooks ?? []), hook];
		return () => {
			const rest = (this.#hooks ?? []).filter((h) => h !== hook);
			this.#hooks = rest.length > 0 ? rest : undefined;
		};
	}

	/**
	 * Predicts. Records in → records out (class indices become class names when the bundle has labels);
	 * columns in → flat columns out; tensors in → tensors out; an OIP request in → an OIP response out.
	 * @example const [p] = await m.predict([{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }])
	 */
	predict(input: Row[], opts?: PredictOptions): Promise<Row[]>;
	predict(input: Tensor[], opts?: PredictOptions): Promise<Tensor[]>;
	predict(
		input: InferenceRequest,
		opts?: PredictOptions,
	): Promise<InferenceResponse>;
	predict(
		input: Columns,
		opts?: PredictOptions,
	): Promise<Record<string, unknown[]>>;
	async predict(
		input: Row[] | Tensor[] | InferenceRequest | Columns,
		opts: PredictOptions = {},
	): Promise<unknown> {
		const ctx: CallContext | undefined =
			opts.id !== undefined ? { requestId: opts.id } : undefined;
		if (Array.isArray(input)) {
			if (input.length > 0 && isTensorArray(input))
				return this.predictTensors(input, undefined, undefined, ctx);
			return outputsToRecords(
				this.plan,
				await this.predictTensors(
					this.encodeTable(input as Row[]),
					undefined,
					undefined,
					ctx,
				),
			);
		}
		if (input === null || typeof input !== "object")
			throw invalidInput(
				"predict() takes records, columns, tensors or an inference request",
			);
		if (Array.isArray((input as InferenceRequest).inputs)) {
			const req = input as InferenceRequest;
			const id = opts.id ?? req.id;
			const outputs = await this.predictTensors(
				req.inputs,
				req.outputs?.map((o) => o.name),
				undefined,
				id !== undefined ? { requestId: id } : undefined,
			);
			const res: InferenceResponse = { model_name: this.name, outputs };
			if (this.version !== undefined) res.model_version = String(this.version);
			if (id !== undefined) res.id = id;
			return res;
		}
		const cols = outputsToColumns(
			this.plan,
			await this.predictTensors(
				this.encodeTable(input as Columns),
				undefined,
				undefined,
				ctx,
			),
		);
		return Object.fromEntries(cols.map((c) => [c.name, c.values]));
	}

	/**
	 * Keeps this instance's answers by request id in `target` (a FeedbackJoin), so `feedback()` can join to them.
	 * loadModel does this when given `feedback`.
	 */
	keepFeedback(target: FeedbackTarget): void {
		if (this.#feedback) return;
		this.#feedback = target;
		this.addHook(target.hook);
	}

	/**
	 * Feedback on earlier predictions by their id: `{id, truth}` (one value, or one per row) or `{id, reward}`; one
	 * item or a list (all checked first, then applied). Needs loadModel's `feedback` option.
	 * @example const [p] = await m.predict(rows, { id: "r1" }); m.feedback({ id: "r1", truth: "setosa" });
	 */
	feedback(items: FeedbackItem | readonly FeedbackItem[]): FeedbackOutcome {
		if (!this.#feedback)
			throw new MlshipError(
				"MLSHIP_INVALID_ARGUMENT",
				`model '${this.name}' keeps no predictions for feedback: load it with loadModel(ref, { feedback: {} })`,
			);
		return this.#feedback.apply(
			this.name,
			Array.isArray(items) ? items : [items as FeedbackItem],
		);
	}

	/**
	 * Live quality from feedback (needs loadModel's `feedback` option, else []): accuracy, macro F1, ROC AUC and
	 * log-loss for classifiers, MAE and RMSE for regression, over the newest window of rows and since loading.
	 * @example m.quality()[0]?.cumulative.accuracy
	 */
	quality(): VersionQuality[] {
		return this.#feedback?.quality.list(this.name) ?? [];
	}

	/**
	 * Records or columns as the model's input tensors. An empty table, or a bad value (the first one, naming
	 * its row and column, and with `countMore` how many more there are), is MLSHIP_INVALID_INPUT.
	 */
	encodeTable(input: Row[] | Columns, countMore = true): Tensor[] {
		if (Array.isArray(input)) {
			if (input.length === 0)
				throw invalidInput("empty input: no rows to predict");
			const r = encodeRecords(this.plan, input);
			throwRowErrors(r.errors, countMore);
			return r.tensors;
		}
		if (input === null || typeof input !== "object")
			throw invalidInput("expected records (a list of objects) or columns");
		const r = encodeColumns(this.plan, input);
		if (r.rows === 0) throw invalidInput("empty input: no rows to predict");
		throwRowErrors(r.errors, countMore);
		return r.tensors;
	}

	/** Output tensors as one record per row (class indices become class names when the bundle has labels). */
	decodeRecords(outputs: Tensor[]): Row[] {
		return outputsToRecords(this.plan, outputs);
	}

	/** The outputs a call computes: the named ones, checked, or all. */
	#wanted(outputs: readonly string[] | undefined): string[] {
		if (!outputs || outputs.length === 0) return this.#outputs;
		for (const o of outputs)
			if (!this.#outputs.includes(o))
				throw invalidInput(
					`unknown output '${o}'; the model has ${this.#outputs.map((x) => `'${x}'`).join(", ")}`,
				);
		return [...outputs];
	}

	#validate(inputs: Tensor[]): void {
		validateInputs(this.#loaded.signature, inputs);
		if (this.#categorical) checkCategories(this.plan, inputs);
	}

	/**
	 * Runs the model on tensors through its scheduler (concurrent calls are batched). Inputs are validated
	 * against the signature first, so a bad request never joins a batch. `outputs` picks outputs;
	 * `timeoutMs` refuses the call if it cannot start in time (default: the batching `timeout_ms`).
	 */
	async predictTensors(
		inputs: Tensor[],
		outputs?: readonly string[],
		timeoutMs?: number,
		context?: CallContext,
	): Promise<Tensor[]> {
		const obs = this.#observer;
		const span = context?.trace;
		if (!obs && this.#hooks === undefined && span === undefined)
			return this.#submit(inputs, outputs, timeoutMs);
		const started = performance.now();
		const timing: BatchTiming | undefined = span ? {} : undefined;
		try {
			const outs = await this.#submit(inputs, outputs, timeoutMs, timing);
			const ended = performance.now();
			const seconds = (ended - started) / 1000;
			obs?.done?.("ok", seconds);
			if (span && timing?.started !== undefined) {
				const attrs = {
					"mlship.model": this.name,
					"mlship.version": String(this.version ?? 1),
				};
				span.record("queue", started, timing.started, attrs);
				span.record("compute", timing.started, timing.ended ?? ended, {
					...attrs,
					"mlship.batch_rows": timing.rows ?? 0,
				});
			}
			return this.#afterHooks(inputs, outs, seconds, context);
		} catch (err) {
			const e = toMlshipError(err);
			obs?.done?.(outcomeOf(e), (performance.now() - started) / 1000);
			throw e;
		}
	}

	#submit(
		inputs: Tensor[],
		outputs: readonly string[] | undefined,
		timeoutMs: number | undefined,
		timing?: BatchTiming,
	): Promise<Tensor[]> {
		this.#validate(inputs);
		return this.#scheduler.submit(
			inputs,
			this.#wanted(outputs),
			timeoutMs,
			timing,
		);
	}

	/**
	 * Runs the model on tensors synchronously, blocking the calling thread (for SQL engines, which call functions
	 * synchronously): the same validation as predictTensors, no scheduler. Only for instances loaded in
	 * `blocking` mode.
	 */
	predictSync(
		inputs: Tensor[],
		outputs?: readonly string[],
		context?: CallContext,
	): Tensor[] {
		const run = this.#loaded.predictSync;
		if (!run)
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				`model '${this.name}' was not loaded for synchronous calls (load it with mode 'blocking')`,
			);
		this.#validate(inputs);
		const wanted = this.#wanted(outputs);
		const obs = this.#observer;
		const started = performance.now();
		try {
			const outs = run.call(this.#loaded, inputs, wanted);
			const seconds = (performance.now() - started) / 1000;
			obs?.batch?.(inputs[0]?.shape[0] ?? 0, seconds);
			obs?.done?.("ok", seconds);
			return this.#afterHooks(inputs, outs, seconds, context);
		} catch (err) {
			const e = toMlshipError(err);
			obs?.done?.(outcomeOf(e), (performance.now() - started) / 1000);
			throw e;
		}
	}

	#afterHooks(
		inputs: Tensor[],
		outputs: Tensor[],
		seconds: number,
		context: CallContext | undefined,
	): Tensor[] {
		const hooks = this.#hooks;
		if (hooks !== undefined) {
			const call: PredictCall = {
				...context,
				model: this.name,
				version: this.version,
				inputs,
				outputs,
				seconds,
				plan: this.plan,
				reference: this.reference,
				task: this.manifest.task,
			};
			for (const h of hooks)
				try {
					h(call);
				} catch {
					// A hook (a payload log, say) never fails the prediction it watches.
				}
		}
		return outputs;
	}

	/**
	 * Runs the model once before it serves, on the rows `warmupRows` gives. Failing on the bundle's own `examples`
	 * throws (the version is not swapped in); failing on a synthesized row returns why (a valid model may refuse
	 * made-up values: the caller warns, counts it and serves).
	 */
	async warmUp(): Promise<string | undefined> {
		const { rows, synthesized } = warmupRows(this.manifest, this.plan);
		try {
			const { tensors, errors } = encodeRecords(this.plan, rows);
			if (errors[0])
				throw invalidInput(
					`${synthesized ? "" : "bundle example "}${formatRowError(errors[0])}`,
				);
			// Not through predictTensors: a warm-up is not a request (no request metrics, no hooks).
			this.#validate(tensors);
			await this.#scheduler.submit(tensors, this.#outputs);
		} catch (err) {
			if (!synthesized) throw err;
			return toMlshipError(err).message;
		}
		return undefined;
	}

	/**
	 * Holds this instance for one unit of work: close() waits for every lease to be released, so a hot swap
	 * never pulls the model out from under a chunk in progress. MLSHIP_CLOSED once closing.
	 */
	async lease(): Promise<ModelLease> {
		if (this.#closing)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		this.#leases++;
		let released = false;
		return {
			model: this,
			release: () => {
				if (released) return;
				released = true;
				if (--this.#leases === 0) this.#unleased?.();
			},
		};
	}

	/**
	 * Explains predictions: per row and target, contributions per feature column that add up (with the base value)
	 * to the raw model output; the `top` largest by magnitude (default 5). Exact TreeSHAP for tree ensembles on the
	 * `trees` runtime; other models are MLSHIP_UNSUPPORTED_MODEL.
	 * @example const [[e]] = (await m.explain([{ age: 61, bmi: 32.1 }], { top: 3 })).explanations
	 */
	async explain(
		input: Row[] | Columns,
		opts: ExplainOptions = {},
	): Promise<ExplainResult> {
		const kernel =
			opts.method === "kernel" ||
			(opts.method === undefined &&
				!this.#loaded.explain &&
				this.reference !== undefined);
		if (kernel) return this.#kernelExplain(input, opts);
		return this.explainShaped(this.encodeTable(input), opts.top);
	}

	/** KernelSHAP against the reference profile's background row, in the space of the model's (probability) output. */
	async #kernelExplain(
		input: Row[] | Columns,
		opts: ExplainOptions,
	): Promise<ExplainResult> {
		const top = topK(opts.top);
		if (!this.reference)
			throw new MlshipError(
				"MLSHIP_UNSUPPORTED_MODEL",
				`KernelSHAP of model '${this.name}' needs a background from the bundle's reference profile; add one: mlship bundle init DIR --reference TRAINING.csv`,
			);
		this.encodeTable(input);
		const rows = Array.isArray(input) ? input : columnRows(input);
		const features = this.plan.features.map((f) => f.name);
		const outs = this.manifest.signature.outputs;
		const out = (outs.find((o) => o.name === "probabilities") ??
			outs.find((o) => o.name !== "label") ??
			outs[0]) as { name: string };
		// Through the scheduler only: coalition rows are not requests (no request metrics, no hooks, no payload log).
		const f = async (batch: Row[]): Promise<Float64Array[]> => {
			const tensors = this.encodeTable(batch, false);
			const [t] = await this.#scheduler.submit(tensors, [out.name]);
			const n = batch.length;
			const data = (t as Tensor).data as ArrayLike<number | bigint>;
			const w = data.length / n;
			return Array.from({ length: n }, (_, r) =>
				Float64Array.from({ length: w }, (_, j) => Number(data[r * w + j])),
			);
		};
		const k = await kernelShap(
			f,
			rows,
			backgroundRow(this.reference, features),
			features,
			{ samples: opts.samples, seed: opts.seed },
		);
		const labels = this.manifest.labels;
		const names =
			labels && labels.length === k.targets
				? [...labels]
				: Array.from({ length: k.targets }, (_, t) =>
						k.targets === 1 ? out.name : `${out.name}_${t}`,
					);
		const shaped = shapeExplanation(
			{
				rows: rows.length,
				targets: k.targets,
				features,
				base: k.base,
				values: k.values,
				method: "kernel",
			},
			names,
			top,
		);
		return { ...shaped, space: "output", samples: k.coalitions };
	}

	/** Explains a batch of input tensors as `explain` does (per row and target, the `top` largest; default 5). */
	async explainShaped(inputs: Tensor[], top?: unknown): Promise<ExplainResult> {
		const k = topK(top);
		const e = await this.explainTensors(inputs);
		return shapeExplanation(e, this.#targetNames(e.targets), k);
	}

	/** Explains a batch of input tensors: raw contributions (rows × targets × features), see `explain`. */
	async explainTensors(inputs: Tensor[]): Promise<Explanation> {
		const explain = this.#loaded.explain;
		if (!explain) throw this.#cannotExplain();
		this.#validate(inputs);
		return explain.call(this.#loaded, inputs);
	}

	/**
	 * `explainShaped` blocking the calling thread (SQL engines call functions synchronously); only for instances
	 * loaded in `blocking` mode.
	 */
	explainSync(inputs: Tensor[], top?: unknown): ExplainResult {
		const k = topK(top);
		if (!this.#loaded.explain) throw this.#cannotExplain();
		const run = this.#loaded.explainSync;
		if (!run)
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				`model '${this.name}' was not loaded for synchronous calls (load it with mode 'blocking')`,
			);
		this.#validate(inputs);
		const e = run.call(this.#loaded, inputs);
		return shapeExplanation(e, this.#targetNames(e.targets), k);
	}

	#cannotExplain(): MlshipError {
		return new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`model '${this.name}' runs on the ${this.manifest.runtime} runtime, which cannot explain predictions; set 'runtime: trees' in mlship.yaml for a tree ensemble or linear model (ONNX, PMML, XGBoost JSON or LightGBM text), or add a reference profile (mlship bundle init DIR --reference TRAINING.csv) for KernelSHAP`,
		);
	}

	/** Names of the raw outputs an explanation covers: class names (the positive class of a binary model) or the output. */
	#targetNames(targets: number): string[] {
		const labels = this.manifest.labels;
		if (labels && labels.length === targets) return [...labels];
		if (labels && targets === 1 && labels.length === 2)
			return [labels[1] as string];
		const out = this.#outputs.find((o) => o !== "label") ?? "output";
		return targets === 1
			? [out]
			: Array.from({ length: targets }, (_, k) => `${out}[${k}]`);
	}

	/** Waits for leases to be released, finishes queued and running calls, then frees sessions and worker threads. */
	async close(): Promise<void> {
		this.#closing = true;
		if (this.#leases > 0) {
			this.#unleasedP ??= new Promise<void>((resolve) => {
				this.#unleased = resolve;
			});
			await this.#unleasedP;
		}
		await this.#scheduler.drain();
		await this.#loaded.unload();
	}
}

function throwRowErrors(errors: RowError[], countMore: boolean): void {
	const first = errors[0];
	if (!first) return;
	const more =
		countMore && errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
	throw invalidInput(`${formatRowError(first)}${more}`);
}

/**
 * The rows of an encoded batch that are not `dropped` (bad or NULL rows, which are reported, not scored):
 * `kept` lists the row indices that remain (undefined: all `n` rows, `inputs` is `tensors` itself).
 */
export function keepRows(
	tensors: Tensor[],
	n: number,
	dropped: (row: number) => boolean,
	anyDropped: boolean,
): { inputs: Tensor[]; kept: number[] | undefined } {
	if (!anyDropped) return { inputs: tensors, kept: undefined };
	const kept: number[] = [];
	for (let r = 0; r < n; r++) if (!dropped(r)) kept.push(r);
	return { inputs: selectRows(tensors, kept), kept };
}

export interface InstanceOptions extends LoadOptions {
	name?: string | undefined;
	version?: number | undefined;
	/** Server-wide batching defaults (the bundle's own `batching` beats them). */
	batching?: Batching | undefined;
	/** Beats the bundle's `batching`. */
	batchingOverride?: Batching | undefined;
	/** Metrics: scheduler events and per-request outcomes (none by default). */
	observer?: InstanceObserver | undefined;
}

/** Loads a bundle already in memory with the runtime its manifest names, behind its scheduler. */
export async function loadInstance(
	bundle: Bundle,
	opts: InstanceOptions = {},
): Promise<ModelInstance> {
	const { name, version, batching, batchingOverride, observer, ...load } = opts;
	const rt = await runtime(bundle.manifest.runtime);
	const profile = bundle.manifest.profile;
	// Checked before the model loads: a bundle with a broken profile does not serve.
	const reference = profile
		? parseProfile(
				bundle.files.get(profile.path) ?? new Uint8Array(),
				`${bundle.source}: ${profile.path}`,
			)
		: undefined;
	const loaded = await rt.load(bundle, load);
	const settings = schedulerSettings(
		loaded.concurrency,
		batching,
		bundle.manifest.batching,
		batchingOverride,
	);
	return new ModelInstance(
		name ?? bundle.manifest.name,
		version,
		bundle.manifest,
		loaded,
		rt.platform,
		settings,
		observer,
		reference,
	);
}

/** Columns (`{col: [...]}`) as records. */
function columnRows(cols: Columns): Row[] {
	const names = Object.keys(cols);
	const n = Math.max(0, ...names.map((c) => (cols[c] as unknown[]).length));
	return Array.from({ length: n }, (_, r) =>
		Object.fromEntries(names.map((c) => [c, (cols[c] as unknown[])[r]])),
	);
}
