// The Open Inference Protocol datatypes: names, byte sizes and the typed arrays that carry them.

/** Every datatype of the Open Inference Protocol v2. */
export const DATATYPES = [
	"BOOL",
	"UINT8",
	"UINT16",
	"UINT32",
	"UINT64",
	"INT8",
	"INT16",
	"INT32",
	"INT64",
	"FP16",
	"FP32",
	"FP64",
	"BYTES",
] as const;

export type Datatype = (typeof DATATYPES)[number];

/** The JS container of one datatype's values: a typed array, or an array of byte strings for BYTES. */
export type TensorData =
	| Uint8Array
	| Uint16Array
	| Uint32Array
	| BigUint64Array
	| Int8Array
	| Int16Array
	| Int32Array
	| BigInt64Array
	| Float32Array
	| Float64Array
	| string[];

type ArrayCtor =
	| Uint8ArrayConstructor
	| Uint16ArrayConstructor
	| Uint32ArrayConstructor
	| BigUint64ArrayConstructor
	| Int8ArrayConstructor
	| Int16ArrayConstructor
	| Int32ArrayConstructor
	| BigInt64ArrayConstructor
	| Float32ArrayConstructor
	| Float64ArrayConstructor;

interface DatatypeInfo {
	/** Bytes per element on the wire (0 for BYTES: variable). */
	readonly size: number;
	/** Typed array that holds the values in memory (FP16 is kept as raw Uint16 bits; BOOL as 0/1 bytes). */
	readonly array: ArrayCtor | null;
	/** The ONNX tensor element type name used by onnxruntime. */
	readonly onnx: string;
	readonly kind: "bool" | "int" | "bigint" | "float" | "half" | "bytes";
}

export const DATATYPE_INFO: Readonly<Record<Datatype, DatatypeInfo>> = {
	BOOL: { size: 1, array: Uint8Array, onnx: "bool", kind: "bool" },
	UINT8: { size: 1, array: Uint8Array, onnx: "uint8", kind: "int" },
	UINT16: { size: 2, array: Uint16Array, onnx: "uint16", kind: "int" },
	UINT32: { size: 4, array: Uint32Array, onnx: "uint32", kind: "int" },
	UINT64: { size: 8, array: BigUint64Array, onnx: "uint64", kind: "bigint" },
	INT8: { size: 1, array: Int8Array, onnx: "int8", kind: "int" },
	INT16: { size: 2, array: Int16Array, onnx: "int16", kind: "int" },
	INT32: { size: 4, array: Int32Array, onnx: "int32", kind: "int" },
	INT64: { size: 8, array: BigInt64Array, onnx: "int64", kind: "bigint" },
	FP16: { size: 2, array: Uint16Array, onnx: "float16", kind: "half" },
	FP32: { size: 4, array: Float32Array, onnx: "float32", kind: "float" },
	FP64: { size: 8, array: Float64Array, onnx: "float64", kind: "float" },
	BYTES: { size: 0, array: null, onnx: "string", kind: "bytes" },
};

/** True when `s` names an OIP datatype. */
export function isDatatype(s: string): s is Datatype {
	return Object.hasOwn(DATATYPE_INFO, s);
}

/** Allocates a zeroed container for `n` values of `datatype`. */
export function allocate(datatype: Datatype, n: number): TensorData {
	const info = DATATYPE_INFO[datatype];
	return info.array === null
		? new Array<string>(n).fill("")
		: new info.array(n);
}

const ONNX_TO_OIP: Readonly<Record<string, Datatype>> = Object.fromEntries(
	Object.entries(DATATYPE_INFO).map(([k, v]) => [v.onnx, k as Datatype]),
);

/** Maps an onnxruntime element type ('float32', 'string', ...) to its OIP datatype, or undefined. */
export function datatypeFromOnnx(onnxType: string): Datatype | undefined {
	return ONNX_TO_OIP[onnxType];
}

/** Number of elements of a concrete shape (every dim ≥ 0). */
export function elementCount(shape: readonly number[]): number {
	let n = 1;
	for (const d of shape) n *= d;
	return n;
}

/** IEEE-754 half (as its 16 bits) → number. */
export function halfToFloat(h: number): number {
	const s = h & 0x8000 ? -1 : 1;
	const e = (h >> 10) & 0x1f;
	const f = h & 0x3ff;
	if (e === 0) return s * 2 ** -14 * (f / 1024);
	if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
	return s * 2 ** (e - 15) * (1 + f / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** number → IEEE-754 half bits (round to nearest even). */
export function floatToHalf(v: number): number {
	f32[0] = v;
	const x = u32[0] as number;
	const sign = (x >>> 16) & 0x8000;
	const exp = (x >>> 23) & 0xff;
	let mant = x & 0x7fffff;
	if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
	let e = exp - 127 + 15;
	if (e >= 0x1f) return sign | 0x7c00;
	if (e <= 0) {
		if (e < -10) return sign;
		mant |= 0x800000;
		const shift = 14 - e;
		let half = mant >> shift;
		const rem = mant & ((1 << shift) - 1);
		const mid = 1 << (shift - 1);
		if (rem > mid || (rem === mid && half & 1)) half++;
		return sign | half;
	}
	let half = (e << 10) | (mant >> 13);
	const rem = mant & 0x1fff;
	if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
	if ((half & 0x7c00) === 0x7c00) e = 0x1f;
	return sign | half;
}
