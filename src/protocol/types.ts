// Open Inference Protocol v2 shapes used inside mlship; `data` is a typed array, never JS number arrays.
import type { Datatype, TensorData } from "./datatypes.ts";

export type Parameters = Record<string, string | number | boolean>;

/** One tensor: OIP `{name, datatype, shape, data}` with data row-major in a typed array. */
export interface Tensor {
	name: string;
	datatype: Datatype;
	shape: number[];
	data: TensorData;
	parameters?: Parameters;
}

/** Name, datatype and shape of a tensor; -1 marks a variable dimension. */
export interface TensorSpec {
	name: string;
	datatype: Datatype;
	shape: number[];
}

/** A model's inputs and outputs. */
export interface Signature {
	inputs: TensorSpec[];
	outputs: TensorSpec[];
}

export interface InferenceRequest {
	id?: string;
	parameters?: Parameters;
	inputs: Tensor[];
	/** Names of the outputs wanted; all when absent. */
	outputs?: { name: string; parameters?: Parameters }[];
}

export interface InferenceResponse {
	model_name: string;
	model_version?: string;
	id?: string;
	parameters?: Parameters;
	outputs: Tensor[];
}
