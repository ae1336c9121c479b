// The ONNX runtime: onnxruntime-node sessions, inline on the calling thread or on a worker-thread pool.
import { artifactBytes, type Bundle } from "../../bundle/types.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature, Tensor } from "../../protocol/types.ts";
import { defaultWorkers, WorkerPool } from "../pool.ts";
import type { LoadedModel, LoadOptions, Runtime } from "../types.ts";
import { BlockingSession } from "./blocking.ts";
import { checkSignature } from "./check.ts";
import { readOnnxCategories } from "./graph.ts";
import {
	createSession,
	type OrtSession,
	readOnnxSignature,
	runSession,
	sessionSignature,
} from "./session.ts";
import { type PoolSlot, SharedOnnxPool } from "./shared-pool.ts";
import { WORKER_URL } from "./worker-url.ts";

export { checkSignature };

class OnnxModel implements LoadedModel {
	readonly signature: Signature;
	readonly concurrency: number;
	readonly bytes: number;
	readonly #inline: OrtSession | undefined;
	readonly #pool: PoolSlot | undefined;
	readonly #inlineMaxRows: number;
	#closed = false;

	constructor(
		signature: Signature,
		inline: OrtSession | undefined,
		pool: PoolSlot | undefined,
		inlineMaxRows: number,
		concurrency: number,
		bytes: number,
	) {
		this.signature = signature;
		this.concurrency = concurrency;
		this.bytes = bytes;
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
		// Inputs and output names were checked against the signature by the caller (the model instance).
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

/** A model on one worker thread that the caller waits for synchronously (SQL functions). */
class BlockingOnnxModel implements LoadedModel {
	readonly signature: Signature;
	readonly concurrency = 1;
	readonly bytes: number;
	readonly #session: BlockingSession;

	constructor(signature: Signature, session: BlockingSession, bytes: number) {
		this.signature = signature;
		this.#session = session;
		this.bytes = bytes;
	}

	predictSync(inputs: Tensor[], outputs: readonly string[]): Tensor[] {
		return this.#session.run(inputs, outputs);
	}

	async predict(
		inputs: Tensor[],
		outputs?: readonly string[],
	): Promise<Tensor[]> {
		return this.#session.run(
			inputs,
			outputs && outputs.length > 0
				? outputs
				: this.signature.outputs.map((o) => o.name),
		);
	}

	unload(): Promise<void> {
		return this.#session.close();
	}
}

/**
 * Estimated memory of a loaded model: ~330 KiB of JS state plus, per onnxruntime session (inline and one per
 * worker), ~40 KiB + 5.6 × the artifact's bytes. The per-session part is fitted to RSS growth over 200 loads of
 * each fixture (linear, GBDT, random forest, MLP); the base to bench/lifecycle's RSS growth per model over 1,000
 * loaded family members (459 KiB for the 532-byte iris model), so a budget errs on the safe side.
 */
function estimateBytes(sessions: number, artifact: number): number {
	return 330 * 1024 + sessions * (40 * 1024 + 5.6 * artifact);
}

/** What onnxruntime says of bytes that are no ONNX model at all (not protobuf, empty, or protobuf without a graph). */
const NOT_ONNX =
	/protobuf parsing failed|Model data pointer is null|No graph was found/i;

/** Runs ONNX models (including ONNX-ML tree, linear and string ops) with onnxruntime-node. */
export const onnxRuntime: Runtime = {
	name: "onnx",
	platform: "onnx_onnxv1",
	startShared(workers?: number, intraOpThreads = 1) {
		return SharedOnnxPool.start(workers, intraOpThreads);
	},
	async describe(bytes: Uint8Array, source: string) {
		try {
			const { signature, skipped } = await readOnnxSignature(bytes);
			return { signature, skipped, categories: readOnnxCategories(bytes) };
		} catch (err) {
			if (bytes.length === 0 || NOT_ONNX.test((err as Error).message))
				throw new MlshipError(
					"MLSHIP_INVALID_BUNDLE",
					`not an ONNX model: ${source}${bytes.length === 0 ? " (the file is empty)" : ""}; give the .onnx file your converter wrote (e.g. skl2onnx, tf2onnx, torch.onnx.export)`,
					{ cause: err },
				);
			throw err;
		}
	},
	async load(bundle: Bundle, opts: LoadOptions = {}): Promise<LoadedModel> {
		const ex = bundle.manifest.executor ?? {};
		const mode = opts.mode ?? ex.mode ?? "auto";
		const threads = opts.intraOpThreads ?? ex.intra_op_threads ?? 1;
		const bytes = artifactBytes(bundle);
		if (mode === "blocking")
			return new BlockingOnnxModel(
				bundle.manifest.signature,
				await BlockingSession.start(bundle, { intraOpThreads: threads }),
				estimateBytes(1, bytes.length),
			);
		if (opts.shared && !(opts.shared instanceof SharedOnnxPool))
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				"LoadOptions.shared must come from the onnx runtime's startShared()",
			);
		const workers =
			opts.shared?.workers ??
			opts.workers ??
			ex.workers ??
			defaultWorkers(threads);
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
		const sessions = (inline ? 1 : 0) + (pool ? workers : 0);
		return new OnnxModel(
			bundle.manifest.signature,
			inline,
			pool,
			opts.inlineMaxRows ?? ex.inline_max_rows ?? 64,
			// Only an explicit inline load runs one batch at a time (as before: a bundle's mode does not).
			opts.mode === "inline" ? 1 : workers,
			estimateBytes(sessions, bytes.length),
		);
	},
};
