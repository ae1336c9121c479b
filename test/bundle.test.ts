// Bundles: manifest validation names the field, sha256 is enforced, bare .onnx files and ZipMap handling.
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../src/bundle/bundle.ts";
import { parseManifest } from "../src/bundle/manifest.ts";
import { loadModel } from "../src/model.ts";
import { MlshipError } from "../src/protocol/errors.ts";
import { mlship } from "./helpers/files.ts";
import { bundleDir, FIXTURES, golden, REPO } from "./helpers/fixtures.ts";

let dir: string;
before(async () => {
	dir = await mkdtemp(join(tmpdir(), "mlship-bundle-test-"));
});
after(async () => {
	await rm(dir, { recursive: true, force: true });
});

function code(c: string, pattern: RegExp) {
	return (err: unknown) => {
		assert.ok(err instanceof MlshipError, String(err));
		assert.equal(err.code, c, err.message);
		assert.match(err.message, pattern);
		return true;
	};
}

async function copyBundle(name: string): Promise<string> {
	const to = join(dir, `${name}-${Math.random().toString(36).slice(2)}`);
	await cp(bundleDir(name), to, { recursive: true });
	return to;
}

describe("bundles", () => {
	it("every fixture bundle reads and verifies", async () => {
		for (const name of FIXTURES) {
			const b = await readBundle(bundleDir(name));
			assert.equal(b.manifest.name, name);
			assert.equal(b.files.size, 1);
		}
	});

	it("a bundle whose artifact changed is refused (sha256)", async () => {
		const d = await copyBundle("iris-logreg");
		const bytes = await readFile(join(d, "model.onnx"));
		bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
		await writeFile(join(d, "model.onnx"), bytes);
		await assert.rejects(
			readBundle(d),
			code(
				"MLSHIP_INTEGRITY",
				/sha256 of 'model\.onnx' is [0-9a-f]{64} but the manifest says/,
			),
		);
		await assert.rejects(loadModel(d), code("MLSHIP_INTEGRITY", /sha256/));
	});

	it("a malformed manifest names the field", async () => {
		const d = await copyBundle("iris-logreg");
		const text = await readFile(join(d, "mlship.yaml"), "utf8");
		await writeFile(
			join(d, "mlship.yaml"),
			text.replace(
				"datatype: FP32, shape: [-1, 4]",
				"datatype: FLOAT, shape: [-1, 4]",
			),
		);
		await assert.rejects(
			readBundle(d),
			code(
				"MLSHIP_INVALID_BUNDLE",
				/signature\.inputs\[0\]\.datatype: must be one of BOOL, .*, got FLOAT/,
			),
		);
	});

	it("manifest cross-checks: unknown input, column count, labels count, unknown keys, bad YAML", () => {
		const base = parseManifest(
			JSON.stringify({
				mlship: 1,
				name: "m",
				runtime: "onnx",
				artifact: { path: "m.onnx", sha256: "a".repeat(64) },
				signature: {
					inputs: [{ name: "x", datatype: "FP32", shape: [-1, 2] }],
					outputs: [{ name: "p", datatype: "FP32", shape: [-1, 3] }],
				},
			}),
		);
		const bad = (patch: object, re: RegExp) =>
			assert.throws(
				() => parseManifest(JSON.stringify({ ...base, ...patch })),
				code("MLSHIP_INVALID_BUNDLE", re),
			);
		bad(
			{ features: [{ name: "a", input: "y" }, { name: "b" }] },
			/features\[0\]\.input: no input named 'y'/,
		);
		bad(
			{ features: [{ name: "a" }] },
			/input 'x' takes 2 columns but 1 features feed it/,
		);
		bad({ labels: ["a", "b"] }, /labels: 2 names but output 'p' has 3 columns/);
		bad({ colour: "red" }, /colour: unknown field/);
		bad({ name: undefined }, /is invalid:\n {2}name: required — text/);
		bad(
			{ artifact: { path: "m.onnx", sha256: "xyz" } },
			/artifact\.sha256: expected 64 lowercase hex characters/,
		);
		assert.throws(
			() => parseManifest("name: [unclosed"),
			code("MLSHIP_INVALID_BUNDLE", /not valid YAML/),
		);
	});

	it("a bare .onnx file is accepted; its signature comes from the graph", async () => {
		const m = await loadModel(
			join(bundleDir("breast-cancer-gbdt"), "model.onnx"),
		);
		try {
			assert.deepEqual(m.signature.inputs, [
				{ name: "float_input", datatype: "FP32", shape: [-1, 30] },
			]);
			assert.deepEqual(
				m.signature.outputs.map((o) => [o.name, o.datatype]),
				[
					["label", "INT64"],
					["probabilities", "FP32"],
				],
			);
			// Without a manifest, the columns of a wide input are named <input>_<j>.
			assert.equal(m.features[29], "float_input_29");
			const g = golden("breast-cancer-gbdt");
			const rows = g.records.map((r) =>
				Object.fromEntries(
					Object.values(r).map((v, j) => [`float_input_${j}`, v]),
				),
			);
			const out = await m.predict(rows);
			assert.deepEqual(
				out.map((o) => o.label),
				g.expected.label,
			);
		} finally {
			await m.close();
		}
	});

	it("a ZipMap-only model is refused with how to re-export it", async () => {
		await assert.rejects(
			readBundle(join(REPO, "test/fixtures/onnx/zipmap-only.onnx")),
			code(
				"MLSHIP_UNSUPPORTED_MODEL",
				/no tensor output.*ZipMap.*zipmap': False/s,
			),
		);
	});

	it("a model with ZipMap beside tensor outputs keeps the tensor outputs", async () => {
		const b = await readBundle(
			join(REPO, "test/fixtures/onnx/iris-zipmap.onnx"),
		);
		assert.deepEqual(
			b.manifest.signature.outputs.map((o) => o.name),
			["output_label"],
		);
	});
});

describe("mlship bundle init", () => {
	it("writes an editable manifest, then refreshes digest and signature keeping the user's edits", async () => {
		const d = join(dir, "init");
		await cp(
			join(bundleDir("iris-logreg"), "model.onnx"),
			join(d, "model.onnx"),
			{ recursive: true },
		);
		const r = await mlship([
			"bundle",
			"init",
			join(d, "model.onnx"),
			"--name",
			"iris",
			"--features",
			"sl,sw,pl,pw",
			"--labels",
			"setosa,versicolor,virginica",
			"--json",
		]);
		assert.equal(r.code, 0, r.stderr);
		const first = JSON.parse(r.stdout);
		assert.equal(first.refreshed, false);
		assert.deepEqual(
			first.manifest.features.map((f: { name: string }) => f.name),
			["sl", "sw", "pl", "pw"],
		);
		const m = await loadModel(d);
		const rows = await m.predict([{ sl: 5.1, sw: 3.5, pl: 1.4, pw: 0.2 }]);
		await m.close();
		assert.equal(rows[0]?.label, "setosa");
		const yaml = await readFile(join(d, "mlship.yaml"), "utf8");
		await writeFile(
			join(d, "mlship.yaml"),
			yaml.replace("name: iris", "name: iris\ndescription: my edit"),
		);
		const again = await mlship([
			"bundle",
			"init",
			join(d, "model.onnx"),
			"--json",
		]);
		assert.equal(again.code, 0, again.stderr);
		const second = JSON.parse(again.stdout);
		assert.equal(second.refreshed, true);
		assert.equal(second.manifest.description, "my edit");
		assert.equal(
			second.manifest.artifact.sha256,
			first.manifest.artifact.sha256,
		);
		const verify = await mlship(["bundle", "verify", d]);
		assert.equal(verify.code, 0, verify.stderr);
		assert.match(verify.stdout, /^ok: iris/);
	});

	it("names the model after the bundle directory, not the converter's 'model.onnx'; a directory means its only .onnx", async () => {
		const d = join(dir, "churn-bundle");
		await mkdir(d, { recursive: true });
		await cp(
			join(bundleDir("iris-logreg"), "model.onnx"),
			join(d, "model.onnx"),
		);
		const r = await mlship(["bundle", "init", d, "--json"]);
		assert.equal(r.code, 0, r.stderr);
		const out = JSON.parse(r.stdout);
		assert.equal(out.manifest.name, "churn-bundle");
		assert.equal(out.manifest.artifact.path, "model.onnx");
		assert.equal(out.path, join(d, "mlship.yaml"));
		const byFile = await mlship([
			"bundle",
			"init",
			join(d, "model.onnx"),
			"--force",
			"--json",
		]);
		assert.equal(JSON.parse(byFile.stdout).manifest.name, "churn-bundle");

		const two = join(dir, "two-models");
		await mkdir(two, { recursive: true });
		await cp(join(d, "model.onnx"), join(two, "b.onnx"));
		await cp(join(d, "model.onnx"), join(two, "a.onnx"));
		const several = await mlship(["bundle", "init", two]);
		assert.equal(several.code, 2);
		assert.match(
			several.stderr,
			/^error: .*two-models holds 2 \.onnx files \(a\.onnx, b\.onnx\): name the one to bundle/,
		);
		const empty = join(dir, "no-models");
		await mkdir(empty, { recursive: true });
		const none = await mlship(["bundle", "init", empty]);
		assert.equal(none.code, 2);
		assert.match(none.stderr, /^error: no \.onnx file in .*no-models/);
	});

	it("says 'not an ONNX model: PATH' for a file that is not one (text, empty), in init and when read", async () => {
		const text = join(dir, "notes.onnx");
		await writeFile(text, "this is not a model\n");
		const r = await mlship(["bundle", "init", text]);
		assert.equal(r.code, 2);
		assert.match(r.stderr, new RegExp(`^error: not an ONNX model: ${text};`));
		assert.doesNotMatch(r.stderr, /protobuf/);
		const empty = join(dir, "empty.onnx");
		await writeFile(empty, "");
		assert.match(
			(await mlship(["bundle", "init", empty])).stderr,
			/^error: not an ONNX model: .*empty\.onnx \(the file is empty\)/,
		);
		await assert.rejects(
			readBundle(text),
			code("MLSHIP_INVALID_BUNDLE", /^not an ONNX model: .*notes\.onnx/),
		);
	});

	it("refuses a ZipMap-only model with exit code 2", async () => {
		const r = await mlship([
			"bundle",
			"init",
			join(REPO, "test/fixtures/onnx/zipmap-only.onnx"),
		]);
		assert.equal(r.code, 2);
		assert.match(r.stderr, /error: the model has no tensor output/);
	});
});

describe("bundle verify re-checks golden.json", () => {
	it("passes on a fixture (the library's outputs) and fails, naming the row, when an expected value is changed", async () => {
		const d = await copyBundle("iris-logreg");
		const ok = await mlship(["bundle", "verify", d, "--json"]);
		assert.equal(ok.code, 0, ok.stderr);
		assert.deepEqual(JSON.parse(ok.stdout).golden, {
			rows: 38,
			outputs: ["label", "probabilities"],
		});
		const g = JSON.parse(await readFile(join(d, "golden.json"), "utf8"));
		g.expected.probabilities[3][0] += 1e-3;
		await writeFile(join(d, "golden.json"), JSON.stringify(g));
		const bad = await mlship(["bundle", "verify", d]);
		assert.notEqual(bad.code, 0);
		assert.match(
			bad.stderr,
			/gives other outputs than the library \(scikit-learn [0-9.]+ predict\/predict_proba\) on 1 of 38 rows[\s\S]*row 3 probabilities/,
		);
		g.expected.probabilities[3][0] -= 1e-3;
		g.expected.label[5] = (g.expected.label[5] + 1) % 3;
		await writeFile(join(d, "golden.json"), JSON.stringify(g));
		const label = await mlship(["bundle", "verify", d]);
		assert.match(label.stderr, /on 1 of 38 rows[\s\S]*row 5 label/);
	});
});
