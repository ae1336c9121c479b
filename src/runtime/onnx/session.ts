// onnxruntime sessions: creation with explicit threads, our Tensor ↔ ort.Tensor, and graph signatures.
import ort from "onnxruntime-node";
import {
	type Datatype,
	datatypeFromOnnx,
	type TensorData,
} from "../../protocol/datatypes.ts";
import { MlshipError } from "../../protocol/errors.ts";
import type { Signature, Tensor, TensorSpec } from "../../protocol/types.ts";

export type OrtSession = ort.InferenceSession;

/** Creates a session from model bytes with `intraOpThreads` threads (never ORT's all-cores default). */
export async function createSession(
	bytes: Uint8Array,
	intraOpThreads: number,
): Promise<OrtSession> {
	try {
		return await ort.InferenceSession.create(bytes, {
			intraOpNumThreads: intraOpThreads,
			interOpNumThreads: 1,
			executionMode: "sequential",
			graphOptimizationLevel: "all",
		});
	} catch (err) {
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`onnxruntime could not load the model: ${(err as Error).message}`,
			{ cause: err },
		);
	}
}

const REEXPORT_HINT =
	"Its outputs are ZipMap (sequence of maps), which mlship cannot return. Re-export it with ZipMap disabled: " +
	"skl2onnx: to_onnx(model, X, options={id(model): {'zipmap': False}}) (or options={type(model): {'zipmap': False}}); " +
	"onnxmltools: convert_*(..., options={'zipmap': False}) or drop the ZipMap node.";

/**
 * Reads the tensor signature of a session's graph. Non-tensor outputs (ZipMap) are left out and named
 * in `skipped`; a model with no tensor output is rejected with a message that says how to re-export it.
 */
export function sessionSignature(session: OrtSession): {
	signature: Signature;
	skipped: string[];
} {
	const skipped: string[] = [];
	const toSpecs = (
		metas: readonly ort.InferenceSession.ValueMetadata[],
		kind: string,
	): TensorSpec[] => {
		const specs: TensorSpec[] = [];
		for (const m of metas) {
			if (!m.isTensor) {
				if (kind === "input")
					throw new MlshipError(
						"MLSHIP_UNSUPPORTED_MODEL",
						`input '${m.name}' is not a tensor; mlship feeds tensors only`,
					);
				skipped.push(m.name);
				continue;
			}
			const datatype = datatypeFromOnnx(m.type);
			if (!datatype)
				throw new MlshipError(
					"MLSHIP_UNSUPPORTED_MODEL",
					`${kind} '${m.name}' has type ${m.type}, which mlship does not support`,
				);
			specs.push({
				name: m.name,
				datatype,
				shape: m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)),
			});
		}
		return specs;
	};
	const inputs = toSpecs(session.inputMetadata, "input");
	const outputs = toSpecs(session.outputMetadata, "output");
	if (outputs.length === 0)
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`the model has no tensor output. ${REEXPORT_HINT}`,
		);
	return { signature: { inputs, outputs }, skipped };
}

/** Reads the signature of an ONNX model from its bytes. */
export async function readOnnxSignature(
	bytes: Uint8Array,
): Promise<{ signature: Signature; skipped: string[] }> {
	const session = await createSession(bytes, 1);
	try {
		return sessionSignature(session);
	} finally {
		await session.release();
	}
}

/** Our tensor → ort.Tensor (shares the typed array, no copy). */
export function toOrt(t: Tensor): ort.Tensor {
	const type = t.datatype === "BYTES" ? "string" : ONNX_TYPE[t.datatype];
	// The binding takes the same typed arrays we use (bool as Uint8Array, float16 as Uint16Array bits).
	return new ort.Tensor(type as "float32", t.data as Float32Array, t.shape);
}

const ONNX_TYPE: Record<Datatype, string> = {
	BOOL: "bool",
	UINT8: "uint8",
	UINT16: "uint16",
	UINT32: "uint32",
	UINT64: "uint64",
	INT8: "int8",
	INT16: "int16",
	INT32: "int32",
	INT64: "int64",
	FP16: "float16",
	FP32: "float32",
	FP64: "float64",
	BYTES: "string",
};

/** ort.Tensor → our tensor. Typed arrays are copied into their own buffer so they can be transferred. */
export function fromOrt(name: string, t: ort.Tensor): Tensor {
	const datatype = datatypeFromOnnx(t.type);
	if (!datatype)
		throw new MlshipError(
			"MLSHIP_UNSUPPORTED_MODEL",
			`output '${name}' has unsupported type ${t.type}`,
		);
	let data = t.data as TensorData;
	if (datatype === "BOOL" && !(data instanceof Uint8Array))
		data = Uint8Array.from(data as unknown as ArrayLike<number>);
	if (
		!Array.isArray(data) &&
		(data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength)
	)
		data = data.slice();
	if (
		datatype === "FP16" &&
		!(data instanceof Uint16Array) &&
		!Array.isArray(data)
	)
		data = new Uint16Array(data.buffer, data.byteOffset, data.length);
	return { name, datatype, shape: t.dims.map(Number), data };
}

/** Runs a session on validated inputs and returns the requested outputs. */
export async function runSession(
	session: OrtSession,
	inputs: Tensor[],
	outputs: readonly string[],
): Promise<Tensor[]> {
	const result = await session.run(feedsOf(inputs), outputs as string[]);
	return outputsOf(result, outputs);
}

/** Our input tensors as a session's feeds (no copies). */
export function feedsOf(inputs: readonly Tensor[]): Record<string, ort.Tensor> {
	const feeds: Record<string, ort.Tensor> = {};
	for (const t of inputs) feeds[t.name] = toOrt(t);
	return feeds;
}

/** The requested outputs of a session's result, as our tensors. */
export function outputsOf(
	result: Record<string, ort.Tensor | undefined>,
	outputs: readonly string[],
): Tensor[] {
	return outputs.map((name) => {
		const v = result[name];
		if (!v)
			throw new MlshipError(
				"MLSHIP_INTERNAL",
				`model returned no output '${name}'`,
			);
		return fromOrt(name, v as ort.Tensor);
	});
}
