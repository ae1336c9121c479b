// inputsToJson: input tensors back to one JSON object per row, across several inputs, BYTES, integers and missing values.
import assert from "node:assert/strict";
import { it } from "node:test";
import type { Manifest } from "../../src/bundle/manifest.ts";
import {
	encodeRecords,
	inputsToJson,
	planTable,
} from "../../src/codec/table.ts";

const manifest = {
	signature: {
		inputs: [
			{ name: "num", datatype: "FP64", shape: [-1, 2] },
			{ name: "cat", datatype: "BYTES", shape: [-1, 1] },
			{ name: "n", datatype: "INT64", shape: [-1, 1] },
		],
		outputs: [{ name: "y", datatype: "FP32", shape: [-1] }],
	},
	features: [
		{ name: "a", input: "num", allow_missing: true },
		{ name: 'b "quoted"', input: "num" },
		{ name: "city", input: "cat" },
		{ name: "count", input: "n" },
	],
} as unknown as Pick<Manifest, "signature" | "features" | "labels">;

it("decodes every feature of every input, row by row, as JSON", () => {
	const plan = planTable(manifest);
	const rows = [
		{ a: 1.5, 'b "quoted"': -2, city: 'Zürich "HB"', count: 7 },
		{ a: null, 'b "quoted"': 1e-7, city: "", count: 9007199254740991 },
	];
	const { tensors, errors } = encodeRecords(plan, rows);
	assert.deepEqual(errors, []);
	const { json, rows: n } = inputsToJson(plan, tensors);
	assert.equal(n, 2);
	// A missing FP64 value (NaN in the tensor) is null in JSON.
	assert.deepEqual(JSON.parse(json), rows);
	// The plan's keys are cached: a second call gives the same text.
	assert.equal(inputsToJson(plan, tensors).json, json);
});
