// The file sink's typed fast path (float arrays copied into DuckDB vectors, class names stored as indices and named
// in the final SELECT) writes exactly what the value-by-value path writes, including an index beyond the names.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FileSink } from "../../src/batch/sinks/file.ts";
import type { PredictionColumn } from "../../src/batch/types.ts";
import { outputsToColumns, planTable } from "../../src/codec/table.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { readTable } from "../helpers/files.ts";

const plan = planTable({
	signature: {
		inputs: [{ name: "x", datatype: "FP32", shape: [-1, 1] }],
		outputs: [
			{ name: "label", datatype: "INT64", shape: [-1] },
			{ name: "probabilities", datatype: "FP32", shape: [-1, 2] },
			{ name: "score", datatype: "FP64", shape: [-1] },
		],
	},
	labels: ["no", "yes"],
});

// 5000 rows: more than two DuckDB vectors, so the copy works on slices; index 7 and -1 are beyond the names.
const N = 5000;
const label = BigInt64Array.from({ length: N }, (_, r) =>
	BigInt(r === 4097 ? 7 : r === 2 ? -1 : r % 2),
);
const probs = Float32Array.from({ length: 2 * N }, (_, i) => (i % 7) / 7);
const score = Float64Array.from({ length: N }, (_, r) => r / 3);
const outputs: Tensor[] = [
	{ name: "label", datatype: "INT64", shape: [N], data: label },
	{ name: "probabilities", datatype: "FP32", shape: [N, 2], data: probs },
	{ name: "score", datatype: "FP64", shape: [N], data: score },
];

/** The prediction columns of `outputs`, with (`typed`) or without their typed form. */
function columns(typed: boolean): PredictionColumn[] {
	return outputsToColumns(plan, outputs).map((c) => {
		const datatype = (outputs.find((o) => c.name.startsWith(o.name)) as Tensor)
			.datatype;
		const text = c.name === "label";
		return typed
			? Object.assign(c, { datatype, text })
			: // The value path wants text for a text column (an index beyond the names is a number in `values`).
				{
					name: c.name,
					datatype,
					text,
					values: text ? c.values.map(String) : [...c.values],
				};
	});
}

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-sink-typed-"));
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

async function write(path: string, typed: boolean): Promise<void> {
	const sink = await FileSink.create(path, "parquet");
	try {
		const model = {
			name: "model",
			type: "VARCHAR",
			values: new Array(N).fill("m"),
			constant: { value: "m" },
		};
		await sink.write([model], columns(typed), N);
		await sink.write([model], columns(typed), N);
		await sink.finish();
	} finally {
		await sink.abort();
	}
}

describe("file sink: typed columns", () => {
	it("outputsToColumns keeps float outputs and class indices typed, and builds the same values on read", () => {
		const cols = outputsToColumns(plan, outputs);
		const [l, p0, p1, s] = cols;
		assert.deepEqual(
			cols.map((c) => c.name),
			["label", "probabilities_no", "probabilities_yes", "score"],
		);
		assert.equal(l?.codes?.indices, label);
		assert.ok(p0?.numbers instanceof Float32Array);
		assert.ok(s?.numbers instanceof Float64Array);
		assert.deepEqual(l?.values.slice(0, 4), ["no", "yes", -1, "yes"]);
		assert.equal(l?.values[4097], 7);
		assert.equal(p1?.values[3], probs[7]);
		assert.equal(s?.values[9], 3);
	});

	it("writes the same Parquet file as the value-by-value path", async () => {
		const fast = join(dir, "fast.parquet");
		const slow = join(dir, "slow.parquet");
		await write(fast, true);
		await write(slow, false);
		const a = await readTable(fast);
		const b = await readTable(slow);
		assert.equal(a.length, 2 * N);
		assert.deepEqual(a, b);
		assert.equal(a[0]?.label, "no");
		assert.equal(a[1]?.label, "yes");
		assert.equal(a[2]?.label, "-1");
		assert.equal(a[4097]?.label, "7");
		assert.equal(a[N + 1]?.label, "yes");
		assert.equal(a[3]?.probabilities_yes, probs[7]);
		assert.equal(a[N + 9]?.score, 3);
		assert.equal(a[5]?.model, "m");
	});
});
