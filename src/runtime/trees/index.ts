// The trees runtime: tree ensembles and linear models (ONNX-ML, PMML, XGBoost JSON, LightGBM text) evaluated in
// TypeScript on typed arrays, inline or on a worker-thread pool; explains with TreeSHAP.
import { artifactBytes, type Bundle } from "../../bundle/types.ts";
import { parseProfile } from "../../monitor/profile/format.ts";
import { MlshipError, toMlshipError } from "../../protocol/errors.ts";
import type { Signature, Tensor } from "../../protocol/types.ts";
import { withCovers } from "../../trees/covers.ts";
import { predictTree } from "../../trees/eval.ts";
import {
	type Explanation,
	explainTree,
	featureMeans,
} from "../../trees/explain.ts";
import { TREES_PLATFORM, type TreeModel } from "../../trees/ir.ts";
import { readTreeModel } from "../../trees/read/index.ts";
import { defaultWorkers, WorkerPool } from "../pool.ts";
import type { LoadedModel, LoadOptions, Runtime } from "../types.ts";
import { loadTreeModel, nameFeatures } from "./load.ts";
import { WORKER_URL } from "./worker-url.ts";

/** Bytes a model holds: its node arrays (about 60 bytes a node) plus fixed JS state. */
function estimateBytes(m: TreeModel): number {
	const b = m.body;
	const nodes =
		b.kind === "ensemble"
			? b.trees.reduce((s, t) => s + t.feature.length * (44 + 8 * m.targets), 0)
			: b.coef.byteLength;
	return 64 * 1024 + nodes;
}

class TreesModel implements LoadedModel {
	readonly signature: Signature;
	readonly concurrency: number;
	readonly bytes: number;
	readonly #model: TreeModel;
	readonly #pool: WorkerPool | undefined;
	readonly #inlineMaxRows: number;
	readonly #sync: boolean;
	/** A linear model's feature means from the bundle's reference profile, or why there are none (or why the covers do not fit). */
	readonly #means: Float64Array | MlshipError | undefined;
	#closed = false;

	constructor(
		model: TreeModel,
		pool: WorkerPool | undefined,
		inlineMaxRows: number,
		concurrency: number,
		sync: boolean,
		means?: Float64Array | MlshipError,
	) {
		this.signature = model.signature;
		this.#means = means;
		this.#model = model;
		this.#pool = pool;
		this.#inlineMaxRows = inlineMaxRows;
		this.concurrency = concurrency;
		this.bytes = estimateBytes(model);
		this.#sync = sync;
		if (sync) {
			this.predictSync = (inputs, outputs) => this.#run(inputs, outputs);
			this.explainSync = (inputs) => this.#explain(inputs);
		}
	}

	predictSync?: (inputs: Tensor[], outputs: readonly string[]) => Tensor[];
	explainSync?: (inputs: Tensor[]) => Explanation;

	/** Explains on the calling thread. */
	#explain(inputs: Tensor[]): Explanation {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		if (this.#means instanceof MlshipError) throw this.#means;
		return explainTree(this.#model, inputs, this.#means);
	}

	#wanted(outputs?: readonly string[]): readonly string[] {
		return outputs && outputs.length > 0
			? outputs
			: this.signature.outputs.map((o) => o.name);
	}

	#run(inputs: Tensor[], outputs: readonly string[]): Tensor[] {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		return predictTree(this.#model, inputs, this.#wanted(outputs));
	}

	async predict(
		inputs: Tensor[],
		outputs?: readonly string[],
		busy = false,
	): Promise<Tensor[]> {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		const rows = inputs[0]?.shape[0] ?? 0;
		if (!this.#pool || this.#sync || (rows <= this.#inlineMaxRows && !busy))
			return this.#run(inputs, this.#wanted(outputs));
		return this.#pool.call<Tensor[]>({
			inputs,
			outputs: this.#wanted(outputs),
		});
	}

	/** Exact SHAP values of a batch (raw margin); see explainTree. */
	async explain(inputs: Tensor[]): Promise<Explanation> {
		if (this.#means instanceof MlshipError) throw this.#means;
		const rows = inputs[0]?.shape[0] ?? 0;
		// Linear: one multiply-add per value, always inline.
		if (
			this.#closed ||
			this.#model.body.kind === "linear" ||
			!this.#pool ||
			this.#sync ||
			rows <= this.#inlineMaxRows
		)
			return this.#explain(inputs);
		return this.#pool.call<Explanation>({ op: "explain", inputs });
	}

	async unload(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		await this.#pool?.close();
	}
}

/**
 * A linear model's feature means from the bundle's reference profile (`profile` in mlship.yaml), for exact
 * explanations; the error saying why when the profile cannot give them (the model still loads and predicts).
 */
function linearMeans(
	model: TreeModel,
	bundle: Bundle,
): Float64Array | MlshipError | undefined {
	const ref = bundle.manifest.profile;
	if (model.body.kind !== "linear" || !ref) return undefined;
	const where = `${bundle.source}: ${ref.path}`;
	try {
		return featureMeans(
			model,
			parseProfile(bundle.files.get(ref.path) ?? new Uint8Array(), where),
			where,
		);
	} catch (err) {
		return toMlshipError(err);
	}
}

/**
 * The model with the node covers of the bundle's covers.json (counted from reference data by `bundle init
 * --reference`) when it has one; the error saying why when they do not fit the model (it still loads and predicts).
 */
function bundleCovers(
	model: TreeModel,
	bundle: Bundle,
): TreeModel | MlshipError {
	const ref = bundle.manifest.covers;
	if (!ref) return model;
	try {
		return withCovers(
			model,
			bundle.files.get(ref.path) ?? new Uint8Array(),
			bundle.manifest.artifact.sha256,
			`${bundle.source}: ${ref.path}`,
		);
	} catch (err) {
		return toMlshipError(err);
	}
}

/** Runs tree ensembles and linear models natively (no onnxruntime): XGBoost JSON, LightGBM text, PMML, ONNX-ML. */
export const treesRuntime: Runtime = {
	name: "trees",
	platform: TREES_PLATFORM,
	async describe(bytes: Uint8Array, source: string) {
		return { signature: readTreeModel(bytes, source).signature, skipped: [] };
	},
	async load(bundle: Bundle, opts: LoadOptions = {}): Promise<LoadedModel> {
		const ex = bundle.manifest.executor ?? {};
		const mode = opts.mode ?? ex.mode ?? "auto";
		const bytes = artifactBytes(bundle);
		const read = nameFeatures(
			loadTreeModel(bytes, bundle.source, bundle.manifest.signature),
			bundle.manifest,
		);
		const covered = bundleCovers(read, bundle);
		const model = covered instanceof MlshipError ? read : covered;
		const means =
			covered instanceof MlshipError ? covered : linearMeans(model, bundle);
		const inlineMaxRows = opts.inlineMaxRows ?? ex.inline_max_rows ?? 64;
		if (mode === "inline" || mode === "blocking")
			return new TreesModel(
				model,
				undefined,
				inlineMaxRows,
				1,
				mode === "blocking",
				means,
			);
		const workers =
			opts.shared?.workers ?? opts.workers ?? ex.workers ?? defaultWorkers(1);
		const pool = await WorkerPool.start(
			WORKER_URL,
			{
				bytes,
				source: bundle.source,
				manifest: {
					signature: bundle.manifest.signature,
					...(bundle.manifest.features
						? { features: bundle.manifest.features }
						: {}),
				},
				// covers counted from reference data (covers.json), laid on in the worker as here
				...(model !== read && bundle.manifest.covers
					? {
							covers: bundle.files.get(bundle.manifest.covers.path),
							sha256: bundle.manifest.artifact.sha256,
						}
					: {}),
			},
			workers,
		);
		return new TreesModel(
			model,
			pool,
			mode === "pool" ? -1 : inlineMaxRows,
			workers,
			false,
			means,
		);
	},
};
