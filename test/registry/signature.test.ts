// signatureDiff: what a caller relies on (inputs, features, labels) and a readable account of each difference.
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import type { Manifest } from "../../src/bundle/manifest.ts";
import { signatureDiff } from "../../src/registry/core/signature.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "models");

describe("signatureDiff", () => {
	let iris: Manifest;
	before(async () => {
		iris = (await readBundle(join(FIXTURES, "iris-logreg"))).manifest;
	});

	it("is empty for the same signature, whatever the outputs, description or metadata", () => {
		assert.deepEqual(
			signatureDiff(iris, {
				...iris,
				description: "other",
				metadata: { run: 2 },
				signature: { ...iris.signature, outputs: [] },
			}),
			[],
		);
	});

	it("names reordered, changed (at most eight, then a count), added and removed features", () => {
		const features = iris.features ?? [];
		assert.deepEqual(
			signatureDiff(iris, { ...iris, features: [...features].reverse() }),
			[
				"features reordered: sepal_length, sepal_width, petal_length, petal_width → petal_width, petal_length, sepal_width, sepal_length",
			],
		);
		const wide = (n: number, datatype: "FP32" | "FP64") => ({
			...iris,
			features: Array.from({ length: n }, (_, i) => ({
				name: `f${i}`,
				datatype,
			})),
		});
		const lines = signatureDiff(wide(10, "FP32"), wide(10, "FP64"));
		assert.equal(lines.length, 9);
		assert.equal(lines[0], "features changed: f0: FP32 → FP64");
		assert.equal(lines[8], "… and 2 more features changed");
		assert.deepEqual(signatureDiff({ ...iris, features: undefined }, iris), [
			"features: none → sepal_length, sepal_width, petal_length, petal_width",
		]);
		assert.deepEqual(
			signatureDiff(iris, {
				...iris,
				features: [...features.slice(0, 3), { name: "age" }],
			}),
			["features removed (1): petal_width", "features added (1): age"],
		);
	});

	it("names inputs added, removed or reshaped, and labels changed or dropped", () => {
		const input = iris.signature.inputs[0];
		assert.ok(input);
		assert.deepEqual(
			signatureDiff(iris, {
				...iris,
				signature: {
					...iris.signature,
					inputs: [
						{ ...input, shape: [-1, 5] },
						{ ...input, name: "extra" },
					],
				},
				labels: undefined,
			}),
			[
				"inputs added (1): extra",
				"inputs changed: float_input: FP32 [-1, 4] → FP32 [-1, 5]",
				"labels: setosa, versicolor, virginica → none",
			],
		);
	});
});
