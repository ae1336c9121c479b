// The Runtime interface: how a bundle becomes something that predicts a batch.
import type { Bundle } from "../bundle/bundle.ts";
import type { Signature, Tensor } from "../protocol/types.ts";
import type { SharedOnnxPool } from "./onnx/shared-pool.ts";

export interface LoadOptions {
	/** Where predict runs: inline (calling thread), pool (worker threads) or auto (by batch size). */
	mode?: "auto" | "inline" | "pool";
	/** Worker threads in the pool (default: cores / intraOpThreads, at least 1). */
	workers?: number;
	/** onnxruntime intra-op threads per session (default 1: workers × threads ≤ cores). */
	intraOpThreads?: number;
	/** In auto mode, batches up to this many rows run inline (default 64). */
	inlineMaxRows?: number;
	/** Run on these shared worker threads instead of starting a pool for this model (many-model serving). */
	shared?: SharedOnnxPool;
}

/** A loaded model instance. `predict` always receives a batch (first dimension). */
export interface LoadedModel {
	readonly signature: Signature;
	/**
	 * Runs the model on inputs already validated against `signature` (Model.predictTensors does that once per
	 * request, before batching); `outputs` limits which outputs are computed and returned. `busy` says more work is
	 * waiting: the batch then goes to the worker pool even if small, keeping the calling thread free.
	 */
	predict(
		inputs: Tensor[],
		outputs?: readonly string[],
		busy?: boolean,
	): Promise<Tensor[]>;
	unload(): Promise<void>;
}

export interface Runtime {
	readonly name: string;
	load(bundle: Bundle, opts?: LoadOptions): Promise<LoadedModel>;
}
