// The trees runtime's bound: the same model file read into the tree representation, one loop of predictTree over
// subarray views of one Float32Array (the same loop as raw.ts, without onnxruntime).
import type { Tensor } from "../../src/protocol/types.ts";
import { predictTree } from "../../src/trees/eval.ts";
import type { TreeModel } from "../../src/trees/ir.ts";

/** Scores every row of `data` (rows × width) in batches of `batch` rows; rows scored and how many got label 1. */
export function scoreAllTrees(
	model: TreeModel,
	data: Float32Array,
	width: number,
	batch: number,
): { rows: number; positives: number } {
	const total = data.length / width;
	let positives = 0;
	for (let start = 0; start < total; start += batch) {
		const n = Math.min(batch, total - start);
		const input: Tensor = {
			name: "float_input",
			datatype: "FP32",
			shape: [n, width],
			data: data.subarray(start * width, (start + n) * width),
		};
		const [label] = predictTree(model, [input], ["label", "probabilities"]);
		const l = label?.data as BigInt64Array;
		for (let i = 0; i < l.length; i++) if (l[i] === 1n) positives++;
	}
	return { rows: total, positives };
}
