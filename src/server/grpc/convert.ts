// Protobuf messages of the OIP gRPC service ↔ mlship's OIP types (typed-array tensors, parameters).
import { endianness } from "node:os";
import {
	DATATYPE_INFO,
	DATATYPES,
	type Datatype,
	isDatatype,
	type TensorData,
} from "../../protocol/datatypes.ts";
import { invalidInput } from "../../protocol/errors.ts";
import type {
	InferenceRequest,
	InferenceResponse,
	Parameters,
	Tensor,
} from "../../protocol/types.ts";

// Message shapes as @grpc/proto-loader hands them over with LOADER_OPTIONS (keepCase, int64 as decimal
// strings, bytes as Buffer, oneofs named by `parameter_choice`). Outgoing messages may use numbers for int64.

type Int64 = string | number;

/** `InferParameter` (a oneof of bool, int64, string, double, uint64). */
export interface PbParameter {
	parameter_choice?: string;
	bool_param?: boolean;
	int64_param?: Int64;
	string_param?: string;
	double_param?: number;
	uint64_param?: Int64;
}
export type PbParameters = Record<string, PbParameter>;

/** `InferTensorContents`: one repeated field per datatype family. */
export interface PbContents {
	bool_contents?: boolean[];
	int_contents?: number[];
	int64_contents?: Int64[];
	uint_contents?: number[];
	uint64_contents?: Int64[];
	fp32_contents?: number[];
	fp64_contents?: number[];
	bytes_contents?: Uint8Array[];
}

export interface PbInputTensor {
	name: string;
	datatype: string;
	shape: Int64[];
	parameters?: PbParameters;
	contents?: PbContents | null;
}

export interface PbInferRequest {
	model_name: string;
	model_version?: string;
	id?: string;
	parameters?: PbParameters;
	inputs?: PbInputTensor[];
	outputs?: { name: string; parameters?: PbParameters }[];
	raw_input_contents?: Uint8Array[];
}

export interface PbOutputTensor {
	name: string;
	datatype: string;
	shape: Int64[];
	parameters?: PbParameters;
	contents?: PbContents;
}

export interface PbInferResponse {
	model_name: string;
	model_version: string;
	id: string;
	parameters?: PbParameters;
	outputs: PbOutputTensor[];
	raw_output_contents?: Uint8Array[];
}

type ContentsField = keyof PbContents;

const CONTENTS_FIELDS: readonly ContentsField[] = [
	"bool_contents",
	"int_contents",
	"int64_contents",
	"uint_contents",
	"uint64_contents",
	"fp32_contents",
	"fp64_contents",
	"bytes_contents",
];

/** The `contents` field that carries each datatype; FP16 has none (it travels only as raw bytes). */
const CONTENTS_FIELD: Readonly<Record<Datatype, ContentsField | undefined>> = {
	BOOL: "bool_contents",
	UINT8: "uint_contents",
	UINT16: "uint_contents",
	UINT32: "uint_contents",
	UINT64: "uint64_contents",
	INT8: "int_contents",
	INT16: "int_contents",
	INT32: "int_contents",
	INT64: "int64_contents",
	FP16: undefined,
	FP32: "fp32_contents",
	FP64: "fp64_contents",
	BYTES: "bytes_contents",
};

/** Ranges narrower than the protobuf field (int32/uint32) that carries them. */
const NARROW_RANGE: Partial<Record<Datatype, [number, number]>> = {
	INT8: [-128, 127],
	INT16: [-32768, 32767],
	UINT8: [0, 255],
	UINT16: [0, 65535],
};

// Raw tensor bytes are little-endian on the wire; typed arrays use the host's order.
const HOST_LE = endianness() === "LE";

function swapBytes(b: Uint8Array, size: number): void {
	if (size < 2) return;
	for (let i = 0; i < b.length; i += size)
		for (let a = i, z = i + size - 1; a < z; a++, z--) {
			const t = b[a] as number;
			b[a] = b[z] as number;
			b[z] = t;
		}
}

function asBuffer(b: Uint8Array): Buffer {
	return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
}

function parseShape(where: string, shape: readonly Int64[]): number[] {
	const out = new Array<number>(shape.length);
	for (let k = 0; k < shape.length; k++) {
		const d = Number(shape[k]);
		if (!Number.isSafeInteger(d) || d < 0)
			throw invalidInput(
				`${where}: shape must be a list of non-negative integers, got [${shape.join(", ")}]`,
			);
		out[k] = d;
	}
	return out;
}

function hasContents(c: PbContents | null | undefined): boolean {
	if (!c) return false;
	for (const f of CONTENTS_FIELDS) if ((c[f]?.length ?? 0) > 0) return true;
	return false;
}

function fromContents(
	where: string,
	datatype: Datatype,
	shape: number[],
	n: number,
	c: PbContents,
): TensorData {
	const field = CONTENTS_FIELD[datatype];
	for (const f of CONTENTS_FIELDS)
		if (f !== field && (c[f]?.length ?? 0) > 0)
			throw invalidInput(
				field
					? `${where}: datatype ${datatype} is carried in contents.${field}, got contents.${f}`
					: `${where}: ${datatype} data must be sent in raw_input_contents (there is no contents field for it), got contents.${f}`,
			);
	if (field === undefined) {
		if (n === 0) return new Uint16Array(0);
		throw invalidInput(
			`${where}: ${datatype} data must be sent in raw_input_contents (there is no contents field for it)`,
		);
	}
	const values = c[field] ?? [];
	if (values.length !== n)
		throw invalidInput(
			`${where}: shape [${shape.join(", ")}] needs ${n} elements, contents.${field} has ${values.length}`,
		);
	const info = DATATYPE_INFO[datatype];
	switch (info.kind) {
		case "bool": {
			const out = new Uint8Array(n);
			const v = values as boolean[];
			for (let i = 0; i < n; i++) out[i] = v[i] ? 1 : 0;
			return out;
		}
		case "int": {
			const v = values as number[];
			const range = NARROW_RANGE[datatype];
			if (range)
				for (let i = 0; i < n; i++) {
					const x = v[i] as number;
					if (x < range[0] || x > range[1])
						throw invalidInput(
							`${where}: element ${i}: ${x} is out of range for ${datatype}`,
						);
				}
			return (info.array as Int32ArrayConstructor).from(v);
		}
		case "bigint": {
			const out =
				datatype === "INT64" ? new BigInt64Array(n) : new BigUint64Array(n);
			const v = values as Int64[];
			for (let i = 0; i < n; i++) out[i] = BigInt(v[i] as Int64);
			return out;
		}
		case "float":
			return (info.array as Float64ArrayConstructor).from(values as number[]);
		case "bytes": {
			const v = values as Uint8Array[];
			const out = new Array<string>(n);
			for (let i = 0; i < n; i++)
				out[i] = asBuffer(v[i] as Uint8Array).toString("utf8");
			return out;
		}
		default:
			throw invalidInput(`${where}: ${datatype} cannot be sent in contents`);
	}
}

function fromRawBytes(
	where: string,
	shape: number[],
	n: number,
	raw: Uint8Array,
): string[] {
	const buf = asBuffer(raw);
	const out: string[] = [];
	let off = 0;
	while (off < buf.length) {
		if (out.length >= n)
			throw invalidInput(
				`${where}: shape [${shape.join(", ")}] needs ${n} BYTES elements, raw_input_contents holds more`,
			);
		if (off + 4 > buf.length)
			throw invalidInput(
				`${where}: raw BYTES element ${out.length}: truncated 4-byte length prefix at byte ${off}`,
			);
		const len = buf.readUInt32LE(off);
		off += 4;
		if (len > buf.length - off)
			throw invalidInput(
				`${where}: raw BYTES element ${out.length} declares ${len} bytes but only ${buf.length - off} remain`,
			);
		out.push(buf.toString("utf8", off, off + len));
		off += len;
	}
	if (out.length !== n)
		throw invalidInput(
			`${where}: shape [${shape.join(", ")}] needs ${n} BYTES elements, raw_input_contents holds ${out.length}`,
		);
	return out;
}

function fromRaw(
	where: string,
	datatype: Datatype,
	shape: number[],
	n: number,
	raw: Uint8Array,
): TensorData {
	const info = DATATYPE_INFO[datatype];
	if (info.array === null) return fromRawBytes(where, shape, n, raw);
	const want = n * info.size;
	if (raw.length !== want)
		throw invalidInput(
			`${where}: raw_input_contents has ${raw.length} bytes, shape [${shape.join(", ")}] of ${datatype} needs ${want} (${n} × ${info.size})`,
		);
	// Always a copy: the message buffer must not be shared with (or transferred to) model workers.
	const out = new info.array(n);
	const bytes = new Uint8Array(out.buffer);
	bytes.set(raw);
	if (!HOST_LE) swapBytes(bytes, info.size);
	if (info.kind === "bool")
		for (let i = 0; i < n; i++)
			if ((bytes[i] as number) > 1)
				throw invalidInput(
					`${where}: element ${i}: BOOL bytes must be 0 or 1, got ${bytes[i]}`,
				);
	return out;
}

/** A protobuf input tensor (typed `contents` or its `raw_input_contents` entry) → a typed tensor. */
export function tensorFromPb(
	pb: PbInputTensor,
	raw: Uint8Array | undefined,
): Tensor {
	const where = `input '${pb.name}'`;
	if (!isDatatype(pb.datatype))
		throw invalidInput(
			`${where}: unknown datatype ${JSON.stringify(pb.datatype)} (expected one of ${DATATYPES.join(", ")})`,
		);
	const datatype = pb.datatype;
	const shape = parseShape(where, pb.shape ?? []);
	let n = 1;
	for (const d of shape) n *= d;
	let data: TensorData;
	if (raw !== undefined) {
		if (hasContents(pb.contents))
			throw invalidInput(
				`${where}: both contents and raw_input_contents are given; send one or the other`,
			);
		data = fromRaw(where, datatype, shape, n, raw);
	} else data = fromContents(where, datatype, shape, n, pb.contents ?? {});
	const t: Tensor = { name: pb.name, datatype, shape, data };
	const params = parametersFromPb(pb.parameters);
	if (params) t.parameters = params;
	return t;
}

/** A `ModelInferRequest` → an OIP request; malformed tensors are MLSHIP_INVALID_INPUT naming the input. */
export function requestFromPb(req: PbInferRequest): InferenceRequest {
	const pbInputs = req.inputs ?? [];
	const raw = req.raw_input_contents ?? [];
	if (raw.length > 0 && raw.length !== pbInputs.length)
		throw invalidInput(
			`raw_input_contents has ${raw.length} entries but the request has ${pbInputs.length} inputs; give one per input, in the order of 'inputs'`,
		);
	const inputs = pbInputs.map((pb, k) =>
		tensorFromPb(pb, raw.length > 0 ? raw[k] : undefined),
	);
	const request: InferenceRequest = { inputs };
	if (req.id) request.id = req.id;
	const params = parametersFromPb(req.parameters);
	if (params) request.parameters = params;
	if (req.outputs && req.outputs.length > 0)
		request.outputs = req.outputs.map((o) => {
			const out: { name: string; parameters?: Parameters } = { name: o.name };
			const p = parametersFromPb(o.parameters);
			if (p) out.parameters = p;
			return out;
		});
	return request;
}

/** Tensor data as typed `contents` (INT64/UINT64 as decimal strings: no precision is lost). */
export function contentsFromTensor(t: Tensor): PbContents {
	const field = CONTENTS_FIELD[t.datatype];
	const kind = DATATYPE_INFO[t.datatype].kind;
	if (field === undefined)
		throw invalidInput(
			`output '${t.name}': ${t.datatype} can only be sent as raw bytes`,
		);
	let values: unknown[];
	if (kind === "bool")
		values = Array.from(t.data as Uint8Array, (x) => x !== 0);
	else if (kind === "bigint")
		values = Array.from(t.data as BigInt64Array, (x) => x.toString());
	else if (kind === "bytes")
		values = (t.data as string[]).map((s) => Buffer.from(s, "utf8"));
	else values = Array.from(t.data as Float64Array);
	return { [field]: values };
}

/** Tensor data as raw little-endian bytes (BYTES: 4-byte little-endian length + UTF-8 bytes per element). */
export function rawFromTensor(t: Tensor): Buffer {
	const info = DATATYPE_INFO[t.datatype];
	if (info.array === null) {
		const strings = t.data as string[];
		let total = 0;
		for (const s of strings) total += 4 + Buffer.byteLength(s, "utf8");
		const out = Buffer.allocUnsafe(total);
		let off = 0;
		for (const s of strings) {
			const len = out.write(s, off + 4, "utf8");
			out.writeUInt32LE(len, off);
			off += 4 + len;
		}
		return out;
	}
	const data = t.data as Float64Array;
	if (HOST_LE)
		return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
	const copy = Buffer.from(
		new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
	);
	swapBytes(copy, info.size);
	return copy;
}

/**
 * An OIP response → `ModelInferResponse`. Outputs go in `raw_output_contents` when the request used raw
 * inputs (what tritonclient expects) or when an output has no typed field (FP16); else in typed `contents`.
 */
export function responseToPb(
	res: InferenceResponse,
	rawRequested: boolean,
	requestId: string,
): PbInferResponse {
	const raw =
		rawRequested ||
		res.outputs.some((t) => CONTENTS_FIELD[t.datatype] === undefined);
	const outputs = res.outputs.map((t): PbOutputTensor => {
		const o: PbOutputTensor = {
			name: t.name,
			datatype: t.datatype,
			shape: t.shape,
		};
		if (t.parameters) o.parameters = parametersToPb(t.parameters);
		if (!raw) o.contents = contentsFromTensor(t);
		return o;
	});
	const pb: PbInferResponse = {
		model_name: res.model_name,
		model_version: res.model_version ?? "",
		id: res.id ?? requestId,
		outputs,
	};
	if (res.parameters) pb.parameters = parametersToPb(res.parameters);
	if (raw) pb.raw_output_contents = res.outputs.map(rawFromTensor);
	return pb;
}

const PARAM_CHOICES = [
	"bool_param",
	"int64_param",
	"string_param",
	"double_param",
	"uint64_param",
] as const;

function int64Value(v: Int64): number | string {
	const n = Number(v);
	// Beyond 2^53 a number would round: keep the exact decimal string.
	return Number.isSafeInteger(n) ? n : String(v);
}

/** `map<string, InferParameter>` → Parameters (undefined when empty). */
export function parametersFromPb(
	p: PbParameters | undefined,
): Parameters | undefined {
	if (!p) return undefined;
	let out: Parameters | undefined;
	for (const [key, v] of Object.entries(p)) {
		const choice =
			v.parameter_choice ?? PARAM_CHOICES.find((c) => v[c] !== undefined);
		let value: string | number | boolean;
		switch (choice) {
			case "bool_param":
				value = v.bool_param === true;
				break;
			case "int64_param":
				value = int64Value(v.int64_param ?? 0);
				break;
			case "uint64_param":
				value = int64Value(v.uint64_param ?? 0);
				break;
			case "double_param":
				value = v.double_param ?? 0;
				break;
			case "string_param":
				value = v.string_param ?? "";
				break;
			default:
				continue; // an unset oneof carries no value
		}
		out ??= {};
		out[key] = value;
	}
	return out;
}

/** Parameters → `map<string, InferParameter>`: booleans, integers as int64, other numbers as double, strings. */
export function parametersToPb(p: Parameters): PbParameters {
	const out: PbParameters = {};
	for (const [key, v] of Object.entries(p)) {
		if (typeof v === "boolean") out[key] = { bool_param: v };
		else if (typeof v === "string") out[key] = { string_param: v };
		else if (Number.isSafeInteger(v)) out[key] = { int64_param: v };
		else out[key] = { double_param: v };
	}
	return out;
}
