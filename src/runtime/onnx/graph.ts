// Reads what onnxruntime does not expose from an ONNX graph: the categories its encoders accept, per input column.
import protobuf from "protobufjs";
import { ONNX_PROTO } from "../../protocol/onnx-proto.ts";
import type { InputCategories } from "../types.ts";

type Int64 = number | { toString(): string };
interface Attribute {
	name: string;
	i?: Int64;
	t?: TensorMsg;
	ints?: Int64[];
	strings?: Uint8Array[];
}
interface TensorMsg {
	dims?: Int64[];
	data_type?: number;
	int32_data?: number[];
	int64_data?: Int64[];
	name?: string;
	raw_data?: Uint8Array;
}
interface NodeMsg {
	input?: string[];
	output?: string[];
	op_type?: string;
	attribute?: Attribute[];
	domain?: string;
}
interface ValueInfo {
	name?: string;
	type?: {
		tensor_type?: {
			elem_type?: number;
			shape?: { dim?: { dim_value?: Int64; dim_param?: string }[] };
		};
	};
}
interface ModelMsg {
	graph?: { node?: NodeMsg[]; initializer?: TensorMsg[]; input?: ValueInfo[] };
}

let modelType: protobuf.Type | undefined;

/** The categories one column of a graph input may take, and whether another value makes the model fail. */
export type { InputCategories };

/** One column of a tensor traced back to a graph input, or undefined when the graph computes it. */
type Column = { input: string; column: number } | undefined;

const toNum = (v: Int64 | undefined): number =>
	v === undefined ? 0 : typeof v === "number" ? v : Number(v.toString());

const decoder = new TextDecoder("utf-8", { fatal: false });

/** Integer values of a constant tensor (INT64 = 7, INT32 = 6), from raw_data or the typed fields. */
function intValues(t: TensorMsg): number[] | undefined {
	if (t.data_type === 7) {
		if (t.raw_data && t.raw_data.byteLength > 0) {
			const raw = t.raw_data;
			if (raw.byteLength % 8 !== 0) return undefined;
			const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
			return Array.from({ length: raw.byteLength / 8 }, (_, k) =>
				Number(view.getBigInt64(k * 8, true)),
			);
		}
		return (t.int64_data ?? []).map(toNum);
	}
	if (t.data_type === 6) {
		if (t.raw_data && t.raw_data.byteLength > 0) {
			const raw = t.raw_data;
			if (raw.byteLength % 4 !== 0) return undefined;
			const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
			return Array.from({ length: raw.byteLength / 4 }, (_, k) =>
				view.getInt32(k * 4, true),
			);
		}
		return t.int32_data ?? [];
	}
	return undefined;
}

/** ai.onnx.ml encoders and their attributes holding the known values: [strings, int64s]. */
const ENCODERS: Record<string, [string, string] | undefined> = {
	OneHotEncoder: ["cats_strings", "cats_int64s"],
	LabelEncoder: ["keys_strings", "keys_int64s"],
	CategoryMapper: ["cats_strings", "cats_int64s"],
};

/** Ops that hand their first input's columns through unchanged (in column terms). */
const PASS_THROUGH = new Set(["Identity", "Cast", "Reshape", "Flatten"]);

/**
 * Reads the categories of an ONNX model's categorical inputs from its encoders (ai.onnx.ml `OneHotEncoder`
 * `cats_strings`/`cats_int64s`, `LabelEncoder` `keys_strings`/`keys_int64s`, `CategoryMapper`), traced back to
 * the graph input column each encoder reads through Identity, Cast, Reshape, Flatten, Concat (last axis),
 * ArrayFeatureExtractor and Gather (axis 1) with constant indices. Columns whose provenance is not plain (computed
 * from several inputs) are left out. Returns nothing for a model without such encoders.
 * @example const cats = readOnnxCategories(bytes); // [{ input: "sex", column: 0, values: ["female", "male"], strict: true }]
 */
export function readOnnxCategories(bytes: Uint8Array): InputCategories[] {
	modelType ??= protobuf
		.parse(ONNX_PROTO, { keepCase: true })
		.root.lookupType("onnx.ModelProto");
	const model = modelType.decode(bytes) as unknown as ModelMsg;
	const graph = model.graph;
	if (!graph) return [];
	const nodes = graph.node ?? [];
	if (!nodes.some((n) => n.domain === "ai.onnx.ml")) return [];

	const constants = new Map<string, number[]>();
	for (const t of graph.initializer ?? []) {
		const v = t.name ? intValues(t) : undefined;
		if (v && t.name) constants.set(t.name, v);
	}
	const producer = new Map<string, NodeMsg>();
	for (const n of nodes) {
		for (const o of n.output ?? []) producer.set(o, n);
		if (n.op_type === "Constant" && (n.domain ?? "") === "") {
			const t = n.attribute?.find((a) => a.name === "value")?.t;
			const v = t ? intValues(t) : undefined;
			const out = n.output?.[0];
			if (v && out) constants.set(out, v);
		}
	}
	const inputs = new Map<string, { width: number; integer: boolean }>();
	for (const vi of graph.input ?? []) {
		if (!vi.name || constants.has(vi.name)) continue;
		const tt = vi.type?.tensor_type;
		const dims = tt?.shape?.dim ?? [];
		const last = dims[dims.length - 1];
		const width =
			dims.length >= 2 && last && last.dim_value !== undefined
				? toNum(last.dim_value)
				: 1;
		// onnx TensorProto.DataType: 2..7 and 12, 13 are integers (uint8..int64, uint32, uint64)
		const et = tt?.elem_type ?? 0;
		inputs.set(vi.name, {
			width: width > 0 ? width : 1,
			integer: (et >= 2 && et <= 7) || et === 12 || et === 13,
		});
	}

	const memo = new Map<string, Column[] | undefined>();
	const columns = (name: string, depth = 0): Column[] | undefined => {
		if (memo.has(name)) return memo.get(name);
		memo.set(name, undefined); // cycles (never valid ONNX) end here
		let out: Column[] | undefined;
		const inp = inputs.get(name);
		if (inp)
			out = Array.from({ length: inp.width }, (_, column) => ({
				input: name,
				column,
			}));
		else {
			const n = producer.get(name);
			const args = n?.input ?? [];
			const first = args[0];
			if (n && first !== undefined && depth < 64) {
				const op = n.op_type ?? "";
				if (PASS_THROUGH.has(op)) out = columns(first, depth + 1);
				else if (op === "Concat") {
					const axis = toNum(n.attribute?.find((a) => a.name === "axis")?.i);
					if (axis === 1 || axis === -1) {
						const parts = args.map((a) => columns(a, depth + 1));
						out = parts.every((p) => p !== undefined)
							? parts.flat()
							: undefined;
					}
				} else if (op === "ArrayFeatureExtractor" || op === "Gather") {
					const axis = toNum(n.attribute?.find((a) => a.name === "axis")?.i);
					const idx =
						args[1] === undefined ? undefined : constants.get(args[1]);
					const src = columns(first, depth + 1);
					if (
						src &&
						idx &&
						(op === "ArrayFeatureExtractor" || axis === 1 || axis === -1)
					)
						out = idx.every((k) => k >= 0 && k < src.length)
							? idx.map((k) => src[k])
							: undefined;
				}
			}
		}
		memo.set(name, out);
		return out;
	};

	const found = new Map<string, InputCategories>();
	const add = (
		from: string | undefined,
		strings: Uint8Array[] | undefined,
		ints: Int64[] | undefined,
		strict: boolean,
	) => {
		if (from === undefined) return;
		for (const c of columns(from) ?? []) {
			if (!c) continue;
			const integer = inputs.get(c.input)?.integer ?? false;
			const values: (string | number)[] = integer
				? (ints ?? []).map(toNum)
				: (strings ?? []).map((s) => decoder.decode(s));
			if (values.length === 0) continue;
			if (values.some((v) => typeof v === "number" && !Number.isSafeInteger(v)))
				continue;
			const key = `${c.input}\u0000${c.column}`;
			const had = found.get(key);
			// Two encoders on one column: a strict one decides what the model accepts.
			if (had && (had.strict || !strict)) continue;
			found.set(key, { ...c, values, strict });
		}
	};
	for (const n of nodes) {
		if (n.domain !== "ai.onnx.ml") continue;
		const attr = (name: string) => n.attribute?.find((a) => a.name === name);
		const names = ENCODERS[n.op_type ?? ""];
		if (!names) continue;
		// Only a OneHotEncoder with zeros = 0 fails on an unknown value (the ONNX default is zeros = 1).
		const strict =
			n.op_type === "OneHotEncoder" && toNum(attr("zeros")?.i ?? 1) === 0;
		add(n.input?.[0], attr(names[0])?.strings, attr(names[1])?.ints, strict);
	}
	return [...found.values()].sort((a, b) =>
		a.input === b.input ? a.column - b.column : a.input < b.input ? -1 : 1,
	);
}
