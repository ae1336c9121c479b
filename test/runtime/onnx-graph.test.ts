// Categories read from ONNX graphs (bare skl2onnx pipelines) match what scikit-learn fitted, and fill the manifest.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { manifestFromArtifact, readBundle } from "../../src/bundle/bundle.ts";
import { parseManifest } from "../../src/bundle/manifest.ts";
import { initBundle } from "../../src/cli/bundle.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { MlshipError } from "../../src/protocol/errors.ts";
import { readOnnxCategories } from "../../src/runtime/onnx/graph.ts";
import { bundleDir, FIXTURES } from "../helpers/fixtures.ts";

const CATEGORICAL = ["diabetes-cats-ridge", "diabetes-sex-ridge"];
/** Three encoders on the columns of one [-1, 3] string input; only column 2's fails on unknown values. */
const LENIENT = fileURLToPath(
	new URL("../fixtures/onnx/lenient-encoders.onnx", import.meta.url),
);

/** The categories scikit-learn fitted (written into the fixture's mlship.yaml by tools/fixtures/train.py). */
async function fitted(fixture: string): Promise<Map<string, unknown[]>> {
	const { manifest } = await readBundle(bundleDir(fixture));
	return new Map(
		(manifest.features ?? [])
			.filter((f) => f.categories)
			.map((f) => [f.name, f.categories as unknown[]]),
	);
}

const onnxBytes = async (fixture: string) =>
	new Uint8Array(await readFile(join(bundleDir(fixture), "model.onnx")));

describe("readOnnxCategories", () => {
	it("reads every OneHotEncoder's categories (strings and int64) back to its graph input", async () => {
		for (const fixture of CATEGORICAL) {
			const want = await fitted(fixture);
			const got = readOnnxCategories(await onnxBytes(fixture));
			assert.deepEqual(
				new Map(got.map((c) => [c.input, c.values])),
				want,
				fixture,
			);
			// scikit-learn's default handle_unknown='error': an unknown value makes the model fail
			for (const c of got)
				assert.equal(c.strict, true, `${fixture} ${c.input}`);
			assert.ok(got.every((c) => c.column === 0));
		}
		const cats = await fitted("diabetes-cats-ridge");
		assert.deepEqual(cats.get("bp_band"), [3, 4, 5, 6]);
		assert.deepEqual(cats.get("sex"), ["female", "male"]);
		assert.equal(cats.size, 3);
	});

	it("reads lenient encoders too, marked not strict, through ArrayFeatureExtractor and Gather on one wide input", async () => {
		const bytes = new Uint8Array(await readFile(LENIENT));
		assert.deepEqual(readOnnxCategories(bytes), [
			// OneHotEncoder(handle_unknown='ignore'): zeros = 1
			{ input: "cats", column: 0, values: ["old", "young"], strict: false },
			// OrdinalEncoder(handle_unknown='use_encoded_value'): a LabelEncoder with a default
			{ input: "cats", column: 1, values: ["high", "low"], strict: false },
			// OneHotEncoder(): zeros = 0
			{ input: "cats", column: 2, values: ["female", "male"], strict: true },
		]);
	});

	it("finds none in models without categorical encoders", async () => {
		for (const fixture of FIXTURES.filter((f) => !CATEGORICAL.includes(f)))
			assert.deepEqual(
				readOnnxCategories(await onnxBytes(fixture)),
				[],
				fixture,
			);
	});

	it("refuses bytes that are not a protobuf", () => {
		assert.throws(() =>
			readOnnxCategories(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])),
		);
	});
});

describe("bare ONNX manifests take the graph's categories", () => {
	it("manifestFromArtifact fills features[].categories for the categorical inputs only", async () => {
		const { manifest } = await manifestFromArtifact(
			await onnxBytes("diabetes-cats-ridge"),
			"cats",
			"model.onnx",
		);
		const want = await fitted("diabetes-cats-ridge");
		const features = manifest.features ?? [];
		assert.deepEqual(
			features.map((f) => f.name),
			manifest.signature.inputs.map((i) => i.name),
		);
		for (const f of features)
			assert.deepEqual(f.categories, want.get(f.name), f.name);
		// a model without encoders keeps the default one-feature-per-column plan (no features written)
		const plain = await manifestFromArtifact(
			await onnxBytes("iris-logreg"),
			"iris",
			"model.onnx",
		);
		assert.equal(plain.manifest.features, undefined);
	});

	it("only a strict encoder's column gets categories; a lenient one's values still pass", async () => {
		const { manifest } = await manifestFromArtifact(
			new Uint8Array(await readFile(LENIENT)),
			"lenient",
			"model.onnx",
		);
		assert.deepEqual(manifest.features, [
			{ name: "cats_0", input: "cats" },
			{ name: "cats_1", input: "cats" },
			{ name: "cats_2", input: "cats", categories: ["female", "male"] },
		]);
		const dp = await createDataPlane({
			models: [{ name: "lenient", source: LENIENT }],
			processMetrics: false,
		});
		try {
			assert.deepEqual(dp.loadErrors, []);
			const r = await dp.predict("lenient", undefined, [
				{ cats_0: "unseen", cats_1: "unseen", cats_2: "male" },
			]);
			assert.equal(r.predictions.length, 1);
			await assert.rejects(
				dp.predict("lenient", undefined, [
					{ cats_0: "old", cats_1: "low", cats_2: "unseen" },
				]),
				(e: MlshipError) =>
					e.code === "MLSHIP_INVALID_INPUT" &&
					/'cats_2'.*"unseen" is not one of the allowed categories \(female, male\)/.test(
						e.message,
					),
			);
		} finally {
			await dp.close();
		}
	});

	it("bundle init writes them into mlship.yaml", async () => {
		const dir = await mkdtemp(join(tmpdir(), "mlship-cats-"));
		try {
			const model = join(dir, "model.onnx");
			await copyFile(
				join(bundleDir("diabetes-cats-ridge"), "model.onnx"),
				model,
			);
			const { path } = await initBundle(model, { name: "cats" });
			const written = parseManifest(await readFile(path, "utf8"), path);
			const want = await fitted("diabetes-cats-ridge");
			assert.deepEqual(
				new Map(
					(written.features ?? [])
						.filter((f) => f.categories)
						.map((f) => [f.name, f.categories]),
				),
				want,
			);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});
