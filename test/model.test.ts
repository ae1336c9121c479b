// The embedded API against every fixture's golden outputs, and the bad inputs it must refuse clearly.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../src/bundle/bundle.ts";
import { encodeRecords } from "../src/codec/table.ts";
import { loadBundle, loadModel, type Model } from "../src/model.ts";
import { MlshipError } from "../src/protocol/errors.ts";
import type { Tensor } from "../src/protocol/types.ts";
import {
	assertOutputMatches,
	assertTensorsMatch,
	bundleDir,
	FIXTURES,
	golden,
} from "./helpers/fixtures.ts";

function rejects(p: Promise<unknown>, code: string, pattern: RegExp) {
	return assert.rejects(p, (err: unknown) => {
		assert.ok(err instanceof MlshipError, `expected MlshipError, got ${err}`);
		assert.equal(err.code, code, err.message);
		assert.match(err.message, pattern);
		return true;
	});
}

describe("golden outputs through the embedded API", () => {
	for (const name of FIXTURES) {
		for (const mode of ["inline", "pool"] as const) {
			it(`${name} (${mode}): tensors match the original library`, async () => {
				const g = golden(name);
				const m = await loadModel(bundleDir(name), { mode });
				try {
					const { tensors, errors } = encodeRecords(m.plan, g.records);
					assert.deepEqual(errors, []);
					const outs = await m.predict(tensors);
					assert.deepEqual(
						outs.map((o) => o.name).sort(),
						Object.keys(g.expected).sort(),
					);
					assertTensorsMatch(name, outs);
				} finally {
					await m.close();
				}
			});
		}
		it(`${name}: records and columns give the golden values, class names from labels`, async () => {
			const g = golden(name);
			const m = await loadModel(bundleDir(name));
			try {
				const rows = await m.predict(g.records);
				assert.equal(rows.length, g.records.length);
				const labels = m.manifest.labels;
				for (const [out, want] of Object.entries(g.expected)) {
					const got = rows.map((r) => r[out]);
					if (out === "label" && labels) {
						assert.deepEqual(
							got,
							(want as number[]).map((i) => labels[i]),
						);
					} else assertOutputMatches(name, out, got.flat() as number[], want);
				}
				const columns: Record<string, unknown[]> = {};
				for (const f of m.features) columns[f] = g.records.map((r) => r[f]);
				const cols = await m.predict(columns);
				const firstOut = Object.keys(g.expected)[0] as string;
				if (firstOut === "label" && labels)
					assert.deepEqual(
						cols.label,
						rows.map((r) => r.label),
					);
				else
					assert.ok(
						Object.keys(cols).some(
							(k) => k === firstOut || k.startsWith(`${firstOut}_`),
						),
					);
			} finally {
				await m.close();
			}
		});
	}

	it("an OIP request in gives an OIP response with the id echoed and only the requested outputs", async () => {
		const g = golden("iris-logreg");
		const m = await loadModel(bundleDir("iris-logreg"));
		try {
			const { tensors } = encodeRecords(m.plan, g.records);
			const res = await m.predict({
				id: "req-7",
				inputs: tensors,
				outputs: [{ name: "probabilities" }],
			});
			assert.equal(res.id, "req-7");
			assert.equal(res.model_name, "iris-logreg");
			assert.deepEqual(
				res.outputs.map((o) => o.name),
				["probabilities"],
			);
			assertOutputMatches(
				"iris-logreg",
				"probabilities",
				res.outputs[0]?.data as Float32Array,
				g.expected.probabilities as number[][],
			);
		} finally {
			await m.close();
		}
	});

	it("many concurrent calls on the pool all return their own rows", async () => {
		const g = golden("breast-cancer-gbdt");
		const m = await loadModel(bundleDir("breast-cancer-gbdt"), {
			mode: "pool",
			workers: 2,
		});
		try {
			const results = await Promise.all(g.records.map((r) => m.predict([r])));
			const want = g.expected.label as number[];
			results.forEach((rows, i) => {
				assert.equal(rows[0]?.label, m.manifest.labels?.[want[i] as number]);
			});
		} finally {
			await m.close();
		}
	});
});

describe("bad input is refused with a message that says what and where", () => {
	let iris: Model;
	let ridge: Model;
	const ok = {
		sepal_length: 5.1,
		sepal_width: 3.5,
		petal_length: 1.4,
		petal_width: 0.2,
	};
	before(async () => {
		iris = await loadBundle(await readBundle(bundleDir("iris-logreg")));
		ridge = await loadBundle(await readBundle(bundleDir("diabetes-sex-ridge")));
	});
	after(async () => {
		await iris.close();
		await ridge.close();
	});

	it("missing feature", () =>
		rejects(
			iris.predict([ok, { sepal_length: 1, sepal_width: 2, petal_length: 3 }]),
			"MLSHIP_INVALID_INPUT",
			/row 2.*missing feature 'petal_width'/,
		));
	it("wrong dtype: 'abc' for a float", () =>
		rejects(
			iris.predict([ok, { ...ok, petal_length: "abc" }]),
			"MLSHIP_INVALID_INPUT",
			/row 2, column 'petal_length': expected a number \(FP32\), got "abc"/,
		));
	it("NaN where not allowed", () =>
		rejects(
			iris.predict([{ ...ok, sepal_width: Number.NaN }]),
			"MLSHIP_INVALID_INPUT",
			/row 1, column 'sepal_width': NaN is not allowed/,
		));
	it("Infinity", () =>
		rejects(
			iris.predict([{ ...ok, sepal_width: Number.POSITIVE_INFINITY }]),
			"MLSHIP_INVALID_INPUT",
			/column 'sepal_width': Infinity is not allowed/,
		));
	it("null", () =>
		rejects(
			iris.predict([{ ...ok, sepal_width: null }]),
			"MLSHIP_INVALID_INPUT",
			/value is missing/,
		));
	it("empty input", () =>
		rejects(iris.predict([]), "MLSHIP_INVALID_INPUT", /empty input/));
	it("empty columns", () =>
		rejects(
			iris.predict({
				sepal_length: [],
				sepal_width: [],
				petal_length: [],
				petal_width: [],
			}),
			"MLSHIP_INVALID_INPUT",
			/empty input/,
		));
	it("columns of different lengths", () =>
		rejects(
			iris.predict({
				sepal_length: [1, 2],
				sepal_width: [1],
				petal_length: [1],
				petal_width: [1],
			}),
			"MLSHIP_INVALID_INPUT",
			/column 'sepal_width' has 1 values but the others have 2/,
		));
	it("a category not in the manifest", async () => {
		const g = golden("diabetes-sex-ridge");
		await rejects(
			ridge.predict([{ ...g.records[0], sex: "unknown" }]),
			"MLSHIP_INVALID_INPUT",
			/column 'sex': "unknown" is not one of the allowed categories \(female, male\)/,
		);
	});
	it("numeric strings are accepted as numbers (documented coercion)", async () => {
		const a = await iris.predict([ok]);
		const b = await iris.predict([
			{
				sepal_length: "5.1",
				sepal_width: " 3.5",
				petal_length: "1.4",
				petal_width: "0.2",
			},
		]);
		assert.deepEqual(a, b);
	});

	const t = (over: Partial<Tensor>): Tensor[] => [
		{
			name: "float_input",
			datatype: "FP32",
			shape: [2, 4],
			data: new Float32Array(8),
			...over,
		},
	];
	it("wrong tensor shape", () =>
		rejects(
			iris.predict(t({ shape: [2, 5], data: new Float32Array(10) })),
			"MLSHIP_INVALID_INPUT",
			/input 'float_input': expected shape \[-1,4\] \(-1 = any\), got \[2,5\]/,
		));
	it("shape and data length disagree", () =>
		rejects(
			iris.predict(t({ data: new Float32Array(7) })),
			"MLSHIP_INVALID_INPUT",
			/needs 8 elements, data has 7/,
		));
	it("wrong tensor datatype", () =>
		rejects(
			iris.predict(t({ datatype: "FP64", data: new Float64Array(8) })),
			"MLSHIP_INVALID_INPUT",
			/expected datatype FP32, got FP64/,
		));
	it("BYTES where FP32 expected", () =>
		rejects(
			iris.predict(t({ datatype: "BYTES", data: new Array(8).fill("x") })),
			"MLSHIP_INVALID_INPUT",
			/expected datatype FP32, got BYTES/,
		));
	it("unknown input name", () =>
		rejects(
			iris.predict(t({ name: "nope" })),
			"MLSHIP_INVALID_INPUT",
			/unknown input 'nope'; the model takes 'float_input'/,
		));
	it("missing input", () =>
		rejects(
			ridge.predictTensors([
				{
					name: "age",
					datatype: "FP32",
					shape: [1, 1],
					data: new Float32Array(1),
				},
			]),
			"MLSHIP_INVALID_INPUT",
			/missing input 'sex'/,
		));
	it("unknown output", () =>
		rejects(
			iris.predictTensors(t({}), ["nope"]),
			"MLSHIP_INVALID_INPUT",
			/unknown output 'nope'/,
		));
	it("the model still serves after all of that", async () => {
		const rows = await iris.predict([ok]);
		assert.equal(rows[0]?.label, "setosa");
	});

	it("unknown model reference", () =>
		rejects(
			loadModel("no-such-model@production", {
				registry: `sqlite:${process.env.TMPDIR ?? "/tmp"}/mlship-test-empty-${process.pid}.db`,
			}),
			"MLSHIP_MODEL_NOT_FOUND",
			/no-such-model/,
		));
	it("unknown bundle path", () =>
		rejects(
			loadModel("./no/such/bundle"),
			"MLSHIP_MODEL_NOT_FOUND",
			/no bundle or \.onnx file at '\.\/no\/such\/bundle'/,
		));
	it("a closed model says so", async () => {
		const m = await loadModel(bundleDir("iris-logreg"));
		await m.close();
		await rejects(m.predict([ok]), "MLSHIP_CLOSED", /unloaded/);
	});
});
