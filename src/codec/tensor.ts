// OIP JSON tensors ↔ typed arrays for every datatype, and validation of tensors against a signature.
import {
	allocate,
	DATATYPE_INFO,
	type Datatype,
	elementCount,
	floatToHalf,
	halfToFloat,
	isDatatype,
	type TensorData,
} from "../protocol/datatypes.ts";
import { invalidInput } from "../protocol/errors.ts";
import type { Parameters, Signature, Tensor } from "../protocol/types.ts";

/** A tensor as it arrives in OIP JSON: `data` nested or flat. */
export interface JsonTensor {
	name: string;
	datatype: string;
	shape: number[];
	data: unknown;
	parameters?: Parameters;
}

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
	UINT8: [0, 255],
	UINT16: [0, 65535],
	UINT32: [0, 4294967295],
	INT8: [-128, 127],
	INT16: [-32768, 32767],
	INT32: [-2147483648, 2147483647],
};
const BIG_RANGE: Partial<Record<Datatype, [bigint, bigint]>> = {
	UINT64: [0n, 18446744073709551615n],
	INT64: [-9223372036854775808n, 9223372036854775807n],
};

function describe(v: unknown): string {
	if (typeof v === "string")
		return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
	if (typeof v === "bigint") return `${v}`;
	if (Array.isArray(v)) return "an array";
	if (v === null) return "null";
	return typeof v === "object" ? "an object" : String(v);
}

/**
 * Writes one JSON value into `out[i]` as `datatype`; returns an error message or undefined.
 * Rules (OIP JSON): numbers for numeric types (integers must be whole and in range), booleans (or 0/1) for
 * BOOL, strings for BYTES. Nothing else is coerced here: the table codec has the lenient rules.
 */
export function writeJsonValue(
	out: TensorData,
	i: number,
	datatype: Datatype,
	v: unknown,
): string | undefined {
	const kind = DATATYPE_INFO[datatype].kind;
	switch (kind) {
		case "float":
		case "half": {
			if (typeof v !== "number")
				return `expected a number (${datatype}), got ${describe(v)}`;
			(out as Float32Array)[i] = kind === "half" ? floatToHalf(v) : v;
			return;
		}
		case "int": {
			if (typeof v !== "number" || !Number.isInteger(v))
				return `expected an integer (${datatype}), got ${describe(v)}`;
			const [lo, hi] = INT_RANGE[datatype] as [number, number];
			if (v < lo || v > hi) return `${v} is out of range for ${datatype}`;
			(out as Int32Array)[i] = v;
			return;
		}
		case "bigint": {
			if (
				typeof v === "bigint" ||
				(typeof v === "number" && Number.isInteger(v))
			) {
				const b = BigInt(v);
				const [lo, hi] = BIG_RANGE[datatype] as [bigint, bigint];
				if (b < lo || b > hi) return `${v} is out of range for ${datatype}`;
				(out as BigInt64Array)[i] = b;
				return;
			}
			return `expected an integer (${datatype}), got ${describe(v)}`;
		}
		case "bool": {
			if (typeof v === "boolean") (out as Uint8Array)[i] = v ? 1 : 0;
			else if (v === 0 || v === 1) (out as Uint8Array)[i] = v;
			else return `expected a boolean (BOOL), got ${describe(v)}`;
			return;
		}
		case "bytes": {
			if (typeof v !== "string")
				return `expected a string (BYTES), got ${describe(v)}`;
			(out as string[])[i] = v;
			return;
		}
	}
}

/** Decodes an OIP JSON tensor (nested or flat `data`) into a typed tensor; errors name the tensor and index. */
export function tensorFromJson(t: JsonTensor): Tensor {
	const where = `input '${t.name}'`;
	if (!isDatatype(t.datatype))
		throw invalidInput(
			`${where}: unknown datatype ${describe(t.datatype)} (expected one of BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64, BYTES)`,
		);
	if (
		!Array.isArray(t.shape) ||
		!t.shape.every((d) => Number.isInteger(d) && d >= 0)
	)
		throw invalidInput(
			`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`,
		);
	const n = elementCount(t.shape);
	// Flatten at most rank levels (nested data is never deeper than the shape), count, then allocate:
	// hostile nesting or a huge declared shape never costs a deep recursion or a large allocation.
	const flat: unknown[] = !Array.isArray(t.data)
		? [t.data]
		: t.shape.length > 1 && Array.isArray(t.data[0])
			? (t.data as unknown[]).flat(t.shape.length - 1)
			: (t.data as unknown[]);
	if (flat.length !== n && flat.some(Array.isArray))
		throw invalidInput(
			`${where}: data is nested deeper than its shape ${JSON.stringify(t.shape)}`,
		);
	if (flat.length !== n)
		throw invalidInput(
			`${where}: shape ${JSON.stringify(t.shape)} needs ${n} elements, data has ${flat.length}`,
		);
	const out = allocate(t.datatype, n);
	for (let i = 0; i < n; i++) {
		const v = flat[i];
		if (Array.isArray(v))
			throw invalidInput(
				`${where}: data is nested deeper than its shape ${JSON.stringify(t.shape)}`,
			);
		const err = writeJsonValue(out, i, t.datatype as Datatype, v);
		if (err) throw invalidInput(`${where}: element ${i}: ${err}`);
	}
	const tensor: Tensor = {
		name: t.name,
		datatype: t.datatype,
		shape: t.shape,
		data: out,
	};
	if (t.parameters) tensor.parameters = t.parameters;
	return tensor;
}

/** Encodes a tensor as OIP JSON with flat `data` (INT64 beyond 2^53 loses precision, as JSON numbers do). */
export function tensorToJson(t: Tensor): JsonTensor {
	let data: unknown[];
	const kind = DATATYPE_INFO[t.datatype].kind;
	if (kind === "bytes") data = t.data as string[];
	else if (kind === "bigint")
		data = Array.from(t.data as BigInt64Array, Number);
	else if (kind === "half")
		data = Array.from(t.data as Uint16Array, halfToFloat);
	else if (kind === "bool")
		data = Array.from(t.data as Uint8Array, (x) => x !== 0);
	else data = Array.from(t.data as Float32Array);
	const json: JsonTensor = {
		name: t.name,
		datatype: t.datatype,
		shape: t.shape,
		data,
	};
	if (t.parameters) json.parameters = t.parameters;
	return json;
}

/**
 * Checks tensors against a signature: every input present once, no unknown names, datatypes equal,
 * rank and fixed dimensions equal, data length = shape product, one batch size across inputs.
 * Returns the batch size.
 */
export function validateInputs(
	signature: Signature,
	inputs: readonly Tensor[],
): number {
	const specs = new Map(signature.inputs.map((s) => [s.name, s]));
	const seen = new Set<string>();
	let batch = -1;
	for (const t of inputs) {
		const spec = specs.get(t.name);
		if (!spec)
			throw invalidInput(
				`unknown input '${t.name}'; the model takes ${signature.inputs.map((s) => `'${s.name}'`).join(", ")}`,
			);
		if (seen.has(t.name))
			throw invalidInput(`input '${t.name}' is given twice`);
		seen.add(t.name);
		if (t.datatype !== spec.datatype)
			throw invalidInput(
				`input '${t.name}': expected datatype ${spec.datatype}, got ${t.datatype}`,
			);
		const shapeOk =
			t.shape.length === spec.shape.length &&
			spec.shape.every((d, k) => d < 0 || d === t.shape[k]);
		if (!shapeOk)
			throw invalidInput(
				`input '${t.name}': expected shape ${JSON.stringify(spec.shape)} (-1 = any), got ${JSON.stringify(t.shape)}`,
			);
		const n = elementCount(t.shape);
		if (t.data.length !== n)
			throw invalidInput(
				`input '${t.name}': shape ${JSON.stringify(t.shape)} needs ${n} elements, data has ${t.data.length}`,
			);
		const b = t.shape.length > 0 ? (t.shape[0] as number) : 1;
		if (batch >= 0 && b !== batch)
			throw invalidInput(
				`input '${t.name}': batch size ${b} differs from the other inputs' ${batch}`,
			);
		batch = b;
	}
	for (const s of signature.inputs)
		if (!seen.has(s.name))
			throw invalidInput(
				`missing input '${s.name}' (${s.datatype} ${JSON.stringify(s.shape)})`,
			);
	if (batch === 0) throw invalidInput("empty input: the batch has no rows");
	return batch;
}
