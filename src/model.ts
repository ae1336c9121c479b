// The embedded API: loadModel(path | 'name@alias') → Model with predict(records | columns | tensors | request).
import { stat } from "node:fs/promises";
import { type Bundle, readBundle } from "./bundle/bundle.ts";
import type { Manifest } from "./bundle/manifest.ts";
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
	type TablePlan,
} from "./codec/table.ts";
import { validateInputs } from "./codec/tensor.ts";
import {
	type Batching,
	Scheduler,
	type SchedulerObserver,
	type SchedulerSettings,
	schedulerSettings,
} from "./dataplane/scheduler.ts";
import { invalidInput, MlshipError } from "./protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Signature,
	Tensor,
} from "./protocol/types.ts";
import type { ModelStore } from "./registry/types.ts";
import { onnxRuntime } from "./runtime/onnx/index.ts";
import { defaultWorkers } from "./runtime/pool.ts";
import type { LoadedModel, LoadOptions } from "./runtime/types.ts";

export interface LoadModelOptions extends LoadOptions {
	/** Registry for `name@alias` references: a URI (`sqlite:path`) or an open store. Default: MLSHIP_REGISTRY or ./.mlship/registry.db. */
	registry?: string | ModelStore;
	/** Told of each batch the model's scheduler runs (metrics). */
	observer?: SchedulerObserver;
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

/** A loaded model. Close it when done: it holds native sessions and worker threads. */
export class Model {
	/** Name from the registry or the manifest. */
	readonly name: string;
	/** Registry version, when loaded from a registry. */
	readonly version: number | undefined;
	readonly manifest: Manifest;
	readonly plan: TablePlan;
	readonly #loaded: LoadedModel;
	readonly #scheduler: Scheduler;
	readonly #outputs: string[];
	/** Whether any BYTES feature lists its categories (checked on the tensor path too). */
	readonly #categorical: boolean;

	constructor(
		name: string,
		version: number | undefined,
		manifest: Manifest,
		loaded: LoadedModel,
		scheduler: SchedulerSettings,
		observer?: SchedulerObserver,
	) {
		this.name = name;
		this.version = version;
		this.manifest = manifest;
		this.plan = planTable(manifest);
		this.#loaded = loaded;
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
			if (input.length === 0)
				throw invalidInput("empty input: no rows to predict");
			if (isTensorArray(input)) return this.predictTensors(input);
			const { tensors, errors } = encodeRecords(this.plan, input as Row[]);
			throwRowErrors(errors);
			return outputsToRecords(this.plan, await this.predictTensors(tensors));
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
		const { tensors, errors, rows } = encodeColumns(
			this.plan,
			input as Columns,
		);
		if (rows === 0) throw invalidInput("empty input: no rows to predict");
		throwRowErrors(errors);
		const cols = outputsToColumns(
			this.plan,
			await this.predictTensors(tensors),
		);
		return Object.fromEntries(cols.map((c) => [c.name, c.values]));
	}

	/**
	 * Runs the model on tensors through its scheduler (concurrent calls are batched). Inputs are validated
	 * against the signature first, so a bad request never joins a batch. `outputs` picks outputs;
	 * `timeoutMs` refuses the call if it cannot start in time.
	 */
	async predictTensors(
		inputs: Tensor[],
		outputs?: readonly string[],
		timeoutMs?: number,
	): Promise<Tensor[]> {
		validateInputs(this.#loaded.signature, inputs);
		if (this.#categorical) checkCategories(this.plan, inputs);
		const wanted = outputs && outputs.length > 0 ? [...outputs] : this.#outputs;
		for (const o of wanted)
			if (!this.#outputs.includes(o))
				throw invalidInput(
					`unknown output '${o}'; the model has ${this.#outputs.map((x) => `'${x}'`).join(", ")}`,
				);
		return this.#scheduler.submit(inputs, wanted, timeoutMs);
	}

	/** Finishes queued and running calls, then frees sessions and worker threads. */
	async close(): Promise<void> {
		await this.#scheduler.drain();
		await this.#loaded.unload();
	}
}

function throwRowErrors(errors: RowError[]): void {
	const first = errors[0];
	if (!first) return;
	const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
	throw invalidInput(`${formatRowError(first)}${more}`);
}

async function isPath(ref: string): Promise<boolean> {
	try {
		await stat(ref);
		return true;
	} catch {
		return false;
	}
}

export interface LoadBundleOptions extends LoadOptions {
	name?: string;
	version?: number;
	/** Server-wide batching defaults (the bundle's own `batching` beats them). */
	batching?: Batching | undefined;
	/** Beats the bundle's `batching`. */
	batchingOverride?: Batching | undefined;
	observer?: SchedulerObserver;
}

/** Loads a bundle already in memory behind its scheduler. */
export async function loadBundle(
	bundle: Bundle,
	opts: LoadBundleOptions = {},
): Promise<Model> {
	const { name, version, batching, batchingOverride, observer, ...load } = opts;
	const loaded = await onnxRuntime.load(bundle, load);
	const ex = bundle.manifest.executor;
	const threads = load.intraOpThreads ?? ex?.intra_op_threads ?? 1;
	const concurrency =
		load.mode === "inline"
			? 1
			: (load.workers ?? ex?.workers ?? defaultWorkers(threads));
	const settings = schedulerSettings(
		concurrency,
		batching,
		bundle.manifest.batching,
		batchingOverride,
	);
	return new Model(
		name ?? bundle.manifest.name,
		version,
		bundle.manifest,
		loaded,
		settings,
		observer,
	);
}

/**
 * Loads a model from a bundle directory, a bare `.onnx` file, or the registry (`name`, `name@3`, `name@production`).
 * @example
 * const m = await loadModel("iris@production");
 * const rows = await m.predict([{ sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 }]);
 * await m.close();
 */
export async function loadModel(
	ref: string,
	opts: LoadModelOptions = {},
): Promise<Model> {
	const { registry, ...load } = opts;
	const r = await resolveBundle(ref, registry);
	return loadBundle(r.bundle, {
		...load,
		...(r.name !== undefined ? { name: r.name } : {}),
		...(r.version !== undefined ? { version: r.version } : {}),
	});
}

/**
 * Finds the bundle a model reference names: a bundle directory, a bare `.onnx` file, or a registered model
 * (`name`, `name@3`, `name@production`; then `name` and `version` come from the registry).
 */
export async function resolveBundle(
	ref: string,
	registry?: string | ModelStore,
): Promise<{ bundle: Bundle; name?: string; version?: number }> {
	if (await isPath(ref)) return { bundle: await readBundle(ref) };
	if (/[\\/]|\.(onnx|ya?ml)$/i.test(ref))
		throw new MlshipError(
			"MLSHIP_MODEL_NOT_FOUND",
			`no bundle or .onnx file at '${ref}'`,
		);
	// Loaded on demand: embedded users of bundle paths never open SQLite.
	const store =
		typeof registry === "object"
			? registry
			: await (await import("./registry/open.ts")).openRegistry(registry);
	try {
		const v = await store.get(ref);
		return {
			bundle: await store.openBundle(v),
			name: v.name,
			version: v.version,
		};
	} finally {
		if (typeof registry !== "object") await store.close();
	}
}
