// Joining requests into one batch along the first dimension, and splitting the outputs back.
import { allocate, type TensorData } from "../protocol/datatypes.ts";
import type { Tensor } from "../protocol/types.ts";

/** Rows (first dimension) of a request's tensors. */
export function rowsOf(inputs: readonly Tensor[]): number {
	return inputs[0]?.shape[0] ?? 0;
}

/** A key that is equal for requests whose tensors can be concatenated (same names, datatypes, inner dims). */
export function batchKey(inputs: readonly Tensor[]): string {
	let k = "";
	for (const t of inputs)
		k += `${t.name}:${t.datatype}:${t.shape.slice(1).join("x")};`;
	return k;
}

/** Concatenates the same-named tensors of several requests (all with one batchKey) along dimension 0. */
export function concatInputs(
	requests: readonly (readonly Tensor[])[],
): Tensor[] {
	const first = requests[0] as readonly Tensor[];
	if (requests.length === 1) return first as Tensor[];
	return first.map((t0, i) => {
		let rows = 0;
		for (const r of requests) rows += (r[i] as Tensor).shape[0] as number;
		const inner = t0.data.length / Math.max(1, t0.shape[0] as number);
		const data = allocate(t0.datatype, rows * inner);
		let at = 0;
		for (const r of requests) {
			const src = (r[i] as Tensor).data;
			if (Array.isArray(data))
				for (let j = 0; j < src.length; j++)
					(data as string[])[at + j] = (src as string[])[j] as string;
			else (data as Float32Array).set(src as Float32Array, at);
			at += src.length;
		}
		return {
			name: t0.name,
			datatype: t0.datatype,
			shape: [rows, ...t0.shape.slice(1)],
			data,
		};
	});
}

/** Rows [start, start + rows) of a batch output. Views share memory with the batch (no copy). */
export function sliceRows(t: Tensor, start: number, rows: number): Tensor {
	const total = t.shape[0] as number;
	if (start === 0 && rows === total) return t;
	const inner = total === 0 ? 0 : t.data.length / total;
	const data: TensorData = Array.isArray(t.data)
		? t.data.slice(start * inner, (start + rows) * inner)
		: (t.data as Float32Array).subarray(start * inner, (start + rows) * inner);
	return {
		name: t.name,
		datatype: t.datatype,
		shape: [rows, ...t.shape.slice(1)],
		data,
	};
}
