// The raw onnxruntime-node bound: one session, one loop of session.run over subarray views of one Float32Array.
import ort from "onnxruntime-node";

/** A session with the same options mlship uses (1 intra-op thread, sequential, all graph optimisations). */
export function createRawSession(
	model: Uint8Array,
): Promise<ort.InferenceSession> {
	return ort.InferenceSession.create(model, {
		intraOpNumThreads: 1,
		interOpNumThreads: 1,
		executionMode: "sequential",
		graphOptimizationLevel: "all",
	});
}

/**
 * Scores every row of `data` (rows × width, row-major) in batches of `batch` rows, no copies of the input.
 * Returns the rows scored and how many got label 1 (a checksum to compare with mlship's output).
 */
export async function scoreAll(
	session: ort.InferenceSession,
	data: Float32Array,
	width: number,
	batch: number,
): Promise<{ rows: number; positives: number }> {
	const total = data.length / width;
	let positives = 0;
	for (let start = 0; start < total; start += batch) {
		const n = Math.min(batch, total - start);
		const view = data.subarray(start * width, (start + n) * width);
		const out = await session.run(
			{ float_input: new ort.Tensor("float32", view, [n, width]) },
			["label", "probabilities"],
		);
		const label = out.label?.data as BigInt64Array;
		for (let i = 0; i < label.length; i++) if (label[i] === 1n) positives++;
	}
	return { rows: total, positives };
}
