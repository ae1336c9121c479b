// A batch job hands each encoded chunk to the model's worker threads by reference: the encoder's tensors live in
// SharedArrayBuffers, so posting a chunk shares its memory instead of copying it (bench/batch: 12% of the job's CPU).
// The predictions that come back are still the golden ones, in row order, and a bad row is still dropped by row.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { scoreSource } from "../../src/batch/score.ts";
import type {
	BatchSink,
	BatchSource,
	KeptColumn,
	PredictionColumn,
	SourceChunk,
} from "../../src/batch/types.ts";
import { TableEncoder } from "../../src/codec/table.ts";
import { loadModel, type Model } from "../../src/model.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { assertClose, bundleDir, golden } from "../helpers/fixtures.ts";

const MODEL = "breast-cancer-gbdt";
const g = golden(MODEL);
const FEATURES = Object.keys(g.records[0] as object);
const expected = g.expected as { label: number[]; probabilities: number[][] };
const ROWS = 10 * g.records.length;

let model: Model;
before(async () => {
	// The default pool: chunks cross to worker threads, the path the hand-off changes.
	model = await loadModel(bundleDir(MODEL), { mode: "pool" });
});
after(async () => {
	await model?.close();
});

/** The golden records cycled ROWS times, columns as Float64Array numbers (DuckDB's fast path), in chunks of 500. */
class GoldenSource implements BatchSource {
	readonly label = "golden source";
	readonly csv = false;
	readonly #bad: number | undefined;
	constructor(bad?: number) {
		this.#bad = bad;
	}
	async columns(): Promise<Map<string, string>> {
		return new Map(FEATURES.map((f): [string, string] => [f, "DOUBLE"]));
	}
	async total(): Promise<number> {
		return ROWS;
	}
	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		for (let base = 0; base < ROWS; base += 500) {
			const n = Math.min(500, ROWS - base);
			const col = (i: number) =>
				Float64Array.from({ length: n }, (_, r) =>
					base + r === this.#bad && i === 0
						? Number.NaN
						: ((
								g.records[(base + r) % g.records.length] as Record<
									string,
									number
								>
							)[columns[i] as string] as number),
				);
			yield {
				rows: n,
				source: (i) => {
					const v = col(i);
					return { get: (r) => v[r], numbers: v };
				},
				values: (i) => [...col(i)],
			};
		}
	}
	async rejected() {
		return [];
	}
	async close(): Promise<void> {}
}

class CollectSink implements BatchSink {
	readonly label = "collect";
	labels: unknown[] = [];
	benign: number[] = [];
	async write(
		_kept: readonly KeptColumn[],
		predictions: readonly PredictionColumn[],
	): Promise<void> {
		const label = predictions.find((p) => p.name === "label");
		const p = predictions.find((c) => c.name === "probabilities_benign");
		assert.ok(label && p, "label and probabilities_benign columns");
		this.labels.push(...label.values);
		this.benign.push(...p.values.map(Number));
	}
	async finish(): Promise<void> {}
	async abort(): Promise<void> {}
}

/** The model, recording whether each batch it was given lives in a SharedArrayBuffer. */
function recording(m: Model): { model: Model; shared: boolean[] } {
	const shared: boolean[] = [];
	const predict = m.predictTensors.bind(m);
	const wrapped = Object.create(m) as Model;
	wrapped.predictTensors = (inputs: Tensor[], ...rest) => {
		for (const t of inputs)
			shared.push(
				!Array.isArray(t.data) && t.data.buffer instanceof SharedArrayBuffer,
			);
		return predict(inputs, ...rest);
	};
	return { model: wrapped, shared };
}

const LABELS = ["malignant", "benign"];

describe("batch: chunks go to the model workers in shared memory", () => {
	it("every batch the model receives is backed by a SharedArrayBuffer, and the predictions are the golden ones in order", async () => {
		const { model: m, shared } = recording(model);
		const sink = new CollectSink();
		const r = await scoreSource(m, new GoldenSource(), sink, {
			onError: "fail",
			keep: [],
			chunkRows: 4096,
		});
		assert.equal(r.rowsScored, ROWS);
		assert.ok(shared.length >= 1);
		assert.deepEqual(
			shared,
			shared.map(() => true),
			"every batch in shared memory",
		);
		assert.equal(sink.labels.length, ROWS);
		for (let row = 0; row < ROWS; row++) {
			const i = row % g.records.length;
			assert.equal(
				sink.labels[row],
				LABELS[expected.label[i] as number],
				`row ${row}`,
			);
			assertClose(
				sink.benign[row] as number,
				(expected.probabilities[i] as number[])[1] as number,
				`row ${row} probabilities_benign`,
			);
		}
	});

	it("with a bad row skipped, the rest keep their golden predictions and their order", async () => {
		const bad = 777;
		const sink = new CollectSink();
		const r = await scoreSource(model, new GoldenSource(bad), sink, {
			onError: "skip",
			keep: [],
			chunkRows: 4096,
		});
		assert.equal(r.rowsScored, ROWS - 1);
		assert.equal(r.rejected.length, 1);
		assert.equal(r.rejected[0]?.row, bad + 1);
		const rows = Array.from({ length: ROWS }, (_, i) => i).filter(
			(i) => i !== bad,
		);
		rows.forEach((row, k) => {
			const i = row % g.records.length;
			assert.equal(
				sink.labels[k],
				LABELS[expected.label[i] as number],
				`row ${row}`,
			);
		});
	});

	it("the encoder's shared tensors hold the same values as its plain ones", () => {
		const plain = new TableEncoder(model.plan, 64);
		const shared = new TableEncoder(model.plan, 64, { shared: true });
		for (const enc of [plain, shared]) {
			FEATURES.forEach((f, fi) => {
				const v = Float64Array.from(
					g.records.slice(0, 64),
					(rec) => (rec as Record<string, number>)[f] as number,
				);
				enc.writeColumn(fi, 64, { get: (r) => v[r], numbers: v });
			});
			enc.commit(64);
		}
		const a = plain.take().tensors[0] as Tensor;
		const b = shared.take().tensors[0] as Tensor;
		assert.ok(!((a.data as Float32Array).buffer instanceof SharedArrayBuffer));
		assert.ok((b.data as Float32Array).buffer instanceof SharedArrayBuffer);
		assert.deepEqual(
			[...(b.data as Float32Array)],
			[...(a.data as Float32Array)],
		);
		assert.deepEqual(b.shape, a.shape);
	});
});
