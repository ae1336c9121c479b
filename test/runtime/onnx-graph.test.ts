// Categories read from ONNX graphs (bare skl2onnx pipelines) match what scikit-learn fitted, and fill the manifest.
import assert from "node:assert/strict";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { manifestFromOnnx, readBundle } from "../../src/bundle/bundle.ts";
import { parseManifest } from "../../src/bundle/manifest.ts";
import { initBundle } from "../../src/cli/bundle.ts";
import { readOnnxCategories } from "../../src/runtime/onnx/graph.ts";
import { bundleDir, FIXTURES } from "../helpers/fixtures.ts";

const CATEGORICAL = ["diabetes-cats-ridge", "diabetes-sex-ridge"];

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
	it("manifestFromOnnx fills features[].categories for the categorical inputs only", async () => {
		const { manifest } = await manifestFromOnnx(
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
		const plain = await manifestFromOnnx(
			await onnxBytes("iris-logreg"),
			"iris",
			"model.onnx",
		);
		assert.equal(plain.manifest.features, undefined);
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
