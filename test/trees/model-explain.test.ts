// Embedded explanations: loadModel(...).explain(rows) on the trees runtime gives shap's values by column name,
// the top-k by magnitude, and base + contributions = the raw output; models that cannot be explained say why.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { loadModel, type Model } from "../../src/model.ts";
import { bundleDir, golden } from "../helpers/fixtures.ts";

const WINE = "trees/wine-xgb-json";
const shapOf = (f: string) =>
	JSON.parse(readFileSync(`${bundleDir(f)}/shap.json`, "utf8")) as {
		base: number[];
		values: number[][][];
	};

describe("model.explain(rows) on the trees runtime", () => {
	let m: Model;
	before(async () => {
		m = await loadModel(bundleDir(WINE), { mode: "inline" });
	});
	after(() => m.close());

	it("gives shap's values per class, keyed by column name, top 5 by default", async () => {
		const g = golden(WINE);
		const want = shapOf(WINE);
		const names = Object.keys(g.records[0] as object);
		const res = await m.explain(g.records.slice(0, 4));
		assert.equal(res.method, "tree_path_dependent");
		assert.equal(res.explanations.length, 4);
		res.explanations.forEach((row, r) => {
			assert.deepEqual(
				row.map((t) => t.target),
				["class_0", "class_1", "class_2"],
			);
			row.forEach((t, k) => {
				assert.ok(Math.abs(t.base - (want.base[k] as number)) <= 1e-4);
				names.forEach((n, j) => {
					assert.ok(
						Math.abs(
							(t.values[n] as number) - (want.values[r]?.[k]?.[j] as number),
						) <= 1e-4,
						`row ${r} class ${k} ${n}`,
					);
				});
				const sum = Object.values(t.values).reduce((a, b) => a + b, t.base);
				assert.ok(Math.abs(sum - t.output) <= 1e-9);
				assert.equal(t.top.length, 5);
				for (let i = 1; i < t.top.length; i++)
					assert.ok(
						Math.abs(t.top[i - 1]?.value as number) >=
							Math.abs(t.top[i]?.value as number),
					);
				assert.equal(
					t.top[0]?.value,
					Object.values(t.values).sort((a, b) => Math.abs(b) - Math.abs(a))[0],
				);
			});
		});
	});

	it("the raw outputs are the model's: softmax of them is predict's probabilities", async () => {
		const rows = golden(WINE).records.slice(0, 3);
		const [e, p] = await Promise.all([
			m.explain(rows, { top: 2 }),
			m.predict(rows),
		]);
		e.explanations.forEach((row, r) => {
			const z = row.map((t) => Math.exp(t.output));
			const s = z.reduce((a, b) => a + b, 0);
			const probs = (p[r] as { probabilities: number[] }).probabilities;
			for (const [k, v] of z.entries())
				assert.ok(Math.abs(v / s - (probs[k] as number)) <= 1e-6);
			assert.equal(row[0]?.top.length, 2);
		});
	});

	it("a binary model explains its positive class; a bad top is a clear 400", async () => {
		const b = await loadModel(bundleDir("trees/breast-cancer-xgb-missing"));
		try {
			const rows = golden("trees/breast-cancer-xgb-missing").records.slice(
				0,
				2,
			);
			const e = await b.explain(rows, { top: 3 });
			assert.deepEqual(
				e.explanations[0]?.map((t) => t.target),
				["benign"],
			);
			await assert.rejects(
				b.explain(rows, { top: 0 }),
				/top must be an integer from 1 to 1000/,
			);
		} finally {
			await b.close();
		}
	});

	it("explains on the worker pool too (a batch above the inline size)", async () => {
		const p = await loadModel(bundleDir("trees/diabetes-lgbm-txt"), {
			mode: "pool",
			workers: 1,
		});
		try {
			const g = golden("trees/diabetes-lgbm-txt");
			const want = shapOf("trees/diabetes-lgbm-txt");
			const e = await p.explain(g.records);
			const names = Object.keys(g.records[0] as object);
			assert.equal(e.explanations.length, g.records.length);
			const last = e.explanations.length - 1;
			names.forEach((n, j) => {
				assert.ok(
					Math.abs(
						(e.explanations[last]?.[0]?.values[n] as number) -
							(want.values[last]?.[0]?.[j] as number),
					) <= 1e-4,
				);
			});
		} finally {
			await p.close();
		}
	});

	it("an ONNX model on the onnx runtime, or a tree file without node weights, is refused saying what to do", async () => {
		const onnx = await loadModel(bundleDir("wine-xgb"), { mode: "inline" });
		try {
			await assert.rejects(
				onnx.explain(golden("wine-xgb").records.slice(0, 1)),
				(e: { code?: string; message: string }) =>
					e.code === "MLSHIP_UNSUPPORTED_MODEL" &&
					/runtime: trees/.test(e.message),
			);
		} finally {
			await onnx.close();
		}
		const pmml = await loadModel(bundleDir("trees/iris-tree-pmml"), {
			mode: "inline",
		});
		try {
			await assert.rejects(
				pmml.explain(golden("trees/iris-tree-pmml").records.slice(0, 1)),
				/carries no node weights/,
			);
		} finally {
			await pmml.close();
		}
	});
});
