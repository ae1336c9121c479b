// A session the calling thread runs synchronously. onnxruntime-node's native run is synchronous; its JavaScript
// wrapper only defers it to a later turn (setImmediate) to return a promise. SQL functions must answer
// synchronously, so blocking mode calls the native session directly on the calling thread: no worker thread, no
// copy of the inputs and outputs between threads, no wake-up per call.
import { createRequire } from "node:module";
import type ort from "onnxruntime-node";
import { MlshipError, toMlshipError } from "../../protocol/errors.ts";
import type { Tensor } from "../../protocol/types.ts";
import { feedsOf, outputsOf } from "./session.ts";

interface NativeSession {
	loadModel(
		buffer: ArrayBuffer,
		offset: number,
		length: number,
		options: object,
	): void;
	run(
		feeds: Record<string, ort.Tensor>,
		fetches: Record<string, null>,
		options: object,
	): Record<string, ort.Tensor>;
	dispose(): void;
}

interface Binding {
	binding: { InferenceSession: new () => NativeSession };
	initOrt(): void;
}

/** The native binding onnxruntime-node's own backend uses, or undefined when it is not laid out as expected. */
function nativeBinding(): Binding | undefined {
	try {
		const b = createRequire(import.meta.url)(
			"onnxruntime-node/dist/binding.js",
		) as Partial<Binding>;
		if (
			typeof b.initOrt !== "function" ||
			typeof b.binding?.InferenceSession !== "function"
		)
			return undefined;
		return b as Binding;
	} catch {
		return undefined;
	}
}

export class SyncSession {
	readonly #native: NativeSession;
	#closed = false;

	private constructor(native: NativeSession) {
		this.#native = native;
	}

	/**
	 * A session on `bytes` with the options every mlship session has, or undefined when this onnxruntime-node
	 * has no native session to call (the caller then runs the model on a worker thread).
	 */
	static open(
		bytes: Uint8Array,
		intraOpThreads: number,
	): SyncSession | undefined {
		const b = nativeBinding();
		if (!b) return undefined;
		b.initOrt();
		const native = new b.binding.InferenceSession();
		if (
			typeof native.loadModel !== "function" ||
			typeof native.run !== "function" ||
			typeof native.dispose !== "function"
		)
			return undefined;
		native.loadModel(
			bytes.buffer as ArrayBuffer,
			bytes.byteOffset,
			bytes.byteLength,
			{
				intraOpNumThreads: intraOpThreads,
				interOpNumThreads: 1,
				executionMode: "sequential",
				graphOptimizationLevel: "all",
				executionProviders: [],
			},
		);
		return new SyncSession(native);
	}

	/** Runs the model on validated inputs on this thread and returns the requested outputs. */
	run(inputs: Tensor[], outputs: readonly string[]): Tensor[] {
		if (this.#closed)
			throw new MlshipError("MLSHIP_CLOSED", "the model has been unloaded");
		const fetches: Record<string, null> = {};
		for (const name of outputs) fetches[name] = null;
		let result: Record<string, ort.Tensor>;
		try {
			result = this.#native.run(feedsOf(inputs), fetches, {});
		} catch (err) {
			throw toMlshipError(err);
		}
		return outputsOf(result, outputs);
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#native.dispose();
	}
}
