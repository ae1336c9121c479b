// The Runtime interface: how a bundle becomes something that predicts a batch. Every runtime implements it.
import type { Bundle } from "../bundle/types.ts";
import type { Signature, Tensor } from "../protocol/types.ts";
import type { Explanation } from "../trees/explain.ts";

export type { Explanation };

/**
 * Where predict runs: inline (calling thread), pool (worker threads), auto (by batch size), or blocking (one
 * worker thread the caller waits for synchronously: `predictSync`, for SQL engines that call functions
 * synchronously).
 */
export type ExecutionMode = "auto" | "inline" | "pool" | "blocking";

export interface LoadOptions {
	mode?: ExecutionMode;
	/** Worker threads in the pool (default: cores / intraOpThreads, at least 1). */
	workers?: number;
	/** Intra-op threads per session (default 1: workers × threads ≤ cores). */
	intraOpThreads?: number;
	/** In auto mode, batches up to this many rows may run inline (default 64); larger ones go to the pool. */
	inlineMaxRows?: number;
	/**
	 * In auto mode: `auto` (default) runs a batch inline when its cost, measured at load, is at most `inlineMaxUs`
	 * (busy or not); `true` runs batches up to `inlineMaxRows` inline; `false` only while no other work waits.
	 */
	inline?: "auto" | boolean;
	/** `inline: auto`: the longest batch, by its measured cost, that runs on the calling thread (µs, default 40). */
	inlineMaxUs?: number;
	/** Run on these shared worker threads (from the same runtime's `startShared`) instead of a pool per model. */
	shared?: SharedExecutor;
}

/** Worker threads one runtime shares among many loaded models (many-model serving); opaque to the core. */
export interface SharedExecutor {
	/** Threads it runs. */
	readonly workers: number;
	close(): Promise<void>;
}

/** Runtime resources several loaded models hold together, and their estimated size. */
export interface SharedBytes {
	readonly key: string;
	readonly bytes: number;
}

/** A loaded model instance. `predict` always receives a batch (first dimension). */
export interface LoadedModel {
	readonly signature: Signature;
	/** Batches that may run at the same time (the scheduler's runners). */
	readonly concurrency: number;
	/** Estimated memory it holds, in bytes (for memory budgets). */
	readonly bytes: number;
	/**
	 * The part of `bytes` held together with every other loaded model of the same `key` (byte-identical artifacts
	 * share one session): a memory budget counts it once among them. Absent: nothing is shared.
	 */
	readonly shared?: SharedBytes | undefined;
	/**
	 * Runs the model on inputs already validated against `signature` (the model instance does that once per
	 * request, before batching); `outputs` limits which outputs are computed and returned. `busy` says more work is
	 * waiting: the batch then goes to the worker pool even if small, keeping the calling thread free.
	 */
	predict(
		inputs: Tensor[],
		outputs?: readonly string[],
		busy?: boolean,
	): Promise<Tensor[]>;
	/**
	 * Per-feature contributions of a batch (inputs validated against `signature`) that add up to the raw model
	 * output; present when the runtime can explain the model (trees: exact TreeSHAP).
	 */
	explain?(inputs: Tensor[]): Promise<Explanation>;
	/** The same, blocking the calling thread; present when loaded in `blocking` mode. */
	predictSync?(inputs: Tensor[], outputs: readonly string[]): Tensor[];
	/** `explain`, blocking the calling thread; present when loaded in `blocking` mode and the runtime can explain. */
	explainSync?(inputs: Tensor[]): Explanation;
	unload(): Promise<void>;
}

export interface Runtime {
	/** The name a manifest's `runtime` field selects, e.g. "onnx". */
	readonly name: string;
	/** OIP model metadata `platform`, e.g. "onnx_onnxv1". */
	readonly platform: string;
	load(bundle: Bundle, opts?: LoadOptions): Promise<LoadedModel>;
	/** Starts worker threads that many models of this runtime can share (`LoadOptions.shared`). */
	startShared?(
		workers?: number,
		intraOpThreads?: number,
	): Promise<SharedExecutor>;
	/**
	 * Reads the signature of a bare model file (no mlship.yaml); `skipped` names outputs it cannot return.
	 * Bytes that are no model of this runtime fail with MLSHIP_INVALID_BUNDLE naming `source`.
	 */
	describe?(
		bytes: Uint8Array,
		source: string,
	): Promise<{
		signature: Signature;
		skipped: string[];
		/** The categories the model's encoders accept per input column, when the runtime can read them. */
		categories?: InputCategories[];
	}>;
}

/** The categories a model's encoders accept for one input column (read from the model file by its runtime). */
export interface InputCategories {
	/** Graph input name. */
	input: string;
	/** Column of that input (last dimension), 0 for a single-column input. */
	column: number;
	/** Strings for a string input, integers for an integer input, in the encoder's order. */
	values: (string | number)[];
	/**
	 * True when a value outside `values` makes the model fail (ONNX: a OneHotEncoder with `zeros = 0`, which
	 * skl2onnx writes for scikit-learn's handle_unknown='error'); false when the encoder maps it to a default
	 * (LabelEncoder, CategoryMapper, OneHotEncoder with zeros = 1).
	 */
	strict: boolean;
}
