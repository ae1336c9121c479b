// The data plane with real models: golden results under concurrency, batching, lifecycle, metrics, errors.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readBundle } from "../../src/bundle/bundle.ts";
import { encodeRecords, planTable } from "../../src/codec/table.ts";
import { createDataPlane } from "../../src/dataplane/dataplane.ts";
import type { DataPlane } from "../../src/dataplane/types.ts";
import { MlshipError } from "../../src/protocol/errors.ts";
import type { Tensor } from "../../src/protocol/types.ts";
import { assertOutputMatches, bundleDir, golden } from "../helpers/fixtures.ts";

const code = (c: string, re: RegExp) => (e: unknown) => {
	assert.ok(e instanceof MlshipError, String(e));
	assert.equal(e.code, c, e.message);
	assert.match(e.message, re);
	return true;
};

async function tensorsOf(name: string): Promise<Tensor[]> {
	const b = await readBundle(bundleDir(name));
	return encodeRecords(planTable(b.manifest), golden(name).records).tensors;
}

/** Row r of batch tensors as a one-row request. */
function rowOf(tensors: Tensor[], r: number): Tensor[] {
	return tensors.map((t) => {
		const w = t.data.length / (t.shape[0] as number);
		const data = Array.isArray(t.data)
			? t.data.slice(r * w, (r + 1) * w)
			: (t.data as Float32Array).slice(r * w, (r + 1) * w);
		return { ...t, shape: [1, ...t.shape.slice(1)], data };
	});
}

describe("data plane", () => {
	let dp: DataPlane;
	before(async () => {
		dp = await createDataPlane({
			models: [
				{ name: "gbdt", source: bundleDir("breast-cancer-gbdt") },
				{ name: "mlp", source: bundleDir("digits-mlp") },
				{ name: "ridge", source: bundleDir("diabetes-sex-ridge") },
			],
			processMetrics: false,
		});
	});
	after(async () => {
		await dp.close();
	});

	it("is live and ready with every model loaded; metadata describes each model", () => {
		assert.equal(dp.live(), true);
		assert.equal(dp.ready(), true);
		const m = dp.modelMetadata("gbdt");
		assert.equal(m.platform, "onnx_onnxv1");
		assert.deepEqual(m.versions, ["1"]);
		assert.deepEqual(m.inputs, [
			{ name: "float_input", datatype: "FP32", shape: [-1, 30] },
		]);
		assert.deepEqual(m.labels, ["malignant", "benign"]);
		assert.equal(dp.modelReady("gbdt", "1"), true);
		assert.throws(
			() => dp.modelReady("gbdt", "2"),
			code("MLSHIP_MODEL_NOT_FOUND", /no version '2'/),
		);
	});

	it("200 concurrent one-row requests are batched and each gets its own golden answer", async () => {
		const g = golden("breast-cancer-gbdt");
		const all = await tensorsOf("breast-cancer-gbdt");
		const n = g.records.length;
		const results = await Promise.all(
			Array.from({ length: 200 }, (_, k) =>
				dp.infer("gbdt", undefined, { id: `r${k}`, inputs: rowOf(all, k % n) }),
			),
		);
		results.forEach((res, k) => {
			assert.equal(res.id, `r${k}`);
			assert.equal(res.model_version, "1");
			const label = res.outputs.find((o) => o.name === "label") as Tensor;
			assert.equal(
				Number(label.data[0]),
				(g.expected.label as number[])[k % n],
			);
			const p = res.outputs.find((o) => o.name === "probabilities") as Tensor;
			assertOutputMatches("gbdt", "probabilities", p.data as Float32Array, [
				(g.expected.probabilities as number[][])[k % n] as number[],
			]);
		});
		const text = (await dp.metrics()).body;
		const batches = Number(
			text.match(
				/mlship_batch_size_count\{model="gbdt",version="1"\} (\d+)/,
			)?.[1],
		);
		const rows = Number(
			text.match(
				/mlship_batch_size_sum\{model="gbdt",version="1"\} (\d+)/,
			)?.[1],
		);
		assert.ok(
			rows >= 200 && batches < 200,
			`expected batching: ${batches} batches for ${rows} rows`,
		);
		assert.match(
			text,
			/mlship_requests_total\{model="gbdt",version="1",outcome="ok"\} \d+/,
		);
		assert.match(text, /mlship_queue_duration_seconds_bucket/);
		assert.match(text, /mlship_compute_duration_seconds_bucket/);
		assert.match(text, /mlship_models_loaded 3/);
	});

	it("requested outputs only; records route returns class names; string inputs work", async () => {
		const res = await dp.infer("mlp", "1", {
			inputs: await tensorsOf("digits-mlp"),
			outputs: [{ name: "label" }],
		});
		assert.deepEqual(
			res.outputs.map((o) => o.name),
			["label"],
		);
		assertOutputMatches(
			"mlp",
			"label",
			res.outputs[0]?.data as BigInt64Array,
			golden("digits-mlp").expected.label as number[],
		);
		const g = golden("diabetes-sex-ridge");
		const p = await dp.predict("ridge", undefined, g.records);
		assertOutputMatches(
			"ridge",
			"variable",
			p.predictions.map((r) => r.variable as number),
			g.expected.variable as number[],
		);
		const gb = await dp.predict(
			"gbdt",
			undefined,
			golden("breast-cancer-gbdt").records.slice(0, 3),
		);
		assert.ok(
			gb.predictions.every(
				(r) => r.label === "benign" || r.label === "malignant",
			),
		);
	});

	it("errors name what was wrong and count as invalid, not as server errors", async () => {
		const all = await tensorsOf("breast-cancer-gbdt");
		assert.throws(
			() => dp.modelMetadata("nope"),
			code("MLSHIP_MODEL_NOT_FOUND", /unknown model 'nope'/),
		);
		await assert.rejects(
			dp.infer("gbdt", "7", { inputs: all }),
			code("MLSHIP_MODEL_NOT_FOUND", /no version '7'/),
		);
		await assert.rejects(
			dp.infer("gbdt", undefined, {
				inputs: [{ ...(all[0] as Tensor), name: "x" }],
			}),
			code("MLSHIP_INVALID_INPUT", /unknown input 'x'/),
		);
		await assert.rejects(
			dp.infer("gbdt", undefined, { inputs: all, outputs: [{ name: "nope" }] }),
			code("MLSHIP_INVALID_INPUT", /unknown output 'nope'/),
		);
		await assert.rejects(
			dp.predict("gbdt", undefined, []),
			code("MLSHIP_INVALID_INPUT", /empty input/),
		);
		const text = (await dp.metrics()).body;
		assert.match(
			text,
			/mlship_requests_total\{model="gbdt",version="1",outcome="invalid"\} [1-9]/,
		);
	});

	it("the event loop keeps turning while a large batch runs", async () => {
		const base = await tensorsOf("digits-mlp");
		const t = base[0] as Tensor;
		const rows = 50_000;
		const data = new Float32Array(rows * 64);
		for (let r = 0; r < rows; r++)
			data.set(
				(t.data as Float32Array).subarray((r % 450) * 64, ((r % 450) + 1) * 64),
				r * 64,
			);
		let turns = 0;
		let done = false;
		const spin = () => {
			if (done) return;
			turns++;
			setImmediate(spin);
		};
		setImmediate(spin);
		const res = await dp.infer("mlp", undefined, {
			inputs: [{ ...t, shape: [rows, 64], data }],
		});
		done = true;
		assert.equal(res.outputs[0]?.shape[0], rows);
		assert.ok(turns > 10, `event loop turned ${turns} times during the batch`);
	});

	it("unload refuses new work, load brings the model back", async () => {
		await dp.unload("ridge");
		assert.equal(dp.modelReady("ridge"), false);
		assert.equal(dp.ready(), false);
		assert.deepEqual(
			dp.repositoryIndex().find((e) => e.name === "ridge"),
			{
				name: "ridge",
				version: "",
				state: "UNLOADED",
				reason: "unloaded by request",
			},
		);
		await assert.rejects(
			dp.predict("ridge", undefined, golden("diabetes-sex-ridge").records),
			code("MLSHIP_UNAVAILABLE", /not ready \(state UNLOADED/),
		);
		await dp.load("ridge");
		assert.equal(dp.ready(), true);
		assert.equal(dp.repositoryIndex(true).length, 3);
		const p = await dp.predict(
			"ridge",
			undefined,
			golden("diabetes-sex-ridge").records.slice(0, 2),
		);
		assert.equal(p.predictions.length, 2);
	});

	it("a model that fails to load is reported and the others serve", async () => {
		const d = await createDataPlane({
			models: [
				{ name: "ok", source: bundleDir("iris-logreg") },
				{ name: "broken", source: "/no/such/bundle" },
			],
			processMetrics: false,
		});
		try {
			assert.equal(d.loadErrors.length, 1);
			assert.equal(d.ready(), false);
			const idx = d.repositoryIndex();
			assert.equal(idx.find((e) => e.name === "broken")?.state, "UNAVAILABLE");
			assert.match(
				idx.find((e) => e.name === "broken")?.reason ?? "",
				/no bundle/,
			);
			const p = await d.predict(
				"ok",
				undefined,
				golden("iris-logreg").records.slice(0, 1),
			);
			assert.equal(p.predictions[0]?.label, "setosa");
		} finally {
			await d.close();
		}
	});
});
