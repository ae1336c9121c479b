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
import {
	invalidInput,
	MlshipError,
	toMlshipError,
} from "../protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Signature,
	Tensor,
} from "../protocol/types.ts";
import { runtime } from "../runtime/registry.ts";
import type {
	LoadedModel,
	LoadOptions,
	SharedBytes,
} from "../runtime/types.ts";
import {
	type Batching,
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
}

/** A successful prediction, as a hook sees it (payload logs, explanations). Read it; do not keep or change it. */
export interface PredictCall extends CallContext {
	readonly model: string;
	readonly version: number | undefined;
	readonly inputs: readonly Tensor[];
	readonly outputs: readonly Tensor[];
	/** From the call to its answer (queue wait + compute), in seconds. */
	readonly seconds: number;
}

/** Called after every successful prediction of an instance; it must not throw and must not block. */
export type PredictHook = (call: PredictCall) => void;

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
	readonly #loaded: LoadedModel;
	readonly #scheduler: Scheduler;
	readonly #outputs: string[];
	readonly #observer: InstanceObserver | undefined;
	/** Whether any BYTES feature lists its categories (checked on the tensor path too). */
	readonly #categorical: boolean;
	/** Undefined until a hook is added, so an instance without hooks pays one check per request. */
	#hooks: PredictHook[] | undefined;
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
	) {
		this.name = name;
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
	predict(input: Row[]): Promise<Row[]>;
	predict(input: Tensor[]): Promise<Tensor[]>;
	predict(input: InferenceRequest): Promise<InferenceResponse>;
	predict(input: Columns): Promise<Record<string, unknown[]>>;
	async predict(
		input: Row[] | Tensor[] | InferenceRequest | Columns,
	): Promise<unknown> {
		if (Array.isArray(input)) {
			if (input.length > 0 && isTensorArray(input))
				return this.predictTensors(input);
			return outputsToRecords(
				this.plan,
				await this.predictTensors(this.encodeTable(input as Row[])),
			);
		}
		if (input === null || typeof input !== "object")
			throw invalidInput(
				"predict() takes records, columns, tensors or an inference request",
			);
		if (Array.isArray((input as InferenceRequest).inputs)) {
			const req = input as InferenceRequest;
			const outputs = await this.predictTensors(
				req.inputs,
				req.outputs?.map((o) => o.name),
			);
			const res: InferenceResponse = { model_name: this.name, outputs };
			if (this.version !== undefined) res.model_version = String(this.version);
			if (req.id !== undefined) res.id = req.id;
			return res;
		}
		const cols = outputsToColumns(
			this.plan,
			await this.predictTensors(this.encodeTable(input as Columns)),
		);
		return Object.fromEntries(cols.map((c) => [c.name, c.values]));
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
		if (!obs && this.#hooks === undefined)
			return this.#submit(inputs, outputs, timeoutMs);
		const started = performance.now();
		try {
			const outs = await this.#submit(inputs, outputs, timeoutMs);
			const seconds = (performance.now() - started) / 1000;
			obs?.done?.("ok", seconds);
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
	): Promise<Tensor[]> {
		this.#validate(inputs);
		return this.#scheduler.submit(inputs, this.#wanted(outputs), timeoutMs);
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
	);
}
