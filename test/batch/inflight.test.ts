// A batch job's memory is bounded by the chunks in flight, not by the source: however slow the sink, the scoring loop
// reads at most (MAX_INFLIGHT + 1) chunks ahead of what the sink has taken, and every row still arrives once, in order.
// (bench/batch measures the peak RSS this gives on 10M rows.)
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { MAX_INFLIGHT, scoreSource } from "../../src/batch/score.ts";
import type {
	BatchSink,
	BatchSource,
	KeptColumn,
	PredictionColumn,
	SourceChunk,
} from "../../src/batch/types.ts";
import { loadModel, type Model } from "../../src/model.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const MODEL = "breast-cancer-gbdt";
const g = golden(MODEL);
const FEATURES = Object.keys(g.records[0] as object);
const SOURCE_CHUNK = 1000;
const CHUNKS = 60;
const CHUNK_ROWS = 4096;

let model: Model;
before(async () => {
	model = await loadModel(bundleDir(MODEL));
});
after(async () => {
	await model?.close();
});

/** 60 chunks of 1000 rows: the golden records cycled, column `id` numbering the rows. */
class CountingSource implements BatchSource {
	readonly label = "counting source";
	readonly csv = false;
	read = 0;
	async columns(): Promise<Map<string, string>> {
		return new Map([
			["id", "BIGINT"],
			...FEATURES.map((f): [string, string] => [f, "DOUBLE"]),
		]);
	}
	async total(): Promise<number> {
		return SOURCE_CHUNK * CHUNKS;
	}
	async *chunks(columns: readonly string[]): AsyncIterable<SourceChunk> {
		for (let c = 0; c < CHUNKS; c++) {
			const base = c * SOURCE_CHUNK;
			const col = (i: number) => {
				const name = columns[i] as string;
				return Array.from({ length: SOURCE_CHUNK }, (_, r) =>
					name === "id"
						? base + r
						: (
								g.records[(base + r) % g.records.length] as Record<
									string,
									number
								>
							)[name],
				);
			};
			this.read += SOURCE_CHUNK;
			yield {
				rows: SOURCE_CHUNK,
				source: (i) => {
					const v = col(i);
					return { get: (r) => v[r] };
				},
				values: (i) => col(i),
			};
		}
	}
	async rejected() {
		return [];
	}
	async close(): Promise<void> {}
}

/** A sink that takes its time and records how far the source had read ahead of it at each write. */
class SlowSink implements BatchSink {
	readonly label = "slow sink";
	written = 0;
	ids: number[] = [];
	maxAhead = 0;
	readonly source: CountingSource;
	constructor(source: CountingSource) {
		this.source = source;
	}
	async write(
		kept: readonly KeptColumn[],
		_predictions: readonly PredictionColumn[],
		rows: number,
	): Promise<void> {
		this.maxAhead = Math.max(this.maxAhead, this.source.read - this.written);
		await new Promise((r) => setTimeout(r, 20));
		this.ids.push(...((kept[0] as KeptColumn).values as number[]));
		this.written += rows;
	}
	async finish(): Promise<void> {}
	async abort(): Promise<void> {}
}

describe("batch: memory bounded by chunks in flight", () => {
	it("a slow sink holds the source back to (MAX_INFLIGHT + 1) chunks ahead, and every row arrives once, in order", async () => {
		const source = new CountingSource();
		const sink = new SlowSink(source);
		let inModel = 0;
		let maxInModel = 0;
		const predict = model.predictTensors.bind(model);
		const counted = Object.create(model) as Model;
		counted.predictTensors = async (...args) => {
			maxInModel = Math.max(maxInModel, ++inModel);
			try {
				return await predict(...args);
			} finally {
				inModel--;
			}
		};
		const r = await scoreSource(counted, source, sink, {
			onError: "fail",
			keep: ["id"],
			chunkRows: CHUNK_ROWS,
		});
		assert.equal(r.rowsScored, SOURCE_CHUNK * CHUNKS);
		assert.deepEqual(
			sink.ids,
			Array.from({ length: SOURCE_CHUNK * CHUNKS }, (_, i) => i),
		);
		assert.ok(maxInModel <= MAX_INFLIGHT, `${maxInModel} chunks in the model`);
		// Read ahead of the sink: the chunks in flight plus the one being filled (and one source chunk past it).
		const bound = (MAX_INFLIGHT + 1) * CHUNK_ROWS + SOURCE_CHUNK;
		assert.ok(
			sink.maxAhead <= bound,
			`the source ran ${sink.maxAhead} rows ahead of the sink (bound ${bound})`,
		);
	});
});
