// The ONNX runtime: onnxruntime-node sessions, inline on the calling thread or on a worker-thread pool.
import { artifactBytes, type Bundle } from "../../bundle/bundle.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature, Tensor } from "../../protocol/types.ts";
import { defaultWorkers, WorkerPool } from "../pool.ts";
import type { LoadedModel, LoadOptions, Runtime } from "../types.ts";
import {
	createSession,
	type OrtSession,
	runSession,
	sessionSignature,
} from "./session.ts";
import type { PoolSlot } from "./shared-pool.ts";
import { WORKER_URL } from "./worker-url.ts";

/** Checks that the manifest's signature names tensors the graph really has, with the same datatypes. */
export function checkSignature(
	declared: Signature,
	graph: Signature,
	source: string,
): void {
	for (const [kind, decl, real] of [
		["input", declared.inputs, graph.inputs],
		["output", declared.outputs, graph.outputs],
	] as const) {
		const byName = new Map(real.map((t) => [t.name, t]));
		for (const t of decl) {
			const g = byName.get(t.name);
			if (!g)
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`${source}: manifest ${kind} '${t.name}' is not in the ONNX graph (graph ${kind}s: ${real.map((x) => x.name).join(", ")})`,
				);
			if (g.datatype !== t.datatype)
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`${source}: manifest says ${kind} '${t.name}' is ${t.datatype} but the graph has ${g.datatype}`,
				);
		}
	}
	const declaredInputs = new Set(declared.inputs.map((t) => t.name));
	for (const g of graph.inputs)
		if (!declaredInputs.has(g.name))
			throw new MlshipError(
				"MLSHIP_INVALID_BUNDLE",
				`${source}: graph input '${g.name}' is missing from the manifest signature`,
			);
}

class OnnxModel implements LoadedModel {
	readonly signature: Signature;
	readonly #inline: OrtSession | undefined;
	readonly #pool: PoolSlot | undefined;
	readonly #inlineMaxRows: number;
	#closed = false;

	constructor(
		signature: Signature,
		inline: OrtSession | undefined,
		pool: PoolSlot | undefined,
		inlineMaxRows: number,
	) {
		this.signature = signature;
		this.#inline = inline;
		this.#pool = pool;
		this.#inlineMaxRows = inlineMaxRows;
	}

	async predict(
		inputs: Tensor[],
		outputs?: readonly string[],
		busy = false,
	): Promise<Tensor[]> {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		// Inputs and output names were checked against the signature by the caller (Model.predictTensors).
		const rows = inputs[0]?.shape[0] ?? 0;
		const wanted =
			outputs && outputs.length > 0
				? outputs
				: this.signature.outputs.map((o) => o.name);
		// Small batches run inline (cheaper than a thread hop) unless more work waits: then the calling
		// thread has better things to do (parse and answer requests) and the pool takes the batch.
		if (this.#inline && (!this.#pool || (rows <= this.#inlineMaxRows && !busy)))
			return runSession(this.#inline, inputs, wanted);
		return (this.#pool as PoolSlot).call<Tensor[]>({
			inputs,
			outputs: wanted,
		});
	}

	async unload(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		await Promise.all([this.#inline?.release(), this.#pool?.close()]);
	}
}

/** Runs ONNX models (including ONNX-ML tree, linear and string ops) with onnxruntime-node. */
export const onnxRuntime: Runtime = {
	name: "onnx",
	async load(bundle: Bundle, opts: LoadOptions = {}): Promise<LoadedModel> {
		const ex = bundle.manifest.executor ?? {};
		const mode = opts.mode ?? ex.mode ?? "auto";
		const threads = opts.intraOpThreads ?? ex.intra_op_threads ?? 1;
		const bytes = artifactBytes(bundle);
		const session = await createSession(bytes, threads);
		try {
			checkSignature(
				bundle.manifest.signature,
				sessionSignature(session).signature,
				bundle.source,
			);
		} catch (err) {
			await session.release();
			throw err;
		}
		let pool: PoolSlot | undefined;
		if (mode !== "inline") {
			const workers = opts.workers ?? ex.workers ?? defaultWorkers(threads);
			try {
				pool = opts.shared
					? await opts.shared.add(bytes, threads)
					: await WorkerPool.start(
							WORKER_URL,
							{ bytes, intraOpThreads: threads },
							workers,
						);
			} catch (err) {
				await session.release();
				throw err;
			}
		}
		let inline: OrtSession | undefined = session;
		if (mode === "pool") {
			await session.release();
			inline = undefined;
		}
		return new OnnxModel(
			bundle.manifest.signature,
			inline,
			pool,
			opts.inlineMaxRows ?? ex.inline_max_rows ?? 64,
		);
	},
};
