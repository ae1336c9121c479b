// OIP v2 REST inference request (JSON, or JSON header + binary tensor data) → validated InferenceRequest.

import { tensorFromJson } from "../../codec/tensor.ts";
import { isDatatype } from "../../protocol/datatypes.ts";
import { invalidInput } from "../../protocol/errors.ts";
import type {
	InferenceRequest,
	Parameters,
	Tensor,
} from "../../protocol/types.ts";
import { dataFromBytes } from "./binary.ts";
import { isObject, kindOf, parseJson, parseParameters } from "./body.ts";

/** A decoded request plus what the transport needs to answer it. */
export interface DecodedInfer {
	request: InferenceRequest;
	/** Whether output `name` goes back as binary data (`binary_data` on the output, else `binary_data_output`). */
	binaryOutput: (name: string) => boolean;
	/** `parameters.timeout` (Triton: microseconds) in milliseconds; undefined when absent or 0. */
	timeoutMs: number | undefined;
}

const DATATYPE_LIST =
	"BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES";

/**
 * Decodes an infer body. `headerLength` is the Inference-Header-Content-Length header: when present, the
 * first that many bytes are JSON and the rest holds the tensors of inputs with `parameters.binary_data_size`,
 * in input order. Every problem is a 400 naming the field or input, with what was expected and what came.
 */
export function decodeInfer(
	body: unknown,
	headerLength: string | string[] | undefined,
): DecodedInfer {
	if (!Buffer.isBuffer(body) || body.length === 0)
		throw invalidInput(
			'the request body is empty: expected an inference request {"inputs": [...]}',
		);
	let jsonEnd = body.length;
	if (headerLength !== undefined) {
		const text = Array.isArray(headerLength) ? headerLength[0] : headerLength;
		if (text === undefined || !/^\d{1,15}$/.test(text.trim()))
			throw invalidInput(
				`Inference-Header-Content-Length must be a byte count, got ${JSON.stringify(text)}`,
			);
		jsonEnd = Number(text.trim());
		if (jsonEnd > body.length)
			throw invalidInput(
				`Inference-Header-Content-Length is ${jsonEnd} but the body has only ${body.length} bytes`,
			);
	}
	const json = parseJson(body, jsonEnd);
	if (!isObject(json))
		throw invalidInput(
			`an inference request must be a JSON object, got ${kindOf(json)}`,
		);
	return decodeInferJson(
		json,
		headerLength === undefined ? undefined : body.subarray(jsonEnd),
		jsonEnd,
	);
}

/**
 * Decodes an inference request already parsed from JSON (a stream message, or the JSON part of a REST body);
 * `binary` holds the tensor bytes that follow a JSON header, `jsonEnd` that header's length (for messages).
 */
export function decodeInferJson(
	json: Record<string, unknown>,
	binary: Buffer | undefined,
	jsonEnd: number,
): DecodedInfer {
	const request: InferenceRequest = { inputs: [] };
	if (json.id !== undefined) {
		if (typeof json.id !== "string")
			throw invalidInput(`id must be a string, got ${kindOf(json.id)}`);
		request.id = json.id;
	}
	let params: Parameters | undefined;
	if (json.parameters !== undefined) {
		params = parseParameters(json.parameters, "parameters");
		request.parameters = params;
	}

	const inputs = json.inputs;
	if (!Array.isArray(inputs) || inputs.length === 0)
		throw invalidInput(
			`inputs must be a non-empty list, got ${inputs === undefined ? "nothing" : kindOf(inputs)}`,
		);
	let offset = 0;
	for (let i = 0; i < inputs.length; i++) {
		const t = decodeInput(inputs[i], i, binary, offset, jsonEnd);
		offset += t.binarySize;
		request.inputs.push(t.tensor);
	}
	if (binary !== undefined && offset !== binary.length)
		throw invalidInput(
			`the body has ${binary.length} bytes after the JSON header but the inputs' binary_data_size add up to ${offset}`,
		);

	let byName: Map<string, boolean> | undefined;
	if (json.outputs !== undefined) {
		const outputs = json.outputs;
		if (!Array.isArray(outputs))
			throw invalidInput(
				`outputs must be a list of {"name": ...}, got ${kindOf(outputs)}`,
			);
		request.outputs = [];
		byName = new Map();
		for (let i = 0; i < outputs.length; i++) {
			const o = outputs[i];
			if (!isObject(o))
				throw invalidInput(`output ${i} must be an object, got ${kindOf(o)}`);
			if (typeof o.name !== "string" || o.name === "")
				throw invalidInput(`output ${i}: name is required`);
			const entry: { name: string; parameters?: Parameters } = {
				name: o.name,
			};
			if (o.parameters !== undefined) {
				const p = parseParameters(
					o.parameters,
					`output '${o.name}' parameters`,
				);
				if (p.binary_data !== undefined) {
					if (typeof p.binary_data !== "boolean")
						throw invalidInput(
							`output '${o.name}' parameters.binary_data must be a boolean`,
						);
					byName.set(o.name, p.binary_data);
					delete p.binary_data;
				}
				if (Object.keys(p).length > 0) entry.parameters = p;
			}
			request.outputs.push(entry);
		}
	}

	let all = false;
	let timeoutMs: number | undefined;
	if (params) {
		const b = params.binary_data_output;
		if (b !== undefined && typeof b !== "boolean")
			throw invalidInput("parameters.binary_data_output must be a boolean");
		all = b === true;
		const us = params.timeout;
		if (us !== undefined) {
			if (typeof us !== "number" || !Number.isInteger(us) || us < 0)
				throw invalidInput(
					`parameters.timeout must be a whole number of microseconds ≥ 0, got ${kindOf(us)}`,
				);
			if (us > 0) timeoutMs = us / 1000;
		}
	}
	const binaryOutput =
		byName === undefined || byName.size === 0
			? () => all
			: (name: string) => byName.get(name) ?? all;
	return { request, binaryOutput, timeoutMs };
}

function decodeInput(
	v: unknown,
	i: number,
	binary: Buffer | undefined,
	offset: number,
	jsonBytes: number,
): { tensor: Tensor; binarySize: number } {
	if (!isObject(v))
		throw invalidInput(`input ${i} must be an object, got ${kindOf(v)}`);
	const name = v.name;
	if (typeof name !== "string" || name === "")
		throw invalidInput(`input ${i}: name is required`);
	const where = `input '${name}'`;
	const datatype = v.datatype;
	if (typeof datatype !== "string")
		throw invalidInput(
			`${where}: datatype is required (one of ${DATATYPE_LIST})`,
		);
	if (!isDatatype(datatype))
		throw invalidInput(
			`${where}: unknown datatype ${JSON.stringify(datatype)} (expected one of ${DATATYPE_LIST})`,
		);
	const shape = v.shape;
	if (
		!Array.isArray(shape) ||
		!shape.every((d) => Number.isSafeInteger(d) && d >= 0)
	)
		throw invalidInput(
			`${where}: shape must be a list of non-negative integers, got ${shape === undefined ? "nothing" : JSON.stringify(shape)}`,
		);
	let n = 1;
	for (const d of shape as number[]) n *= d;

	let parameters: Parameters | undefined;
	let binarySize: number | undefined;
	if (v.parameters !== undefined) {
		parameters = parseParameters(v.parameters, `${where} parameters`);
		const size = parameters.binary_data_size;
		if (size !== undefined) {
			if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
				throw invalidInput(
					`${where}: parameters.binary_data_size must be a byte count, got ${kindOf(size)}`,
				);
			binarySize = size;
			delete parameters.binary_data_size;
			if (Object.keys(parameters).length === 0) parameters = undefined;
		}
	}

	if (binarySize !== undefined) {
		if (binary === undefined)
			throw invalidInput(
				`${where} has parameters.binary_data_size but the request has no Inference-Header-Content-Length header`,
			);
		if (v.data !== undefined)
			throw invalidInput(
				`${where}: give either data or parameters.binary_data_size, not both`,
			);
		if (offset + binarySize > binary.length)
			throw invalidInput(
				`${where}: binary_data_size is ${binarySize} bytes but only ${binary.length - offset} bytes of binary data remain after the JSON header and the inputs before it`,
			);
		const data = dataFromBytes(
			name,
			datatype,
			shape as number[],
			n,
			binary.subarray(offset, offset + binarySize),
		);
		const tensor: Tensor = { name, datatype, shape: shape as number[], data };
		if (parameters) tensor.parameters = parameters;
		return { tensor, binarySize };
	}

	if (v.data === undefined)
		throw invalidInput(
			`${where}: data is required (or parameters.binary_data_size with binary tensor data)`,
		);
	// Every JSON value takes at least one byte, so a larger element count cannot match the data; refusing it
	// here keeps a hostile shape from allocating a huge array before the data is even read.
	if (n > jsonBytes)
		throw invalidInput(
			`${where}: shape ${JSON.stringify(shape)} needs ${n} elements, more than the request carries`,
		);
	// The codec flattens at most rank levels and counts before it allocates, so hostile data is a 400.
	const tensor = tensorFromJson({
		name,
		datatype,
		shape: shape as number[],
		data: v.data,
	});
	if (parameters) tensor.parameters = parameters;
	return { tensor, binarySize: 0 };
}
