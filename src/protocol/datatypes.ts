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

// FP16 conversions. Node 24 has Float16Array (correctly rounded, in V8); Node 22, which
// `engines` still admits, has it only behind --js-float16array, so a fallback stays, and it
// rounds the number (a double) once, straight to half: going through float32 first rounds
// twice and lands 1 ulp off (1 + 2^-11 + 2^-40 must give 1.0009765625, not 1).
type Half = { [i: number]: number; readonly buffer: ArrayBufferLike };
const F16 = (
	globalThis as unknown as { Float16Array?: new (n: number) => Half }
).Float16Array;
const f16 = F16 === undefined ? undefined : new F16(1);
const u16 = f16 === undefined ? undefined : new Uint16Array(f16.buffer);
const f64 = new Float64Array(1);
const u32x2 = new Uint32Array(f64.buffer);
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word is [1]

/** IEEE-754 half (as its 16 bits) → number. */
export function halfToFloat(h: number): number {
	if (f16 !== undefined && u16 !== undefined) {
		u16[0] = h;
		return f16[0] as number;
	}
	return halfToFloatFallback(h);
}

/** {@link halfToFloat} without Float16Array (exact: every half is a double). */
export function halfToFloatFallback(h: number): number {
	const s = h & 0x8000 ? -1 : 1;
	const e = (h >> 10) & 0x1f;
	const f = h & 0x3ff;
	if (e === 0) return s * 2 ** -14 * (f / 1024);
	if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
	return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** number → IEEE-754 half bits, rounded once to nearest, ties to even. */
export function floatToHalf(v: number): number {
	if (f16 !== undefined && u16 !== undefined) {
		f16[0] = v;
		return u16[0] as number;
	}
	return floatToHalfFallback(v);
}

/**
 * {@link floatToHalf} without Float16Array: scales |v| by the half ulp of its binade (a
 * power of two, so exact) and rounds that to an integer, ties to even.
 */
export function floatToHalfFallback(v: number): number {
	if (Number.isNaN(v)) return 0x7e00;
	const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
	const a = Math.abs(v);
	if (a >= 65520) return sign | 0x7c00; // 65520 = 65504 + ulp/2 rounds (to even) to infinity
	f64[0] = a;
	// binade of a: 2^E <= a < 2^(E+1); halves below 2^-14 are subnormal with ulp 2^-24
	const E = Math.max(((u32x2[HIGH] as number) >>> 20) - 1023, -14);
	const q = a * 2 ** (10 - E);
	let n = Math.floor(q);
	const rest = q - n;
	if (rest > 0.5 || (rest === 0.5 && n & 1)) n++;
	// n is the significand with its implicit 1 (n >= 1024 for a normal), so adding it to the
	// exponent field carries correctly: n = 2048 moves to the next binade, 1024 below 2^-14
	// is the smallest normal, and n < 1024 is a subnormal (E clamped to -14 adds nothing)
	return sign | (((E + 14) << 10) + n);
}
